"""The markdown page of the space drawn from the records slice."""

from explore_fixtures import SLICE

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
