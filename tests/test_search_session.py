"""Where a task's tuning session starts: cold-weight tuning seeded with the configs this machine timed hot."""

from tvmq.machine import this_machine
from tvmq.record import log as recordlog
from tvmq.run.base import RunResult
from tvmq.run.settings import MeasureSettings
from tvmq.search.session import hot_seeds
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import resolve

TASK = Task.make(resolve("alexnet.conv3")[0], "float", get_target("host"))


def _rec(ms, cold=False, status="ok", threads=2, **kw):
    cfg = dict(TASK.space().default, **kw)
    r = RunResult(status, [ms / 1e3] * 3 if status == "ok" else [], "" if status == "ok" else "boom")
    return recordlog.make_record(TASK, cfg, r, "local", MeasureSettings(threads=threads, flush_cache=cold), "xgb", 1,
                                 this_machine())


def test_hot_seeds_are_this_machines_best_hot_configs_once_each():
    recs = [_rec(3.0, tile_ow=1), _rec(1.0, tile_ow=13), _rec(1.1, tile_ow=13), _rec(2.0, tile_ow=2),
            _rec(0.5, cold=True, tile_ow=4),  # already cold: not a hot seed
            _rec(0.1, threads=1, tile_ow=8),  # other threads
            _rec(0.0, status="run_error", tile_ow=7)]
    seeds = hot_seeds(TASK, recs, this_machine(), 2, n=2)
    assert [s["tile_ow"] for s in seeds] == [13, 2]


def test_a_codebook_task_new_here_starts_from_this_machines_float_best_unless_warm_start_is_off():
    from tvmq.search.session import TuneOptions, _prepare

    cb = Task.make(TASK.workload, "codebook", get_target("host"))
    db = [_rec(1.0, tile_ow=13), _rec(3.0, tile_ow=1)]
    settings = MeasureSettings()
    _, seeds = _prepare(cb, TuneOptions(progress=False), settings, this_machine(), [], db)
    assert seeds and all(s["tile_ow"] == 13 and cb.space().is_valid(s) for s in seeds)
    assert len({s["decode_at"] for s in seeds}) == len(seeds) <= 4  # batch 8: at most half are siblings
    _, none = _prepare(cb, TuneOptions(progress=False, warm_start=False), settings, this_machine(), [], db)
    assert none == []
    own = recordlog.make_record(cb, seeds[0], RunResult("ok", [1e-3] * 3), "local", settings, "xgb", 1,
                                this_machine())
    _, resumed = _prepare(cb, TuneOptions(progress=False), settings, this_machine(), [own], db + [own])
    assert resumed == []  # tuned here already: its own records lead
