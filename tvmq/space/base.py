"""Search spaces as plain data: knobs with candidate values and constraints.

A space file under ``schedules/`` names a template and lists its knobs.
This module resolves a file for one workload and variant (divisor lists,
knobs that apply only to some variants) and answers the questions a tuner
asks: is a config valid, sample one, enumerate, mutate, encode as features.
Nothing here touches TVM.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TvmqError
from ..variants import template_of
from ..workload import ConvWorkload

SCHEDULES_DIR = Path(__file__).resolve().parents[2] / "schedules"


def workload_context(wl: ConvWorkload) -> dict:
    return dict(n=wl.n, c_in=wl.c_in, c_out=wl.c_out, h=wl.h, w=wl.w, kh=wl.kh, kw=wl.kw,
                out_h=wl.out_h, out_w=wl.out_w, k_total=wl.c_in * wl.kh * wl.kw, p_total=wl.out_h * wl.out_w)


_SAFE = {"min": min, "max": max, "abs": abs}


def _divisors(n: int, cap: int) -> list[int]:
    return [d for d in range(1, min(n, cap) + 1) if n % d == 0]


@dataclass(frozen=True)
class Knob:
    name: str
    values: tuple

    def __post_init__(self):
        if not self.values:
            raise TvmqError(f"knob {self.name!r} has no candidate values")


class Space:
    """A resolved search space for one (template, workload, variant)."""

    def __init__(self, template: str, knobs: list[Knob], constraints: list[str], context: dict,
                 orders: dict | None = None, default: dict | None = None, implies: list | None = None):
        self.template = template
        self.knobs = knobs
        self.constraints = constraints
        self.context = context
        self.orders = orders or {}
        names = {k.name for k in knobs}
        # Rules "if these knob values, then those": a choice that fixes others (e.g. VNNI fixes the blocks).
        self.implies = [r for r in (implies or []) if set(r["if"]) <= names and set(r["then"]) <= names]
        self._compiled = [compile(c, f"<constraint {c}>", "eval") for c in constraints]
        self.default = self._fit_default(default or {})

    # -- loading ----------------------------------------------------------
    @classmethod
    def load(cls, wl: ConvWorkload, variant: str, name: str | None = None, path: str | Path | None = None,
             features: set | None = None) -> "Space":
        """Resolve ``schedules/NAME.json`` (NAME from the variant when omitted) for a workload.

        ``features`` are the target's CPU features; a value that ``requires`` one the target
        lacks is dropped (``None`` keeps every value).
        """
        name = name or template_of(variant)
        path = Path(path) if path else SCHEDULES_DIR / f"{name}.json"
        if not path.exists():
            raise TvmqError(f"no search space file {str(path)!r}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise TvmqError(f"search space {str(path)!r} is not valid JSON: {e}") from None
        ctx = workload_context(wl)
        knobs = []
        for kname, spec in data["knobs"].items():
            if "only_for" in spec and variant not in spec["only_for"]:
                ctx[kname] = None  # absent for this variant: constraints see None
                continue
            if "divisors_of" in spec:
                vals = _divisors(ctx[spec["divisors_of"]], spec.get("max", 10**9))
            else:
                vals = list(spec["values"])
            if "value_only_for" in spec:  # values that only some variants may use
                vals = [v for v in vals if variant in spec["value_only_for"].get(str(v), [variant])]
            if features is not None and "requires" in spec:
                vals = [v for v in vals if spec["requires"].get(str(v)) in (None, *features)]
            if "divides" in spec:
                n = ctx[spec["divides"]]
                kept = [v for v in vals if n % v == 0]
                vals = kept or [max(_divisors(n, max(vals)))]
            knobs.append(Knob(kname, tuple(vals)))
        return cls(data["template"], knobs, data.get("constraints", []), ctx, data.get("orders"), data.get("default"),
                   data.get("implies"))

    # -- questions ----------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [k.name for k in self.knobs]

    @property
    def size(self) -> int:
        """Number of configs before constraints."""
        return math.prod(len(k.values) for k in self.knobs)

    @property
    def fingerprint(self) -> str:
        """A hash of the resolved space (knobs, values, constraints, rules): records of another space differ."""
        blob = json.dumps(dict(t=self.template, k=[[k.name, list(k.values)] for k in self.knobs],
                               c=self.constraints, i=self.implies), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def violation(self, cfg: dict) -> str | None:
        """The first broken rule for ``cfg``, or None when it is valid."""
        for k in self.knobs:
            if k.name not in cfg:
                return f"missing knob {k.name!r}"
            if cfg[k.name] not in k.values:
                return f"knob {k.name}={cfg[k.name]!r} is not one of {list(k.values)}"
        extra = set(cfg) - set(self.names)
        if extra:
            return f"unknown knob(s) {sorted(extra)}"
        env = dict(self.context, **cfg)
        for text, code in zip(self.constraints, self._compiled):
            if not eval(code, {"__builtins__": _SAFE}, env):  # noqa: S307 - our own data files
                return f"constraint failed: {text}"
        return None

    def is_valid(self, cfg: dict) -> bool:
        return self.violation(cfg) is None

    def complete(self, cfg: dict) -> dict:
        """An older record's config in this space: knobs added since take their first value
        (by convention the behaviour before the knob existed); knobs no longer here are dropped."""
        return self.canonical({k.name: cfg.get(k.name, k.values[0]) for k in self.knobs})

    def completions(self, cfg: dict, limit: int | None = None) -> list[dict]:
        """Every valid config of this space that keeps ``cfg``'s values and tries each value of the knobs
        ``cfg`` lacks (another variant's config: a float schedule as a codebook one, each decode placement),
        in the knobs' value order, at most ``limit``; knobs this space lacks are dropped."""
        missing = [k for k in self.knobs if k.name not in cfg]
        out, seen = [], set()
        if limit is not None and limit < 1:
            return out
        for combo in itertools.product(*[k.values for k in missing]):
            new = self.canonical({k.name: cfg.get(k.name) for k in self.knobs} | dict(zip((k.name for k in missing),
                                                                                          combo)))
            key = config_key(new)
            if key not in seen and self.is_valid(new):
                seen.add(key)
                out.append(new)
            if limit is not None and len(out) >= limit:
                break
        return out

    def canonical(self, cfg: dict) -> dict:
        """``cfg`` with the ``implies`` rules applied (equivalent configs get one key)."""
        for rule in self.implies:
            if all(cfg.get(k) == v for k, v in rule["if"].items()):
                cfg = {**cfg, **rule["then"]}
        return cfg

    def sample(self, rng: np.random.Generator, tries: int = 10000) -> dict:
        for _ in range(tries):
            cfg = {k.name: k.values[rng.integers(len(k.values))] for k in self.knobs}
            cfg = self.canonical({n: (v.item() if hasattr(v, "item") else v) for n, v in cfg.items()})
            if self.is_valid(cfg):
                return cfg
        raise TvmqError(f"search space {self.template!r} has no valid config for {self.context}")

    def enumerate(self):
        """Every valid config, in a fixed order (grid search)."""
        for combo in itertools.product(*[k.values for k in self.knobs]):
            cfg = dict(zip(self.names, combo))
            if self.is_valid(cfg) and self.canonical(cfg) == cfg:
                yield cfg

    def neighbors(self, cfg: dict, rng: np.random.Generator, n: int = 1) -> dict:
        """``cfg`` with ``n`` knobs changed to another value (valid, or ``cfg`` itself)."""
        for _ in range(100):
            new = dict(cfg)
            for ki in rng.choice(len(self.knobs), size=min(n, len(self.knobs)), replace=False):
                k = self.knobs[int(ki)]
                if len(k.values) > 1:
                    choices = [v for v in k.values if v != cfg[k.name]]
                    new[k.name] = choices[rng.integers(len(choices))]
            new = self.canonical(new)
            if new != cfg and self.is_valid(new):
                return new
        return dict(cfg)

    def encode(self, cfg: dict) -> list[float]:
        """Numeric features: each knob's value (log2 for numbers) and its one-hot for strings."""
        feats = []
        for k in self.knobs:
            v = cfg[k.name]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                feats.extend(1.0 if v == c else 0.0 for c in k.values)
            else:
                feats.append(math.log2(v) if v > 0 else -1.0)
        return feats

    def _fit_default(self, default: dict) -> dict:
        """The file's default, each knob moved to its nearest valid value."""
        cfg = {}
        for k in self.knobs:
            want = default.get(k.name, k.values[0])
            if isinstance(want, list):  # preferences: the first one this space has
                want = next((w for w in want if w in k.values), want[-1])
            if want in k.values:
                cfg[k.name] = want
            elif isinstance(want, (int, float)) and all(isinstance(v, (int, float)) for v in k.values):
                cfg[k.name] = min(k.values, key=lambda v: (abs(math.log2(v) - math.log2(max(want, 1))), -v))
            else:
                cfg[k.name] = k.values[0]
        raw, cfg = cfg, self.canonical(cfg)
        values = {k.name: k.values for k in self.knobs}
        for name, prefs in [(k.name, default[k.name]) for k in self.knobs if isinstance(default.get(k.name), list)]:
            if self.is_valid(cfg):
                break
            # a preference this layer cannot take (e.g. AMX tiles on c_in % 64 != 0): the next one, applied
            # to the file's default (not to what the refused value implied, e.g. AMX's serial loop knobs)
            for want in [w for w in prefs if w in values[name]]:
                alt = self.canonical(dict(raw, **{name: want}))
                if self.is_valid(alt):
                    cfg = alt
                    break
        if not self.is_valid(cfg):  # nearest valid: fewest knobs changed
            best = min(self.enumerate(), key=lambda c: sum(c[n] != cfg[n] for n in self.names), default=None)
            if best is None:
                raise TvmqError(f"search space {self.template!r} has no valid config for {self.context}")
            cfg = best
        return cfg


def config_key(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True)
