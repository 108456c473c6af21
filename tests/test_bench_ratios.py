"""Ratios within one bench run and % of the measured peak (which peak a row is put against)."""

import pytest

from tvmq.bench.ratios import _peak_line, add_ratios

PEAK = {"fp32": {2: {"gflops": 400.0}}, "int8": {2: {"gops": 1600.0}},
        "amx_int8": {2: {"gops": 12000.0}}, "amx_bf16": {2: {"gops": 6000.0}}}


def _row(variant, ms, unit, base=None, dot=None, impl="tvmq"):
    return dict(workload="l", threads=2, variant=variant, base_variant=base or variant, impl=impl, best_ms=ms,
                unit=unit, gflops=1.0 / ms * 1e3, config={"dot": dot} if dot else {})


def test_amx_rows_against_the_amx_peaks_and_torch_at_the_rows_precision():
    rows = [_row("float", 4.0, "GFLOPS"), _row("bf16", 1.0, "GFLOPS", dot="amx_1x4"), _row("bf16", 2.0, "GFLOPS"),
            _row("int8", 0.5, "GOPS", dot="amxf_2x2"), _row("int8", 1.0, "GOPS", dot="vnni"),
            _row("torch.conv", 5.0, "GFLOPS", impl="torch"), _row("torch.conv_bf16", 2.0, "GFLOPS", impl="torch"),
            _row("torch.qconv", 1.5, "GOPS", impl="torch")]
    rows[2]["variant"] = "bf16_widened"  # two bf16 rows in one run: keep them apart by name
    add_ratios(rows, PEAK)
    by = {r["variant"]: r for r in rows}
    assert by["bf16"]["peak_kind"] == "amx_bf16" and by["bf16"]["peak_gflops"] == 6000.0
    assert by["bf16_widened"]["peak_kind"] == "fp32"  # widened bf16 runs on FMAs
    amx_int8 = [r for r in rows if r["config"].get("dot") == "amxf_2x2"][0]
    vnni = [r for r in rows if r["config"].get("dot") == "vnni"][0]
    assert amx_int8["peak_kind"] == "amx_int8" and vnni["peak_kind"] == "int8"
    assert by["float"]["vs_torch"] == pytest.approx(5.0 / 4.0)
    assert by["bf16"]["vs_torch"] == pytest.approx(2.0) and by["bf16"]["vs_float"] == pytest.approx(4.0)
    assert amx_int8["vs_torch"] == pytest.approx(3.0)
    assert by["torch.qconv"]["vs_torch"] == pytest.approx(1.0)


def test_peak_line_names_the_amx_peaks():
    line = _peak_line(PEAK)
    assert "AMX peak" in line and "int8 2 thr: 12000" in line and "bf16 2 thr: 6000" in line
    assert "AMX" not in _peak_line({"fp32": {2: {"gflops": 1.0}}, "int8": "not measured"})
