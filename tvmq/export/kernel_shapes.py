"""The workload a model's conv2d runs as on tvmq kernels: one call, one call per group, or padded channels
(``KernelShapes``, a mixin of ``relax_kernels._Plan``: ``opts``, ``target`` and ``records`` are the plan's),
and the export's task and variant for it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import TvmqError
from .. import variants
from ..variants import QUANTIZATIONS, model_variant
from ..task import Task
from ..workload import ConvWorkload
from ..build.from_log import best_record
from ..ops.codebook import PACKABLE


def model_variant_params(opts) -> tuple[str, dict]:
    """(variant, operator parameters) of a model's kernels for its ``--quantize`` and ``--bits``."""

    variant = model_variant(opts.quantize, opts.bits)
    if variants.get(variant).op == "codebook":  # float codebooks: codebook, codebook4
        return variant, {"bits": opts.bits}
    if variant == "codebook_int8":
        return variant, {"bits": opts.bits, **({} if opts.bits in PACKABLE else {"planar": 0})}
    return variant, {}


_SPACES: dict = {}

C_OUT_BLOCK = 16  # padded output channels: a multiple of the default output block (16 lanes, VNNI's ob)
C_IN_BLOCK = 4  # padded input channels of integer activations: VNNI's input block (4 bytes per lane)
FLOAT_PAD_MIN = 512  # float pads output channels only from here (classifiers); smaller odd counts keep their blocks
# ... to a multiple of 32, so that two 16-lane blocks share each input load (SqueezeNet's 1000 classes on
# 13x13: 1008 fits only 16-wide blocks, 0.37 ms tuned; 1024 with 32-wide blocks 0.34 ms, AMD Zen 5)
FLOAT_CLASSIFIER_BLOCK = 32


@dataclass(frozen=True)
class _ExportTask(Task):
    """A Task whose search space is loaded once per export process (shape, operator, target features):
    the export asks for it several times per kernel, and loading fits the default config anew."""

    def space(self):
        k = (self.workload.key, self.op_name, repr(self.target.target), tuple(sorted(self.target.features())))
        if k not in _SPACES:
            _SPACES[k] = Task.space(self)
        return _SPACES[k]


class KernelShapes:
    """How a conv2d call maps to tvmq kernel workloads (whole, per group, padded)."""

    def _variant(self):
        return model_variant_params(self.opts)

    def _fits(self, wl) -> str | None:
        """None if tvmq's search space has a schedule for ``wl``, else why not."""

        variant, params = self._variant()
        try:
            _ExportTask.make(wl, variant, self.target, **params).space()
        except TvmqError as e:
            return str(e).split(" for {")[0]
        return None

    def _pieces(self, call, L):
        """How to run this conv2d on tvmq kernels: (workload, groups), or (None, why).

        A grouped conv runs one kernel call per group (same kernel) on a channel slice; an output-channel
        count no schedule fits (e.g. 10 or 1000 classes) is padded to a multiple of 16 and sliced back; a
        conv's or a group's channels may be padded too (``_padded_workload``).
        """

        a = call.attrs
        n, c, h, w = [int(v) for v in call.args[0].ty.shape]
        o, cg, kh, kw = L.w.shape
        groups = int(a.groups)
        if any(int(d) != 1 for d in a.dilation):
            return None, f"dilation={[int(d) for d in a.dilation]}"
        if str(a.data_layout) != "NCHW" or str(a.kernel_layout) != "OIHW" or cg * groups != c:
            return None, "layout"
        if groups > 4:
            return None, f"groups={groups} (depthwise-like convolutions have no tvmq kernel)"
        og = o // groups
        name = re.sub(r"\W", "_", L.node)
        base = dict(n=n, c_in=cg, h=h, w=w, kh=kh, kw=kw, stride=(int(a.strides[0]), int(a.strides[1])),
                    pad=tuple(int(p) for p in a.padding))
        wl = ConvWorkload(name, c_out=og, **base)
        why = self._fits(wl)
        if why:
            padded = ConvWorkload(name, c_out=-(-og // C_OUT_BLOCK) * C_OUT_BLOCK, **base)
            if padded.c_out == og or self._fits(padded):
                return None, why
            return padded, groups
        # ungrouped: for int8 (VNNI needs 16 x 4 channel blocks); float only a large output count that 16 does
        # not divide (a classifier's 1000 classes: 10- or 8-lane blocks, SqueezeNet's last conv 0.8 ms tuned)
        pad = groups > 1 or QUANTIZATIONS[self.opts.quantize].integer_activations or \
            (wl.c_out % C_OUT_BLOCK and wl.c_out >= FLOAT_PAD_MIN)
        return (self._padded_workload(wl) if pad else wl), groups

    def _padded_workload(self, wl):
        """A conv's (or a group's) kernel workload: ``wl`` with its output channels padded to a multiple of
        16 (a float classifier on a feature map: 32, or 16 where only that padding is tuned) and, for integer
        activations, its input channels to a multiple of 4; ``wl`` itself when that changes nothing, does
        not fit, or ``wl`` has a tuning record (a tuned ``wl`` keeps it).

        The default schedule blocks channels by divisors of their counts, so an odd count (ShuffleNet's
        68 or 34 channels per group, a 1000-class classifier, an RGB input's 3) gets 4- or 8-lane blocks
        or one 34-wide block and, for int8, no VNNI (16 output by 4 input channels); padded,
        ShuffleNet's per-group 1x1 kernels ran 1.4-31x faster per call (docs/MODELS.md). Float gains
        nothing from padded input channels, so they stay."""
        c_in, blocks = wl.c_in, (C_OUT_BLOCK,)
        if QUANTIZATIONS[self.opts.quantize].integer_activations:
            c_in = -(-c_in // C_IN_BLOCK) * C_IN_BLOCK
        elif wl.c_out >= FLOAT_PAD_MIN and wl.out_h * wl.out_w > 1:  # a dense layer is memory-bound: 16
            blocks = (FLOAT_CLASSIFIER_BLOCK, C_OUT_BLOCK)
        cands = [p for p in dict.fromkeys(replace(wl, c_in=c_in, c_out=-(-wl.c_out // m) * m) for m in blocks)
                 if p != wl and not self._fits(p)]
        variant, params = self._variant()

        def tuned(w):
            return best_record(_ExportTask.make(w, variant, self.target, **params), self.records) is not None

        if not cands or tuned(wl):
            return wl
        return next((p for p in cands if tuned(p)), cands[0])  # a tuned padding before an untuned one

