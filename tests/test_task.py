"""Tasks: what a tuning run optimises and the keys its records are found by (pure Python + TVM targets)."""

import pytest

from tvmq.errors import TvmqError
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import resolve

WL = resolve("alexnet.conv3")[0]
HOST = get_target("host")


def test_variants_bring_their_operator_template_and_defaults():
    t = Task.make(WL, "codebook4", HOST)
    assert t.op_name == "codebook" and t.template == "conv2d_direct" and t.params == {"bits": 4, "planar": 16}
    assert Task.make(WL, "im2col", HOST).template == "im2col_gemm"
    assert Task.make(WL, "codebook", HOST, bits=3).params == {"bits": 3}


def test_unknown_variant_is_one_line():
    with pytest.raises(TvmqError, match="unknown variant 'fp8'"):
        Task.make(WL, "fp8", HOST)


def test_measure_keys_separate_machines_and_threads():
    t = Task.make(WL, "float", HOST)
    keys = {t.measure_key("amd-znver4-2c", 2), t.measure_key("amd-znver4-2c", 1), t.measure_key("intel-x-2c", 2)}
    assert len(keys) == 3 and t.measure_key("a", 2) == t.measure_key("a", 2)


def test_a_cold_weights_time_has_its_own_key_and_hot_keys_stay_as_logged():
    t = Task.make(WL, "float", HOST)
    assert t.measure_key("a", 2, cold=False) == t.measure_key("a", 2) != t.measure_key("a", 2, cold=True)


def test_the_space_fingerprint_follows_the_knobs_a_target_offers():
    from tvmq.space import Space

    vnni, plain = Space.load(WL, "int8", features={"avx512vnni"}), Space.load(WL, "int8", features=set())
    assert vnni.fingerprint != plain.fingerprint
    assert vnni.fingerprint == Space.load(WL, "int8", features={"avx512vnni"}).fingerprint


def test_build_workers_get_the_targets_features():
    d = Task.make(WL, "int8", HOST).to_dict()
    assert set(d["features"]) == HOST.features()


def test_a_space_with_amx_kernels_keys_their_revision(monkeypatch):
    """Resumed tuning re-times AMX configs when the hand-written AMX kernels change; other spaces keep their keys."""
    from tvmq.templates import amx

    spr, server = get_target("sapphirerapids"), get_target("server")
    int8_spr, int8_server = Task.make(WL, "int8", spr), Task.make(WL, "int8", server)
    before = (int8_spr.key, int8_server.key)
    monkeypatch.setattr(amx, "REVISION", amx.REVISION + 1)
    assert int8_spr.key != before[0] and int8_server.key == before[1]
