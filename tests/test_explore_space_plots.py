"""The space drawn from a small slice of real records: per-knob numbers, importance, curves, PNGs."""

import numpy as np
from explore_fixtures import SLICE

from tvmq.explore import space_plots as S
from tvmq.record import log
from tvmq.workload import resolve

CONV3 = resolve("alexnet.conv3")[0]


def _float():
    recs = [r for r in log.read(SLICE) if r["variant"] == "float"]
    return recs, S.samples(recs, CONV3)


def test_slice_is_real_conv3_records():
    recs = log.read(SLICE)
    assert len(recs) >= 30 and {r["workload_key"] for r in recs} == {CONV3.key}


def test_per_knob_groups_every_record():
    recs, data = _float()
    groups = S.per_knob(data, "ob")
    assert sum(len(v) for v in groups.values()) == len(data) == 32
    assert list(groups) == sorted(groups, key=float)  # numeric order, not text order


def test_importance_is_a_variance_share():
    _, data = _float()
    ranked = S.importance(data)
    assert all(0.0 <= e <= 1.0 for _, e, _ in ranked)
    assert [e for _, e, _ in ranked] == sorted((e for _, e, _ in ranked), reverse=True)
    # a knob that alone explains the speed gets eta-squared 1
    fake = [({"a": i % 2, "b": i % 3}, 10.0 * (i % 2)) for i in range(12)]
    assert S.importance(fake)[0][:2] == ("a", 1.0)


def test_heatmap_holds_the_best_of_each_pair():
    _, data = _float()
    xs, ys, m = S.heatmap(data, "tile_ow", "ob")
    best = max(g for _, g in data)
    assert np.nanmax(m) == best
    assert m.shape == (len(ys), len(xs))


def test_curves_one_per_run_and_monotone():
    recs, _ = _float()
    cs = S.curves(recs, CONV3)
    assert set(cs) == {"xgb", "random"} and len(cs["xgb"]) == 20 and len(cs["random"]) == 12
    assert all(np.all(np.diff(c) >= 0) for c in cs.values())


def test_plots_are_written(tmp_path):
    recs, data = _float()
    paths = [S.plot_knobs(data, "conv3 float", tmp_path / "k.png"),
             S.plot_heatmap(data, "tile_ow", "ob", "conv3 float", tmp_path / "h.png"),
             S.plot_curves(S.curves(recs, CONV3), "conv3 float", tmp_path / "c.png"),
             S.plot_importance(S.importance(data), "conv3 float", tmp_path / "i.png")]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000
