"""The scheduled loop nest as TVMScript: loops renamed after the template and annotated with knobs."""

import pytest
from explore_fixtures import tiny_task

from tvmq.explore import loopnest as L

SCRIPT = """\
        for n_oo_fused in T.parallel(24):
            for y_0, x_0 in T.grid(13, 1):
                for x_1 in T.unroll(13):
                    for oi in T.vectorized(16):
                        with T.sblock("conv_update"):
                            v_x = T.axis.spatial(13, x_0 * 13 + x_1)
                            C[0:16] = T.call_llvm_pure_intrin("int32x16", "llvm.x86.avx512.vpdpbusd.512", a, b)
"""
CFG = {"parallel_depth": 2, "tile_ow": 13, "tile_oh": 1, "ob": 16, "vector": "oi", "unroll": "s", "ib": 4}


def test_rename_whole_words_only():
    out = L.rename("for y_0, x_1_init in T.grid(2, 3): v_y_0 = y_0 + x_1_init; xy_0 = 1")
    assert out == "for y_o, x_i_init in T.grid(2, 3): v_y_0 = y_o + x_i_init; xy_0 = 1"
    assert L.rename("for n_oo_y_0_fused in T.parallel(312):") == "for n_oo_y_o_fused in T.parallel(312):"


def test_annotate_names_the_knobs():
    out = L.annotate(L.rename(SCRIPT), CFG)
    assert "for n_oo_fused in T.parallel(24):  # parallel_depth=2" in out
    assert "for x_i in T.unroll(13):  # tile_ow=13" in out
    assert "for oi in T.vectorized(16):  # ob=16, vector=oi" in out
    assert "y_o: out_h / tile_oh" in out


def test_outline_keeps_loops_blocks_and_intrinsics():
    out = L.outline(L.annotate(L.rename(SCRIPT), CFG))
    lines = [ln.strip() for ln in out.splitlines()]
    assert lines[-2] == "block conv_update"
    assert lines[-1] == "-> llvm.x86.avx512.vpdpbusd.512"
    assert not any("T.axis" in ln for ln in lines)


@pytest.mark.llvm
def test_scheduled_script_of_a_real_schedule():
    from tvmq.templates import instantiate

    task = tiny_task("float")
    cfg = dict(task.space().default, tile_ow=4, vector="oi", order="reordered_blocked")
    _, sch = instantiate(task.space(), task.op_name, task.workload, task.params, cfg)
    out = L.scheduled_script(sch, cfg)
    assert "# tile_ow=4" in out and "y_0" not in out and "x_1" not in out
    assert "ob=" in L.outline(out)
