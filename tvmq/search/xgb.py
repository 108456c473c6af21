"""``xgb``: an XGBoost ranking model over config features guides a
simulated-annealing walk through the space; a few random picks per batch
keep exploring. The first batch is the default plus random picks, unless a warm
start already trained the model; then it is the model's picks too.

Features are the knob values (log2 of numbers, one-hot of choices), the
workload's shape, and what the config makes of the loop nest (``loop_features``:
register tile and accumulator registers, parallel iterations and their balance
over the cores, bytes each reduction step touches, vector lanes), so the model
can be warm-started from logs of other workloads on the same target.

A transfer run (``warm_start(..., prior=True)``) keeps the warm-start records apart: a model of them
alone gives every config a base margin, and the model trained on this task's measurements only learns
the correction (AutoTVM's ``base_model``, XGBoost's ``base_margin``). Where this machine has measured
nothing like a config, the other machines' ranking stands; joined into one training set instead, a few
measurements of a new machine (outside every source machine's features) decide configs they never
covered: on Zen 3, 2-8 of the 8 picks after the transfer seeds ran at under 0.3x the cold best.
"""

from __future__ import annotations


import numpy as np

from ..machine import machine_features, record_machine
from ..space import config_key
from ..space.nest import ZMM, _log2, loop_features  # noqa: F401  (loop_features: the cost model's nest features)
from .base import Tuner
from ..space.base import workload_context
from ..workload import ConvWorkload

N_MACHINE_FEATURES = 6


class XGBTuner(Tuner):
    name = "xgb"
    own_weight = 1.0  # this task's records weigh this many times all warm-start records together

    def __init__(self, space, seed=0, epsilon=0.15, sa_steps=40, pool=256, min_train=8, threads: int = 2,
                 machine=None):
        super().__init__(space, seed)
        self.threads = threads  # the kernels' runtime threads: the parallel-balance feature depends on it
        # Who measures: lets records of other machines train the model without being mistaken for this one's.
        self.machine_feats = machine_features(machine) if machine is not None else [0.0] * N_MACHINE_FEATURES
        self.vector = _vector(machine)  # the nest features count accumulators in this machine's registers
        self.epsilon = epsilon
        self.sa_steps = sa_steps
        self.pool = pool
        self.min_train = min_train
        self.model = None
        self._extra_x: list = []  # warm-start features
        self._extra_y: list = []
        self._extra_g: list = []
        self.prior = None  # the model of the warm-start records alone, when they are a prior
        self._first = True

    # -- features -----------------------------------------------------------
    def features(self, cfg: dict, context: dict | None = None, machine_feats: list | None = None,
                 threads: int | None = None, vector: tuple[int, int] | None = None) -> list[float]:
        ctx = context or self.space.context
        f = self.space.encode(cfg)
        f += [_log2(ctx[k]) for k in ("c_in", "c_out", "out_h", "out_w", "kh", "kw")]
        f += machine_feats if machine_feats is not None else self.machine_feats
        return f + loop_features(cfg, ctx, threads or self.threads, vector or self.vector)

    # -- learning -----------------------------------------------------------
    def warm_start(self, records, prior: bool = False):
        """Train on other tasks' records of the same template and variant: other workloads, and (when
        given) other machines, each group ranked on its own, with its machine's features. ``prior``: this
        task's measurements will correct that model (a residual) rather than join its training set."""

        by_task: dict = {}
        for r in records:
            if r.get("template") != self.space.template:
                continue
            by_task.setdefault(r["task_key"], []).append(r)
        for g, (_, recs) in enumerate(by_task.items()):
            wl = ConvWorkload.from_dict(recs[0]["workload"])
            ctx = workload_context(wl)
            thr = [wl.flops / np.median(r["times"]) if r["status"] == "ok" and r["times"] else 0.0 for r in recs]
            top = max(thr) or 1.0
            src = record_machine(recs[0])
            mf, vec = machine_features(src), _vector(src)
            for r, t in zip(recs, thr):
                if set(r["config"]) != set(self.space.names):
                    continue
                self._extra_x.append(self.features(r["config"], ctx, mf, r.get("threads"), vec))
                self._extra_y.append(t / top)
                self._extra_g.append(1000 + g)
        if self._extra_x:
            self._fit()
            if prior:
                self.prior = self.model

    def update(self, cfgs, scores):
        super().update(cfgs, scores)
        self._fit()

    def _fit(self):
        import xgboost as xgb  # lazy: heavy, and only the xgb tuner's model needs it

        keys = list(self.scores)
        y = np.array([self.scores[k] for k in keys], dtype=float)
        if self.prior is not None and keys:
            return self._fit_residual(keys, y)
        n_ok = int((y > 0).sum())
        if n_ok + len(self._extra_x) < self.min_train:
            return
        top = (y.max() if y.size else 0.0) or 1.0
        X = [self.features(self.configs[k]) for k in keys] + self._extra_x
        Y = list(y / top) + self._extra_y
        G = [0] * len(keys) + self._extra_g
        order = np.argsort(G, kind="stable")
        X, Y, G = np.array(X)[order], np.array(Y)[order], np.array(G)[order]
        groups, counts = np.unique(G, return_counts=True)
        d = xgb.DMatrix(X, label=Y)
        d.set_group(counts)
        # This task's own measurements weigh as much as all warm-start records together: otherwise
        # thousands of other workloads' (or machines') records drown the ranking measured here.
        n_own = int(counts[0]) if groups[0] == 0 else 0
        if n_own and len(self._extra_x):
            d.set_weight(np.where(groups == 0, max(1.0, self.own_weight * len(self._extra_x) / n_own), 1.0))
        self.model = xgb.train(self._params(max_depth=6), d, num_boost_round=60)

    def _fit_residual(self, keys, y):
        """This task's ranking as a correction of the prior's: shallow trees, more of them as measurements come."""
        import xgboost as xgb

        X = np.array([self.features(self.configs[k]) for k in keys])
        d = xgb.DMatrix(X, label=y / (y.max() or 1.0), base_margin=self._margin(X))
        d.set_group([len(keys)])
        self.model = xgb.train(self._params(max_depth=3), d, num_boost_round=min(60, 12 + len(keys)))

    def _params(self, max_depth: int) -> dict:
        return dict(objective="rank:pairwise", max_depth=max_depth, eta=0.3, subsample=1.0, min_child_weight=1,
                    verbosity=0, nthread=1, seed=int(self.rng.integers(1 << 30)))

    def _margin(self, X: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        return self.prior.predict(xgb.DMatrix(X), output_margin=True)

    def predict(self, cfgs: list[dict]) -> np.ndarray:
        import xgboost as xgb  # lazy: heavy, and only the xgb tuner's model needs it

        if self.model is None or not cfgs:
            return self.rng.random(len(cfgs))
        X = np.array([self.features(c) for c in cfgs])
        if self.prior is not None and self.model is not self.prior:
            return self.model.predict(xgb.DMatrix(X, base_margin=self._margin(X)))
        return self.model.predict(xgb.DMatrix(X))

    # -- proposing ------------------------------------------------------------
    def next_batch(self, n):
        first = []
        if self._first:
            self._first = False
            first = [self.space.default] if not self.seen(self.space.default) else []
        if self.model is None:  # nothing learnt yet (no warm start): explore at random
            return first + self._fresh_random(n - len(first), {config_key(c) for c in first})
        n_model = n - max(1, int(round(n * self.epsilon)))
        chosen = first + [c for c in self._anneal(n_model) if c not in first][: n_model - len(first)]
        return chosen + self._fresh_random(n - len(chosen), {config_key(c) for c in chosen})

    def _anneal(self, n: int) -> list[dict]:
        """Simulated annealing on the model's score, started from the best measured and random points."""
        ranked = sorted(self.scores, key=self.scores.get, reverse=True)
        starts = [self.configs[k] for k in ranked[: self.pool // 4]]
        starts += [self.space.sample(self.rng) for _ in range(self.pool - len(starts))]
        cur = starts
        cur_s = self.predict(cur)
        best: dict[str, tuple[float, dict]] = {}
        temp = 1.0
        for _ in range(self.sa_steps):
            nxt = [self.space.neighbors(c, self.rng, n=1 + int(self.rng.integers(2))) for c in cur]
            nxt_s = self.predict(nxt)
            gain = np.clip((nxt_s - cur_s) / max(temp, 1e-3), -50, 0)
            accept = (nxt_s > cur_s) | (self.rng.random(len(cur)) < np.exp(gain))
            cur = [b if a else c for a, b, c in zip(accept, nxt, cur)]
            cur_s = np.where(accept, nxt_s, cur_s)
            for c, s in zip(cur, cur_s):
                k = config_key(c)
                if k not in self.scores and (k not in best or best[k][0] < s):
                    best[k] = (float(s), c)
            temp *= 0.9
        return [c for _, c in sorted(best.values(), key=lambda t: -t[0])[:n]]


def _vector(machine) -> tuple[int, int]:
    """(fp32 lanes, vector registers) of ``machine``; AVX-512's when it is unknown or does not say."""
    return (machine.vector_registers if machine is not None else None) or ZMM
