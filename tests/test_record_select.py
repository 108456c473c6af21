"""Honest apply-best: records count for the machine that measured them; other machines' only when asked."""

import json

import pytest

from tvmq.errors import TvmqError
from tvmq.machine import Machine, this_machine
from tvmq.record import log as recordlog
from tvmq.record.select import (NONE, THIS_MACHINE, TRANSFER, RecordSet, choose, register_tile_for, sibling_seeds,
                               transfer_seeds,
                              workload_distance)
from tvmq.run.base import RunResult
from tvmq.run.settings import MeasureSettings
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import resolve

HOST = get_target("host")
TASK = Task.make(resolve("alexnet.conv3")[0], "float", HOST)
ZEN4 = Machine(kind="amd-znver4-2c", vendor="amd", llvm_cpu="znver4", arch="x86_64", cores=2,
               features=("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"))
AVX2 = Machine(kind="intel-haswell-2c", vendor="intel", llvm_cpu="haswell", arch="x86_64", cores=2,
               features=("avx2", "fma"))
# a fixed "this machine" where the order of the other machines matters (the real one may be either kind)
ICX = Machine(kind="intel-icelake-2c", vendor="intel", llvm_cpu="icelake-server", arch="x86_64", cores=2,
              features=("avx2", "fma", "avx512f", "avx512bw"))
ZEN5 = Machine(kind="amd-znver5-2c", vendor="amd", llvm_cpu="znver5", arch="x86_64", cores=2,
               features=("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512vbmi"))


def rec(task, cfg, ms, machine, threads=2, runner="local"):
    r = RunResult("ok", [ms / 1e3] * 3)
    return recordlog.make_record(task, cfg, r, runner, MeasureSettings(threads=threads), "xgb", 1, machine)


def cfg(**kw):
    c = dict(TASK.space().default, **kw)
    assert TASK.space().is_valid(c), c
    return c


def test_only_this_machines_records_count_by_default():
    recs = [rec(TASK, cfg(tile_ow=13), 1.0, ZEN4), rec(TASK, cfg(tile_ow=1), 5.0, this_machine())]
    c = choose(TASK, recs, this_machine())
    assert c.source == THIS_MACHINE and c.record["config"]["tile_ow"] == 1  # slower, but measured here
    assert c.pool == (recs[1],)  # the alternatives an export may take (joint layouts): this machine's only


def test_other_machines_records_are_never_used_silently():
    recs = [rec(TASK, cfg(tile_ow=13), 1.0, ZEN4)]
    c = choose(TASK, recs, this_machine())
    assert c.record is None and c.source == NONE
    assert "amd-znver4-2c" in c.note and "--transfer" in c.note
    t = choose(TASK, recs, this_machine(), transfer=True)
    assert t.source == TRANSFER and t.record["config"]["tile_ow"] == 13 and t.pool == (recs[0],)
    assert "amd-znver4-2c" in t.note and "not on this machine" in t.note


def test_model_exports_prefer_cold_weight_records_and_layer_exports_hot_ones():
    hot = rec(TASK, cfg(tile_ow=13), 1.0, this_machine())
    cold = rec(TASK, cfg(tile_ow=1), 1.5, this_machine())
    cold["settings"]["flush_cache"] = True
    assert choose(TASK, RecordSet([hot, cold], cold=True), this_machine()).record is cold
    assert choose(TASK, RecordSet([hot, cold]), this_machine()).record is hot
    assert choose(TASK, RecordSet([hot], cold=True), this_machine()).record is hot  # only hot: taken


def test_transfer_takes_the_most_similar_machine():
    me = Machine(kind="intel-x-2c", vendor="intel", arch="x86_64", cores=2,
                 features=("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"))
    recs = [rec(TASK, cfg(ib=8), 1.0, AVX2), rec(TASK, cfg(ob=32), 2.0, ZEN4)]
    c = choose(TASK, recs, me, transfer=True)
    assert c.from_kind == "amd-znver4-2c" and c.record["config"]["ob"] == 32


def test_threads_are_preferred_and_said():
    m = this_machine()
    recs = [rec(TASK, cfg(ib=8), 1.0, m, threads=2), rec(TASK, cfg(ob=32), 2.0, m, threads=1)]
    assert choose(TASK, recs, m, threads=1).record["config"]["ob"] == 32
    c = choose(TASK, recs[:1], m, threads=1)
    assert c.source == THIS_MACHINE and "at 2 threads, used for 1" in c.note


def test_emulated_times_never_choose_for_a_real_board():
    edge = get_target("edge")
    task = Task.make(TASK.workload, "float", edge)
    qemu = Machine(kind="qemu-cortex-a53", arch="aarch64", emulated=True)
    r = rec(task, task.space().default, 1.0, qemu, runner="rpc-emulated")
    board = Machine(kind="board-rasp3b-cortex-a53", arch="aarch64")
    assert choose(task, [r], board, transfer=True).record is None
    assert choose(task, [r], qemu).source == THIS_MACHINE


def test_transfer_seeds_this_workload_then_similar_ones_valid_here():
    conv4 = Task.make(resolve("alexnet.conv4")[0], "float", HOST)
    recs = [rec(TASK, cfg(tile_ow=13), 1.0, ZEN4), rec(TASK, cfg(tile_ow=1), 9.0, ZEN4),
            rec(conv4, dict(conv4.space().default, tile_ow=13, ob=32), 1.0, AVX2),
            rec(TASK, cfg(ib=8), 0.5, ZEN5)]  # this machine's own: not a transfer seed
    seeds = transfer_seeds(TASK, recs, ZEN5, n=8)  # fixed: an AVX2 host rebuilds the tiles
    assert seeds[0]["tile_ow"] == 13 and all(TASK.space().is_valid(s) for s in seeds)
    assert all(s["ib"] != 8 for s in seeds) and len(seeds) == 3  # both of this workload, then conv4's best


def test_transfer_seeds_take_this_machines_similar_layers_before_other_machines():
    conv4, conv5 = (Task.make(resolve(f"alexnet.{n}")[0], "float", HOST) for n in ("conv4", "conv5"))
    here = ZEN5  # fixed: an AVX2 host would put rebuilt tiles first
    recs = [rec(TASK, cfg(tile_ow=13), 1.0, ZEN4),
            rec(conv4, dict(conv4.space().default, tile_ow=13, ob=32), 1.0, ZEN4),  # the nearer layer
            rec(conv5, dict(conv5.space().default, ib=8), 2.0, here)]  # measured here, on another layer
    seeds = transfer_seeds(TASK, recs, here, n=8)
    assert [s["tile_ow"] for s in seeds[:1]] == [13] and seeds[1]["ib"] == 8  # this layer's, then this machine's
    assert seeds[2]["ob"] == 32 and len(seeds) == 3


def test_transfer_seeds_keep_this_machines_layers_before_rebuilt_tiles_of_other_layers():
    """On a machine of another vector width, each other machine's config takes its place rebuilt for this
    one: the nearest layer measured here still comes second, the configs as they were last."""
    conv4, conv5 = (Task.make(resolve(f"alexnet.{n}")[0], "float", HOST) for n in ("conv4", "conv5"))
    recs = [rec(TASK, cfg(tile_ow=13, ob=16), 1.0, ZEN4),
            rec(conv4, dict(conv4.space().default, tile_ow=13, ob=32, ib=32), 1.0, ZEN4),
            rec(conv5, dict(conv5.space().default, ib=1, order="ic_outer", ob=8), 2.0, AVX2)]  # measured here
    seeds = transfer_seeds(TASK, recs, AVX2, n=8)
    assert [(s["ob"], s["ib"], s["order"]) for s in seeds[:3]] == [(8, 16, "reordered_blocked"), (8, 1, "ic_outer"),
                                                                   (8, 32, "reordered_blocked")]
    assert [s["ob"] for s in seeds[3:]] == [16, 32] and all(TASK.space().is_valid(s) for s in seeds)


def test_transfer_seeds_keep_a_slot_for_this_machines_layers_with_several_source_machines():
    """Two machines' four best of this layer would fill all 8 slots: each machine's best comes first,
    then the nearest layer measured here, then the rest of theirs."""
    conv4 = Task.make(resolve("alexnet.conv4")[0], "float", HOST)
    here = ZEN5  # ZEN4 is the more similar source machine, so its best comes first
    recs = [rec(TASK, cfg(tile_ow=13, ob=ob, ib=ib * k), ms + 0.1 * i, m)
            for i, (ob, ib) in enumerate(((16, 16), (32, 16), (8, 16), (16, 32)))
            for m, ms, k in ((ZEN4, 1.0, 1), (ICX, 2.0, 2))]
    recs.append(rec(conv4, dict(conv4.space().default, tile_ow=13, ob=32, ib=8), 3.0, here))
    seeds = transfer_seeds(TASK, recs, here, n=8)
    assert [(s["ob"], s["ib"]) for s in seeds[:3]] == [(16, 16), (16, 32), (32, 8)]
    assert len(seeds) == 8 and all(TASK.space().is_valid(s) for s in seeds)


def test_transfer_seeds_cover_distinct_structures_first():
    recs = [rec(TASK, cfg(tile_ow=13, ob=ob), ms, ZEN4) for ob, ms in ((16, 1.0), (32, 1.1), (8, 1.2))]
    recs.append(rec(TASK, cfg(tile_ow=13, order="ic_outer"), 2.0, ZEN4))  # slower, another loop order
    seeds = transfer_seeds(TASK, recs, ZEN5, n=2)  # fixed: an AVX2 host rebuilds tiles
    assert [(s["ob"], s["order"]) for s in seeds] == [(16, "reordered_blocked"), (16, "ic_outer")]


def test_workload_distance_orders_layers_by_shape():
    conv2, conv3, conv4 = resolve("alexnet.conv2")[0], resolve("alexnet.conv3")[0], resolve("alexnet.conv4")[0]
    assert workload_distance(conv3, conv3) == 0.0
    assert workload_distance(conv3, conv4) == workload_distance(conv4, conv3) > 0
    assert workload_distance(conv3, conv4) < workload_distance(conv3, conv2)  # conv4 is conv3's shape, 384 in


def test_record_set_carries_the_transfer_policy():
    from tvmq.build.from_log import best_record

    recs = [rec(TASK, cfg(tile_ow=13), 1.0, ZEN4)]
    assert best_record(TASK, RecordSet(recs)) is None
    assert best_record(TASK, RecordSet(recs, transfer=True))["config"]["tile_ow"] == 13


def test_old_logs_load_and_newer_schemas_are_refused(tmp_path):
    old = {"schema_version": 1, "target": {"kind": "llvm", "mcpu": "znver4", "num-cores": 2}, "target_name": "host",
           "workload": TASK.workload.to_dict(), "workload_key": TASK.workload.key, "variant": "float", "params": {},
           "config": cfg(tile_ow=13), "times": [1e-3], "status": "ok", "tuner": "xgb", "runner": "local",
           "settings": {"threads": 2}, "task_key": "0123", "tvm_version": "0.27.0.post1"}
    p = tmp_path / "old.jsonl"
    p.write_text(json.dumps(old) + "\n")
    [r] = recordlog.read(p)
    assert r["machine_kind"] == "amd-znver4-2c" and r["threads"] == 2 and r["legacy_task_key"] == "0123"
    assert choose(TASK, [r], this_machine()).record is None
    assert choose(TASK, [r], this_machine(), transfer=True).from_kind == "amd-znver4-2c"
    p.write_text(json.dumps(dict(old, schema_version=99)) + "\n")
    with pytest.raises(TvmqError, match="schema 99 is newer"):
        recordlog.read(p)


def test_committed_logs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "autotune_logs"
    recs = recordlog.read_dir(root, warn=False)
    assert len(recs) > 1000 and all(r.get("machine_kind") for r in recs)


def test_sibling_seeds_take_this_machines_float_best_as_codebook_with_each_decode_placement():
    """A codebook schedule is a float one plus the lookup: this machine's float best of the layer, with
    every decode placement, comes before any other machine's codebook configs."""
    here = this_machine()
    cb = Task.make(TASK.workload, "codebook", HOST)
    recs = [rec(TASK, cfg(tile_ow=13, ob=32), 1.0, here), rec(TASK, cfg(tile_ow=1), 5.0, here),
            rec(TASK, cfg(tile_ow=13, ob=16), 0.5, ZEN4),  # another machine's float: never a sibling seed
            rec(cb, dict(cb.space().default, ob=8), 1.0, ZEN4),
            rec(Task.make(TASK.workload, "bf16", HOST), cfg(tile_ow=13, ob=16), 0.1, here)]  # faster, a farther sibling
    sib = sibling_seeds(cb, recs, here, n=4)
    decode = next(k.values for k in cb.space().knobs if k.name == "decode_at")
    assert [s["decode_at"] for s in sib] == list(decode)[:4]
    assert all(s["ob"] == 32 and s["tile_ow"] == 13 and cb.space().is_valid(s) for s in sib)
    seeds = transfer_seeds(cb, recs, here, n=8)
    assert seeds[:2] == sib[:2] and seeds[4]["ob"] == 8  # n // 2 slots for siblings, then the other machine's
    # back: a codebook config is a float seed without its decode knob; int8 is not a sibling of float
    assert sibling_seeds(TASK, [rec(cb, dict(cb.space().default, ob=8), 1.0, here)], here)[0]["ob"] == 8
    i8 = Task.make(TASK.workload, "int8", HOST)
    assert sibling_seeds(i8, recs, here) == []


def test_register_tile_is_rebuilt_for_a_narrower_vector_width():
    """An AVX-512 tile of 13 x 2 zmm accumulators (ob 32) spills on AVX2's 16 ymm: it comes first as
    13 x 1 ymm (ob 8; Zen 3's 200-trial float best of alexnet conv5 has that tile), then as it was."""
    space = TASK.space()
    wide = cfg(tile_ow=13, ob=32)
    fitted = register_tile_for(wide, ZEN4, AVX2, space)
    assert fitted["ob"] == 8 and fitted["tile_ow"] == 13 and space.is_valid(fitted)
    assert {k: v for k, v in fitted.items() if k != "ob"} == {k: v for k, v in wide.items() if k != "ob"}
    assert register_tile_for(cfg(tile_ow=13, ob=16), ZEN4, AVX2, space)["ob"] == 8  # 1 zmm -> 1 ymm
    assert register_tile_for(wide, ZEN4, ZEN5, space) is None  # same width: as it is
    assert register_tile_for(cfg(tile_ow=13, ob=8), AVX2, ZEN4, space)["ob"] == 16  # and back: 1 ymm -> 1 zmm
    seeds = transfer_seeds(TASK, [rec(TASK, wide, 1.0, ZEN4)], AVX2, n=4)
    assert seeds[0] == fitted and seeds[1] == wide
    assert transfer_seeds(TASK, [rec(TASK, wide, 1.0, ZEN4)], ZEN5, n=4) == [wide]
