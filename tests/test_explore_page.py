"""The markdown page of the space drawn from the records slice."""

import pytest
from explore_fixtures import SLICE

from tvmq.errors import TvmqError
from tvmq.explore import page, records
from tvmq.record import log


def test_page_links_every_png(tmp_path):
    task = records.make_task("alexnet.conv3", "float", "host")
    recs = [r for r in log.read(SLICE) if r["variant"] == "float"]
    text = page.write(tmp_path, recs, task, "records measured on mcpu znver4")
    md = (tmp_path / "conv3_float.md").read_text()
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 4 and all(f"]({p})" in md for p in pngs)
    assert "| knob | eta-squared |" in md and "znver4" in md
    assert "32 timed records" in text


def test_heatmap_pair_is_checked(tmp_path):
    task = records.make_task("alexnet.conv3", "float", "host")
    recs = [r for r in log.read(SLICE) if r["variant"] == "float"]
    page.write(tmp_path, recs, task, "m", pair=("order", "layout"))
    assert "## order x layout" in (tmp_path / "conv3_float.md").read_text()
    with pytest.raises(TvmqError, match="must vary"):
        page.write(tmp_path, recs, task, "m", pair=("order", "nosuch"))
