"""Tuners driven by a fake measurer (pure Python tier)."""

import json

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.record import log as recordlog
from tvmq.run.base import RunResult
from tvmq.run.settings import MeasureSettings
from tvmq.search import GridTuner, RandomTuner, XGBTuner, make_tuner
from tvmq.search.driver import curve_to_fraction, tune
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import resolve

TASK = Task.make(resolve("alexnet.conv3")[0], "float", get_target("server"))


def synthetic_time(cfg):
    """A smooth, knob-dependent fake runtime with one best region."""
    t = 1.0
    t *= {"nchwc": 1.0, "nchw": 2.5, "nhwc": 1.8}[cfg["layout"]]
    t *= 1 + abs(np.log2(cfg["ob"]) - 4) * 0.5
    t *= 1 + abs(np.log2(cfg["ib"]) - 3) * 0.2
    t *= {"reordered_blocked": 1.0, "ic_outer": 1.3, "channel_blocked": 1.6, "vanilla": 3.0}[cfg["order"]]
    t *= 1.0 if cfg["vector"] == "oi" else 1.7
    t *= 1.0 if cfg["accumulate"] == "local" else 1.4
    t *= 1.0 if cfg["tile_ow"] == 13 else 2.0
    t *= {1: 1.6, 2: 1.0, 3: 1.1}[cfg["parallel_depth"]]
    return t * 1e-3


def fake_measure(cfgs):
    out = []
    for c in cfgs:
        if c["unroll"] == "rs" and c["auto_unroll"] == 64:
            out.append(RunResult("build_error", error="pretend the compiler gave up"))
        else:
            out.append(RunResult("ok", times=[synthetic_time(c)] * 3, max_abs_err=0.0))
    return out


def run(tuner_name, trials=64, seed=0, **kw):
    space = TASK.space()
    return tune(TASK, make_tuner(tuner_name, space, seed), fake_measure, trials, progress=False,
                settings=MeasureSettings(), **kw)


def recording():
    """(list of measured config keys, a fake measure that appends to it)."""
    measured = []

    def counting(cfgs):
        measured.extend(json.dumps(c, sort_keys=True) for c in cfgs)
        return fake_measure(cfgs)

    return measured, counting


def test_every_tuner_respects_the_budget_and_never_repeats():
    for name in ("xgb", "random", "grid"):
        space = TASK.space()
        tuner = make_tuner(name, space, 0)
        seen = []

        def measure(cfgs):
            seen.extend(json.dumps(c, sort_keys=True) for c in cfgs)
            return fake_measure(cfgs)

        res = tune(TASK, tuner, measure, 40, progress=False, settings=MeasureSettings())
        assert res.trials == 40 and len(seen) == 40 and len(set(seen)) == 40, name
        assert all(space.is_valid(json.loads(s)) for s in seen)


def test_xgb_beats_random_at_equal_trials():
    wins = 0
    for seed in range(3):
        x = run("xgb", 64, seed).best_time
        r = run("random", 64, seed).best_time
        wins += x <= r
    assert wins >= 2


def test_xgb_reaches_90_percent_early():
    res = run("xgb", 96, 1)
    assert curve_to_fraction(res.curve, 0.9) <= 48


def test_failures_are_counted_not_timed():
    res = run("random", 64, 2)
    assert res.statuses.get("build_error", 0) > 0
    assert res.best_time < float("inf")


def test_grid_starts_with_the_default():
    space = TASK.space()
    assert GridTuner(space).next_batch(1) == [space.default]


def test_unknown_tuner_lists_valid_names():
    with pytest.raises(TvmqError, match="valid tuners are"):
        make_tuner("annealer", TASK.space())


def test_resume_after_interrupt(tmp_path):
    log = tmp_path / "log.jsonl"
    calls = {"n": 0}

    def dying(cfgs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return fake_measure(cfgs)

    with pytest.raises(KeyboardInterrupt):
        tune(TASK, RandomTuner(TASK.space(), 0), dying, 40, log, batch_size=8, progress=False,
             settings=MeasureSettings())
    recs = recordlog.read(log)
    assert len(recs) == 16  # two finished batches are on disk
    first = {json.dumps(r["config"], sort_keys=True) for r in recs}
    measured, counting = recording()
    res = tune(TASK, RandomTuner(TASK.space(), 1), counting, 40, log, batch_size=8, resume=True, progress=False,
               settings=MeasureSettings())
    assert res.trials == 40 and len(measured) == 24
    assert not first & set(measured)
    assert len(recordlog.read(log)) == 40


def test_resume_feeds_the_tuner_its_records_in_one_update(tmp_path):
    """A model-based tuner refits on every update: resuming 40 records must cost one refit, not 40
    (xgb on a 31k-record database: 0.5 s a fit, over an hour for a model's 31 tasks)."""
    log = tmp_path / "log.jsonl"
    tune(TASK, RandomTuner(TASK.space(), 0), fake_measure, 40, log, batch_size=8, progress=False,
         settings=MeasureSettings())

    class Counting(RandomTuner):
        def __init__(self, space, seed):
            super().__init__(space, seed)
            self.updates = []

        def update(self, cfgs, scores):
            self.updates.append(len(cfgs))
            super().update(cfgs, scores)

    tuner = Counting(TASK.space(), 1)
    res = tune(TASK, tuner, fake_measure, 48, log, batch_size=8, resume=True, progress=False,
               settings=MeasureSettings())
    assert res.trials == 48 and tuner.updates == [40, 8]


def test_xgb_warm_start_from_other_workloads(tmp_path):
    other = Task.make(resolve("alexnet.conv4")[0], "float", get_target("server"))
    log = tmp_path / "other.jsonl"
    tune(other, RandomTuner(other.space(), 0), fake_measure, 48, log, progress=False, settings=MeasureSettings())
    tuner = XGBTuner(TASK.space(), 0)
    tuner.warm_start(recordlog.read(log))
    assert tuner.model is not None
    cands = [TASK.space().sample(np.random.default_rng(i)) for i in range(200)]
    pred = tuner.predict(cands)
    true = [-synthetic_time(c) for c in cands]
    from scipy.stats import spearmanr

    assert spearmanr(pred, true).correlation > 0.5


def test_xgb_warm_started_first_batch_follows_the_model(tmp_path):
    other = Task.make(resolve("alexnet.conv4")[0], "float", get_target("server"))
    log = tmp_path / "other.jsonl"
    tune(other, RandomTuner(other.space(), 0), fake_measure, 48, log, progress=False, settings=MeasureSettings())
    cold, warm = XGBTuner(TASK.space(), 0), XGBTuner(TASK.space(), 0)
    warm.warm_start(recordlog.read(log))
    med = {n: np.median([synthetic_time(c) for c in t.next_batch(8)]) for n, t in (("cold", cold), ("warm", warm))}
    assert med["warm"] < 0.6 * med["cold"]  # the model's picks, not random ones


def _other_task_records(tmp_path, measure, trials):
    """``trials`` random configs of alexnet conv4, timed by ``measure``, as records."""
    other = Task.make(resolve("alexnet.conv4")[0], "float", get_target("server"))
    log = tmp_path / "other.jsonl"
    tune(other, RandomTuner(other.space(), 0), measure, trials, log, progress=False, settings=MeasureSettings())
    return recordlog.read(log)


@pytest.mark.parametrize("prior,n_own", [(False, 24), (True, 48)])
def test_xgb_own_measurements_outweigh_warm_start_records(tmp_path, prior, n_own):
    """Warm-start records ranked the other way round (in one model, or as a transfer prior): after the
    measurements here, the model follows here."""
    flipped = lambda cfgs: [RunResult("ok", [1e-6 / synthetic_time(c)] * 3) for c in cfgs]  # noqa: E731
    tuner = XGBTuner(TASK.space(), 0)
    tuner.warm_start(_other_task_records(tmp_path, flipped, 96), prior=prior)
    rng = np.random.default_rng(1)
    mine = [TASK.space().sample(rng) for _ in range(n_own)]
    tuner.update(mine, [1.0 / synthetic_time(c) for c in mine])
    cands = [TASK.space().sample(np.random.default_rng(100 + i)) for i in range(200)]
    from scipy.stats import spearmanr

    assert spearmanr(tuner.predict(cands), [-synthetic_time(c) for c in cands]).correlation > 0.3


def test_xgb_transfer_prior_stands_where_this_task_measured_nothing_like_it(tmp_path):
    """Transfer (``prior=True``): 8 measurements here, all with the vector on output channels, correct the
    warm-start model; they must not make it forget what the records say of the other vector axis."""
    records = _other_task_records(tmp_path, fake_measure, 96)
    rng = np.random.default_rng(2)
    mine = [c for c in (TASK.space().sample(rng) for _ in range(400)) if c["vector"] == "oi"][:8]
    cands = [c for c in (TASK.space().sample(np.random.default_rng(100 + i)) for i in range(300))
             if c["vector"] == "oi" and TASK.space().is_valid(dict(c, vector="x_i"))]
    xi_cands = [dict(c, vector="x_i") for c in cands]
    tuner = XGBTuner(TASK.space(), 0)
    tuner.warm_start(records, prior=True)
    assert tuner.prior is tuner.model
    before = np.mean(tuner.predict(cands) > tuner.predict(xi_cands))  # x_i is 1.7x slower in every record
    tuner.update(mine, [1.0 / synthetic_time(c) for c in mine])
    assert tuner.model is not tuner.prior
    oi = tuner.predict(cands)
    # one training set of both: 0.58-0.69 after these 8 (model seeds 0-2), from 0.83
    assert before > 0.75 and np.mean(oi > tuner.predict(xi_cands)) >= before - 0.02
    from scipy.stats import spearmanr

    assert spearmanr(oi, [-synthetic_time(c) for c in cands]).correlation > 0.5


def test_loop_features_describe_the_nest():
    """Accumulator registers (and spills), parallel balance over 2 threads, vector lanes."""
    from tvmq.search.xgb import loop_features

    ctx = dict(n=1, c_in=256, c_out=384, out_h=13, out_w=13, kh=3, kw=3)
    base = dict(layout="nchwc", ob=16, ib=16, tile_oh=1, tile_ow=13, order="reordered_blocked", vector="oi",
                parallel_depth=2)
    f = loop_features(base, ctx)
    assert f[0] == pytest.approx(np.log2(13)) and f[1] == 0.0  # 13 zmm accumulators, no spill
    assert f[2] == pytest.approx(np.log2(24)) and f[3] == 0.0  # 24 parallel iterations: even over 2 threads
    assert f[-2] == 1.0 and f[-1] == pytest.approx(13 / 32)  # 16 lanes: whole vectors; 13 of 32 registers
    big = loop_features(dict(base, tile_oh=4, ob=32), ctx)
    assert big[1] == 1.0  # 4 x 13 x 32 / 16 = 104 registers: spills
    odd = loop_features(dict(base, order="ic_outer"), dict(ctx, c_out=48))
    assert odd[2] == pytest.approx(np.log2(3)) and odd[3] == pytest.approx(0.25)  # 3 blocks: a core idles 1/4
    assert loop_features(base, ctx, threads=4)[3] == 0.0 and loop_features(base, ctx, threads=5)[3] > 0.0
    # AVX2 (8 lanes, 16 ymm): the same tile is 26 accumulators and spills; half the block fits
    ymm = (8, 16)
    assert loop_features(base, ctx, vector=ymm)[1] == 1.0 and loop_features(base, ctx, vector=ymm)[-1] > 1.0
    half = loop_features(dict(base, ob=8), ctx, vector=ymm)
    assert half[1] == 0.0 and half[0] == pytest.approx(np.log2(13)) and half[-2] == 1.0


def test_xgb_model_sees_the_runtime_threads():
    """The tuner's parallel-balance feature follows the measured thread count (e.g. a 4-core board)."""
    space = TASK.space()
    cfg = dict(space.default, parallel_depth=1)
    two, five = make_tuner("xgb", space, 0), make_tuner("xgb", space, 0, threads=5)
    assert two.threads == 2 and five.threads == 5
    assert two.features(cfg) != five.features(cfg)  # one parallel iteration: idles 1/2 vs 4/5 of the cores


def test_xgb_counts_registers_of_the_machine_that_measured():
    """A warm-start record from an AVX-512 machine is featurized with its 32 zmm of 16 lanes; the same config
    proposed on an AVX2 machine with its 16 ymm of 8 lanes: the model can learn "spills" across machines."""
    from tvmq.machine import Machine

    zen3 = Machine(kind="amd-znver3-2c", vendor="amd", llvm_cpu="znver3", arch="x86_64", cores=2, features=("avx2", "fma"))
    zen5 = Machine(kind="amd-znver5-2c", vendor="amd", llvm_cpu="znver5", arch="x86_64", cores=2,
                   features=("avx2", "fma", "avx512f", "avx512bw"))
    space = TASK.space()
    cfg = space.canonical(dict(space.default, ob=16, tile_oh=1, tile_ow=13, vector="oi"))
    assert space.is_valid(cfg)
    tuner = make_tuner("xgb", space, 0, machine=zen3)
    r = recordlog.make_record(TASK, cfg, RunResult("ok", [1e-3] * 3), "local", MeasureSettings(), "xgb", 1, zen5)
    tuner.warm_start([r])
    spill = -8  # loop_features' spill flag, counted from the end of the feature vector
    assert tuner._extra_x[0][spill] == 0.0  # 13 zmm on Zen 5: fits
    assert tuner.features(cfg)[spill] == 1.0  # 26 ymm here: spills


def test_progress_names_the_rate_unit_of_the_variant(capsys):
    def flat(cfgs):
        return [RunResult("ok", times=[1e-3] * 3, max_abs_err=0.0) for _ in cfgs]

    for variant, unit in (("int8", "GOPS"), ("float", "GFLOPS")):
        task = Task.make(resolve("alexnet.conv3")[0], variant, get_target("host"))
        tune(task, make_tuner("random", task.space(), 0), flat, trials=2, progress=True)
        err = capsys.readouterr().err
        assert f" {unit}," in err, err


def test_metaschedule_gets_a_fresh_database_per_run(tmp_path):
    from tvmq.search.metaschedule import work_dir_for

    task = Task.make(resolve("alexnet.conv3")[0], "float", get_target("host"))
    log = tmp_path / "host.jsonl"
    first = work_dir_for(task, log, 64)
    assert work_dir_for(task, log, 64) == first  # an empty directory is still fresh
    first.mkdir(parents=True)
    (first / "database_tuning_record.json").write_text("{}\n")
    second = work_dir_for(task, log, 64)
    assert second != first and second.parent == first.parent
    assert work_dir_for(task, log, 200) not in (first, second)


def test_resume_never_takes_another_thread_count_as_its_own(tmp_path):
    log = tmp_path / "log.jsonl"
    tune(TASK, RandomTuner(TASK.space(), 0), fake_measure, 16, log, progress=False, settings=MeasureSettings(threads=2))
    measured = []

    def counting(cfgs):
        measured.extend(cfgs)
        return fake_measure(cfgs)

    res = tune(TASK, RandomTuner(TASK.space(), 0), counting, 16, log, resume=True, progress=False,
               settings=MeasureSettings(threads=1))
    assert res.trials == 16 and len(measured) == 16  # nothing of the 2-thread run counted
    keys = {r["task_key"] for r in recordlog.read(log)}
    assert len(keys) == 2 and {r["threads"] for r in recordlog.read(log)} == {1, 2}


def test_resume_retries_board_failures_but_not_kernel_failures(tmp_path):
    log = tmp_path / "log.jsonl"
    calls = {"n": 0}

    def flaky_board(cfgs):
        calls["n"] += 1
        if calls["n"] == 1:  # the board went away under the first batch
            return [RunResult("run_error", error="rpc: the RPC server went away") for _ in cfgs]
        return [RunResult("wrong_result", error="output differs") for _ in cfgs]

    tune(TASK, RandomTuner(TASK.space(), 0), flaky_board, 16, log, batch_size=8, progress=False,
         settings=MeasureSettings())
    recs = recordlog.read(log)
    assert [r["failure"] for r in recs] == ["board"] * 8 + ["kernel"] * 8
    board = {json.dumps(r["config"], sort_keys=True) for r in recs[:8]}
    kernel = {json.dumps(r["config"], sort_keys=True) for r in recs[8:]}
    measured, counting = recording()
    res = tune(TASK, RandomTuner(TASK.space(), 0), counting, 16, log, batch_size=8, resume=True, progress=False,
               settings=MeasureSettings())
    assert res.trials == 16 and len(measured) == 8
    assert not kernel & set(measured)  # the kernel's own failures are never retried
    assert board == set(measured)  # same seed: the board's failures are proposed and measured again


def test_transfer_seeds_are_measured_first():
    seeds = [dict(TASK.space().default, tile_ow=13, ob=16), dict(TASK.space().default, ob=32)]
    seeds = [s for s in seeds if TASK.space().is_valid(s)]
    measured = []

    def counting(cfgs):
        measured.extend(cfgs)
        return fake_measure(cfgs)

    tune(TASK, make_tuner("xgb", TASK.space(), 0), counting, 16, progress=False, settings=MeasureSettings(),
         seeds=seeds)
    assert seeds and measured[: len(seeds)] == seeds


def test_the_result_keeps_the_best_kernels_instructions_from_its_build():
    def measure(cfgs):
        out = fake_measure(cfgs)
        for c, r in zip(cfgs, out):
            r.instructions = {"vfmadd_ps": c["ob"]}  # what the Measurer copies from each build
        return out

    res = tune(TASK, make_tuner("random", TASK.space(), 0), measure, 16, progress=False, settings=MeasureSettings())
    assert res.best_instructions == {"vfmadd_ps": res.best_config["ob"]}


def test_retime_picks_the_config_with_the_fastest_median_not_the_luckiest_sample(tmp_path):
    """A config that read fast once (a lucky sample) and slow when measured again loses to a steady one;
    re-time records are not trials, and a finished run resumed is not re-timed again."""
    space = TASK.space()
    lucky, steady = dict(space.default, tile_ow=13, ob=16), dict(space.default, tile_ow=13, ob=32)
    seen = {}

    def measure(cfgs):
        out = []
        for c in cfgs:
            k = json.dumps(c, sort_keys=True)
            seen[k] = seen.get(k, 0) + 1
            t = 1.0 if c == steady else 0.5 if seen[k] == 1 else 2.0  # lucky: fast only the first time
            out.append(RunResult("ok", times=[t * 1e-3] * 3, max_abs_err=0.0))
        return out

    log = tmp_path / "r.jsonl"
    kw = dict(progress=False, settings=MeasureSettings(), batch_size=2, log_path=log)
    res = tune(TASK, GridTuner(space, 0), measure, 2, seeds=[lucky, steady], retime=2, **kw)
    recs = recordlog.read(log)
    assert res.trials == 2 and len(recs) == 2 + 4 and sum(r["retime"] for r in recs) == 4
    assert res.best_config == steady and res.best_time == pytest.approx(1e-3)
    from tvmq.machine import this_machine
    from tvmq.record.select import choose
    pick = choose(TASK, recs, this_machine())
    assert pick.record["config"] == steady  # apply-best rates a config by its median record as well
    n = len(seen)
    again = tune(TASK, GridTuner(space, 0), measure, 2, resume=True, retime=2, **kw)
    assert again.trials == 2 and again.best_config == steady and len(recordlog.read(log)) == 6 and len(seen) == n
    seen.clear()
    off = tune(TASK, GridTuner(space, 0), measure, 2, seeds=[lucky, steady], retime=0, progress=False,
               settings=MeasureSettings(), batch_size=2)
    assert off.best_config == lucky  # without it, the lucky sample wins


def test_retime_measures_again_whatever_is_then_rated_best_and_drops_a_config_that_fails_again(tmp_path):
    space = TASK.space()
    lucky, steady = dict(space.default, tile_ow=13, ob=16), dict(space.default, tile_ow=13, ob=32)
    seen = {}

    def measure(cfgs, fail=False):
        out = []
        for c in cfgs:
            k = json.dumps(c, sort_keys=True)
            seen[k] = seen.get(k, 0) + 1
            if c == lucky and seen[k] > 1 and fail:
                out.append(RunResult("wrong_result", error="differs from numpy"))
            else:
                out.append(RunResult("ok", times=[(1.0 if c == steady else 0.5 if seen[k] == 1 else 2.0) * 1e-3] * 3))
        return out

    kw = dict(progress=False, settings=MeasureSettings(), batch_size=2, seeds=[lucky, steady])
    # only the fastest is re-timed; it reads slower, so steady (now best on one sample) is measured again too
    res = tune(TASK, GridTuner(space, 0), measure, 2, retime=1, **kw)
    assert res.best_config == steady and seen[json.dumps(steady, sort_keys=True)] == 3
    seen.clear()
    log = tmp_path / "r.jsonl"
    res = tune(TASK, GridTuner(space, 0), lambda c: measure(c, fail=True), 2, retime=2, log_path=log, **kw)
    assert res.best_config == steady  # lucky failed when measured again: out, whatever its first sample
    from tvmq.machine import this_machine
    from tvmq.record.select import choose
    assert choose(TASK, recordlog.read(log), this_machine()).record["config"] == steady
