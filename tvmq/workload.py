"""Convolution workloads: shapes, FLOPs, bytes, and the named thesis suites.

A workload file is a JSON list of layer objects with the keys ``name``, ``n``
(default 1), ``c_in``, ``h``, ``w``, ``c_out``, ``k`` or ``kh`` + ``kw``,
``stride`` (int or [sh, sw]), ``pad`` (int, [ph, pw] or
[top, left, bottom, right]) and ``groups`` (default 1: a grouped convolution has
``c_in / groups`` input channels per group; ``groups == c_in == c_out`` is depthwise).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from .errors import TvmqError

_KEYS = {"name", "n", "c_in", "h", "w", "c_out", "k", "kh", "kw", "stride", "pad", "groups"}


@dataclass(frozen=True)
class ConvWorkload:
    """One 2-D convolution layer (NCHW semantics; layouts are chosen later).

    Attributes
    ----------
    pad : tuple of int
        (top, left, bottom, right).
    stride : tuple of int
        (sh, sw).
    """

    name: str
    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1  # last, and left out of ``key``/``to_dict`` when 1: older records keep their keys

    def __post_init__(self):
        for field in ("n", "c_in", "h", "w", "c_out", "kh", "kw", "groups"):
            v = getattr(self, field)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise TvmqError(f"workload {self.name!r}: {field} must be a positive integer, got {v!r}")
        if len(self.stride) != 2 or any((not isinstance(s, int)) or s <= 0 for s in self.stride):
            raise TvmqError(f"workload {self.name!r}: stride must be positive integers, got {self.stride!r}")
        if len(self.pad) != 4 or any((not isinstance(p, int)) or p < 0 for p in self.pad):
            raise TvmqError(f"workload {self.name!r}: pad must be non-negative integers, got {self.pad!r}")
        if self.c_in % self.groups or self.c_out % self.groups:
            raise TvmqError(f"workload {self.name!r}: groups={self.groups} must divide c_in={self.c_in} and "
                            f"c_out={self.c_out}")
        ph = self.h + self.pad[0] + self.pad[2]
        pw = self.w + self.pad[1] + self.pad[3]
        if self.kh > ph or self.kw > pw:
            raise TvmqError(
                f"workload {self.name!r}: kernel {self.kh}x{self.kw} is larger than the padded input {ph}x{pw}"
            )

    # -- shapes ---------------------------------------------------------
    @property
    def out_h(self) -> int:
        return (self.h + self.pad[0] + self.pad[2] - self.kh) // self.stride[0] + 1

    @property
    def out_w(self) -> int:
        return (self.w + self.pad[1] + self.pad[3] - self.kw) // self.stride[1] + 1

    @property
    def padded_hw(self) -> tuple[int, int]:
        return self.h + self.pad[0] + self.pad[2], self.w + self.pad[1] + self.pad[3]

    @property
    def c_in_per_group(self) -> int:
        return self.c_in // self.groups

    @property
    def depthwise(self) -> bool:
        """One input and one output channel per group (channel multiplier 1)."""
        return self.groups > 1 and self.groups == self.c_in == self.c_out

    # -- costs ----------------------------------------------------------
    @property
    def flops(self) -> int:
        """Multiply-adds counted as two: 2*N*Ho*Wo*Cout*(Cin/groups)*Kh*Kw."""
        return 2 * self.n * self.out_h * self.out_w * self.c_out * self.c_in_per_group * self.kh * self.kw

    def bytes(self, weight_bits: float = 32, act_bytes: int = 4, out_bytes: int = 4, codebook_entries: int = 0) -> dict:
        """Working-set bytes: input, output, weights (at ``weight_bits``) and codebook."""
        n_w = self.c_out * self.c_in_per_group * self.kh * self.kw
        d = {
            "input": self.n * self.c_in * self.h * self.w * act_bytes,
            "output": self.n * self.c_out * self.out_h * self.out_w * out_bytes,
            "weights": int(-(-n_w * weight_bits // 8)),
            "codebook": codebook_entries * 4,
        }
        d["total"] = sum(d.values())
        return d

    def im2col_bytes(self, act_bytes: int = 4) -> int:
        """Extra bytes for the im2col matrix (Cin*Kh*Kw) x (N*Ho*Wo)."""
        return self.c_in * self.kh * self.kw * self.n * self.out_h * self.out_w * act_bytes

    def arithmetic_intensity(self, **kw) -> float:
        """FLOPs per byte of the working set (for a roofline)."""
        return self.flops / self.bytes(**kw)["total"]

    @property
    def key(self) -> str:
        """A stable key of everything that changes the kernel (not the name)."""
        s, p = self.stride, self.pad
        return (
            f"n{self.n}_c{self.c_in}_h{self.h}_w{self.w}_o{self.c_out}_k{self.kh}x{self.kw}"
            f"_s{s[0]}x{s[1]}_p{p[0]}.{p[1]}.{p[2]}.{p[3]}"
        ) + (f"_g{self.groups}" if self.groups != 1 else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stride"] = list(self.stride)
        d["pad"] = list(self.pad)
        if self.groups == 1:
            del d["groups"]
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "workload") -> "ConvWorkload":
        """Parse one layer object; errors name the field and the value."""
        if not isinstance(d, dict):
            raise TvmqError(f"{where}: a layer must be a JSON object, got {d!r}")
        unknown = set(d) - _KEYS
        if unknown:
            raise TvmqError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys are {sorted(_KEYS)}")
        name = d.get("name", "layer")
        where = f"{where} {name!r}"
        for req in ("c_in", "h", "w", "c_out"):
            if req not in d:
                raise TvmqError(f"{where}: missing key {req!r}")
        if "k" in d:
            if "kh" in d or "kw" in d:
                raise TvmqError(f"{where}: give either k or kh+kw, not both")
            kh = kw = d["k"]
        elif "kh" in d and "kw" in d:
            kh, kw = d["kh"], d["kw"]
        else:
            raise TvmqError(f"{where}: missing key 'k' (or 'kh' and 'kw')")
        stride = d.get("stride", 1)
        if isinstance(stride, int):
            stride = (stride, stride)
        elif isinstance(stride, list) and len(stride) == 2:
            stride = tuple(stride)
        else:
            raise TvmqError(f"{where}: stride must be an int or [sh, sw], got {stride!r}")
        pad = d.get("pad", 0)
        if isinstance(pad, int):
            pad = (pad,) * 4
        elif isinstance(pad, list) and len(pad) == 2:
            pad = (pad[0], pad[1], pad[0], pad[1])
        elif isinstance(pad, list) and len(pad) == 4:
            pad = tuple(pad)
        else:
            raise TvmqError(f"{where}: pad must be an int, [ph, pw] or [top, left, bottom, right], got {pad!r}")
        return cls(
            name=str(name), n=d.get("n", 1), c_in=d["c_in"], h=d["h"], w=d["w"], c_out=d["c_out"],
            kh=kh, kw=kw, stride=stride, pad=pad, groups=d.get("groups", 1),
        )


def _suites_data() -> dict:
    text = resources.files("tvmq").joinpath("data/thesis_suites.json").read_text()
    return json.loads(text)


def suites() -> dict[str, list[ConvWorkload]]:
    """The named suites: alexnet, large, llc (llc flattened as machine.layer)."""
    data = _suites_data()
    out = {}
    for suite, layers in data.items():
        if suite.startswith("_"):
            continue
        if isinstance(layers, dict):  # llc: per machine
            flat = []
            for machine, ls in layers.items():
                if machine.startswith("_"):
                    continue
                for layer in ls:
                    layer = dict(layer, name=f"{machine}.{layer['name']}")
                    flat.append(ConvWorkload.from_dict(layer, f"suite {suite}"))
            out[suite] = flat
        else:
            out[suite] = [ConvWorkload.from_dict(layer, f"suite {suite}") for layer in layers]
    return out


def load_file(path: str | Path) -> list[ConvWorkload]:
    """Read a workload file (a JSON list of layer objects)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TvmqError(f"workload file {str(path)!r} does not exist") from None
    except json.JSONDecodeError as e:
        raise TvmqError(f"workload file {str(path)!r} is not valid JSON: {e}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise TvmqError(f"workload file {str(path)!r}: expected a non-empty JSON list of layer objects")
    return [ConvWorkload.from_dict(d, f"workload file {path.name} layer {i}") for i, d in enumerate(data)]


def resolve(spec: str | None = None, file: str | None = None) -> list[ConvWorkload]:
    """Resolve ``--workload SUITE[.LAYER]`` or ``--workload-file PATH`` into layers."""
    if file:
        return load_file(file)
    if not spec:
        raise TvmqError("no workload given: use --workload SUITE[.LAYER] or --workload-file PATH")
    all_suites = suites()
    suite, _, layer = spec.partition(".")
    if suite not in all_suites:
        raise TvmqError(f"unknown workload suite {suite!r}; valid suites are {sorted(all_suites)}")
    layers = all_suites[suite]
    if not layer:
        return layers
    chosen = [w for w in layers if w.name == layer or w.name.startswith(layer + ".")]
    if not chosen:
        raise TvmqError(f"unknown layer {layer!r} in suite {suite!r}; valid layers are {[w.name for w in layers]}")
    return chosen
