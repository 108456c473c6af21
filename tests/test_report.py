"""Report stage: tables and result rows (pure Python)."""

from tvmq.report import markdown_table, text_table
from tvmq.report.results import add_speedups, result_row
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import resolve

WL = resolve("alexnet.conv3")[0]


def rows():
    t = get_target("server")
    return [result_row(Task.make(WL, v, t), s, 8, 1.0, True, 0.0, "xgb", "local")
            for v, s in (("float", 2e-3), ("int8", 5e-4), ("im2col", 4e-3))]


def test_result_rows_carry_rate_and_unit():
    f, i, _ = rows()
    assert f["unit"] == "GFLOPS" and i["unit"] == "GOPS"
    assert f["gflops"] == WL.flops / 2e-3 / 1e9 and f["best_ms"] == 2.0


def test_speedups_are_time_ratios_within_the_run():
    f, i, c = add_speedups(rows())
    assert f["vs_float"] == 1.0 and i["vs_float"] == 4.0 and c["vs_float"] == 0.5
    assert f["vs_im2col"] == 2.0 and c["vs_im2col"] == 1.0


def test_unverified_rows_have_no_rate_and_no_ratio():
    r = result_row(Task.make(WL, "codebook", get_target("server")), float("inf"), 8, 1.0, False, None, "xgb", "local")
    (r,) = add_speedups([r])
    assert r["gflops"] is None and r["vs_float"] is None


def test_tables_show_every_column_and_row():
    rs = add_speedups(rows())
    txt, md = text_table(rs, ["workload", "variant", "gflops", "vs_float"]), markdown_table(rs, ["variant", "gflops"])
    assert len(txt.splitlines()) == 2 + len(rs) and "int8" in txt and "4" in txt
    assert md.splitlines()[0].startswith("| variant") and len(md.splitlines()) == 2 + len(rs)


def _best_of(task, counts):
    from tvmq.search.driver import TuneResult

    return TuneResult(task, best_config=task.space().default, best_time=1e-3, trials=1, best_instructions=counts)


def test_the_table_counts_instructions_from_the_build_not_a_second_compile(monkeypatch):
    import tvmq.report.results as results

    def compile_again(task, cfg):
        raise AssertionError("the best kernel was compiled a second time to count its instructions")

    monkeypatch.setattr(results, "key_instructions", compile_again)
    task = Task.make(WL, "float", get_target("host"))
    (row,) = results.rows_from_results([_best_of(task, {"vfmadd_ps": 12, "vperm": 0})], "xgb", "local")
    assert row["asm_counts"] == {"vfmadd_ps": 12, "vperm": 0} and row["instructions"] == "vfmadd_ps:12"


def test_a_best_from_the_log_is_compiled_to_count_it(monkeypatch):
    import tvmq.report.results as results

    calls = []
    monkeypatch.setattr(results, "key_instructions", lambda task, cfg: calls.append(cfg) or {"fma": 3})
    task = Task.make(WL, "float", get_target("host"))
    (row,) = results.rows_from_results([_best_of(task, None)], "xgb", "local")  # resumed: never built in this run
    assert calls == [task.space().default] and row["instructions"] == "fma:3"
