"""Channel blocks chosen with the neighbours: a kernel reads its input in the block its producer wrote
(``data_block``), and takes a slightly slower record whose output block is its fused residual's when the
layout change it saves costs more, never a much slower one."""

import json

import pytest

from test_export_fusion import _run, residual_net
from tvmq.cli import main
from tvmq.export.joint_layouts import Want, data_block, pick, reblock_s
from tvmq.machine import this_machine
from tvmq.record import log as recordlog
from tvmq.record.select import THIS_MACHINE, Choice
from tvmq.run.base import RunResult
from tvmq.run.settings import MeasureSettings
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import ConvWorkload

HOST = get_target("host")
WL = ConvWorkload("c", n=1, c_in=64, c_out=64, h=28, w=28, kh=3, kw=3, stride=(1, 1), pad=(1, 1, 1, 1))


def _rec(task, ms, **kw):
    cfg = dict(task.space().default, **kw)
    assert task.space().is_valid(cfg), cfg
    return recordlog.make_record(task, cfg, RunResult("ok", [ms / 1e3] * 3), "local", MeasureSettings(threads=2),
                                 "xgb", 1, this_machine())


def test_pick_pays_for_a_slower_config_only_up_to_the_layout_change_it_saves():
    task = Task.make(WL, "float", HOST)
    in_bytes = 64 * 28 * 28 * 4
    saved_ms = reblock_s(in_bytes) * 1e3
    fast, kept = _rec(task, 0.500, ib=4, ob=32), _rec(task, 0.500 + saved_ms / 2, ib=4, ob=16)
    choice = Choice(fast, THIS_MACHINE, "", (fast, kept))
    assert pick(task, choice, None) == (fast, None)  # nothing to keep: the fastest
    # another input block costs nothing: the kernel reads the producer's 16c blocks as they are
    assert pick(task, choice, Want(ib=16, in_bytes=in_bytes)) == (fast, None)
    # the fused residual's block counts: ob 16 keeps it, ob 32 would reblock it
    rec, why = pick(task, choice, Want(ib=16, in_bytes=in_bytes, ob=16, res_bytes=in_bytes))
    assert rec is kept and "writes 16c" in why
    slow = _rec(task, 0.500 + 2 * saved_ms, ib=4, ob=16)
    assert pick(task, Choice(fast, THIS_MACHINE, "", (fast, slow)),
                Want(ib=16, in_bytes=in_bytes, ob=16, res_bytes=in_bytes))[0] is fast


def test_data_block_only_where_the_kernel_can_read_the_kept_block():
    p = {"layout": "nchwc", "ib": 4}
    assert data_block(p, 16, 64) == 16 and data_block({**p, "layout": "nchwc_vnni"}, 32, 64) == 32
    assert data_block(p, 4, 64) is None  # the same block: nothing to override
    assert data_block(p, None, 64) is None and data_block({**p, "layout": "nchw"}, 16, 64) is None
    assert data_block({"layout": "nchwc", "ib": 8}, 12, 48) is None  # neither divides the other
    assert data_block({"layout": "amx", "ib": 64}, 16, 64) is None  # the AMX kernel has its own layout


@pytest.mark.llvm
@pytest.mark.parametrize("with_kept", [True, False])
def test_export_reads_the_producers_block_as_it_is(tmp_path, capsys, with_kept):
    from tvmq.export.model import ModelOptions, model_tasks

    model = residual_net(tmp_path / "res.onnx")
    recs = []
    for task, _ in model_tasks(model, HOST, ModelOptions(quantize="none")):
        if task.workload.c_in == 3:
            recs.append(_rec(task, 0.010, ob=16))
            continue
        recs.append(_rec(task, 0.010, ib=4, ob=8))
        if with_kept:  # 0.05 us slower than the fastest and no layout change saved: not taken
            recs.append(_rec(task, 0.01005, ib=8, ob=8))
    log = tmp_path / "logs" / "host.jsonl"
    log.parent.mkdir()
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--quantize", "none", "--logs", str(log.parent),
                 "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    rows = {r["node"]: r for r in man["model"]["layers"]}
    funcs = {f["name"]: f for f in man["functions"]}
    for node in ("conv1", "conv2", "conv3"):  # each reads the 16c (conv0) or 8c blocks before it, with ib=4
        f = funcs[rows[node]["kernel"]]
        assert rows[node]["input_layout"] == "kept", rows[node]
        assert f["op_params"]["ib"] == 4 and f["op_params"]["data_block"] in (8, 16), f["op_params"]
        assert "joint_layout" not in f
    assert _run(out, model, tmp_path, capsys)["compare_onnx"]["relative"] <= 1e-4


def test_a_plain_layout_pays_for_converting_its_input_and_output_and_odd_blocks_pay_more():
    task = Task.make(WL, "float", HOST)
    nbytes = 64 * 28 * 28 * 4
    plain = _rec(task, 0.500, layout="nchw")
    blocked = _rec(task, 0.500 + reblock_s(nbytes, False) * 1e3, ib=16, ob=16)  # less than converting in and out
    rec, _ = pick(task, Choice(plain, THIS_MACHINE, "", (plain, blocked)), Want(ib=16, in_bytes=nbytes,
                                                                                out_bytes=nbytes))
    assert rec is blocked
    assert reblock_s(nbytes, False) > reblock_s(nbytes)  # through NCHW costs more than one transpose
