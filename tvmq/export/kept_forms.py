"""The forms a model export keeps each activation in between kernels, so the next kernel reads it without a
layout change or a quantize pass: blocked (NCHW{b}c, as a kernel wrote it) and uint8 (a kernel's
``quant_out`` epilogue). ``_Plan`` (relax_kernels.py) inherits them; ``by_safe`` and ``opts`` are its."""

from __future__ import annotations

import numpy as np

from ..variants import QUANTIZATIONS
from .joint_layouts import Want
from .fusion import _op_is
from .layouts import BLOCKED, _from_layout, blocked_global_pool, blocked_max_pool, blocked_twin, global_pool_kind
from .requant import dequantize, quantize
from .channel_maps import Mapped, identity, mapped_global_pool, mapped_twin, shuffle_step


def concat_u8(value, quantized: dict):
    """(the concat of the uint8 parts, layout, block, quantization) when ``value`` concatenates on channels
    tensors that kernels wrote as uint8 in one blocked layout, block and quantization; else None."""
    from tvm import relax  # lazy: heavy (TVM)

    if not (_op_is(value, "relax.concat") and value.attrs.axis is not None and int(value.attrs.axis) == 1
            and isinstance(value.args[0], relax.Tuple)):
        return None
    qs = [quantized.get(f) for f in value.args[0].fields]
    if any(q is None for q in qs) or len({(q[1], q[2], q[3]) for q in qs}) != 1 or qs[0][1] not in BLOCKED:
        return None
    return relax.op.concat([q[0] for q in qs], axis=1), qs[0][1], qs[0][2], qs[0][3]


def max_pool_u8(value, quantized: dict):
    """(the max pool on the uint8 form, layout, block, quantization) when ``value`` max-pools in NCHW a
    tensor that a kernel wrote as uint8 in a blocked layout (its padding, uint8's least value, loses to
    any real one); else None."""
    if not (_op_is(value, "relax.nn.max_pool2d") and str(value.attrs.layout) == "NCHW"
            and str(value.attrs.out_layout) == "NCHW"):
        return None
    q = quantized.get(value.args[0])
    if q is None or q[1] not in BLOCKED:
        return None
    return blocked_max_pool(q[0], value.attrs, q[2]), q[1], q[2], q[3]


class KeptForms:
    """NCHW vars -> the other forms of the same tensor that kernels wrote, and how a kernel reads one."""

    def __init__(self):
        self.blocked: dict = {}  # NCHW var -> (the same tensor in NCHW{ob}c, ob)
        # NCHW var -> (NCHW{ob}c with the channels its kernel padded, ob): only a global pool reads it
        self.padded: dict = {}
        # NCHW var -> (the same tensor as uint8 activations, its layout, block, (scale, zero point)): a
        # kernel that quantized its output for the next layer (its float NCHW twin is left to DCE)
        self.quantized: dict = {}
        # NCHW var -> its Mapped form (channel_maps.py): a gathered kernel's output, a shuffle of one, ...
        self.mapped: dict = {}
        self._shuffling: dict = {}  # the steps of a channel shuffle on a mapped tensor (shuffle_step)

    def form(self, x) -> Mapped | None:
        """``x`` as a ``Mapped`` form: its own, else its blocked twin (channels in order), else None."""
        if x in self.mapped:
            return self.mapped[x]
        if x in self.blocked:
            t, b = self.blocked[x]
            return identity(t, b, int(x.ty.shape[1]))
        return None

    def quant_out(self, epi: dict | None):
        """(scale, zero point) of the uint8 activations that ``epi``'s consuming layer reads, when the
        producing kernel should write them (integer activations), else None."""
        if not epi or not epi.get("quant_for") or not QUANTIZATIONS[self.opts.quantize].integer_activations:
            return None
        L2 = self.by_safe.get(epi["quant_for"])
        return (float(L2.act["scale"]), float(L2.act["zero_point"])) if L2 is not None and L2.act else None

    def as_u8(self, x, L):
        """``x`` as uint8 activations of layer ``L`` where the producing kernel already wrote them:
        (tensor, layout, block), else None."""
        q = self.quantized.get(x)
        if q is None or not L.act or q[3] != (float(L.act["scale"]), float(L.act["zero_point"])):
            return None
        return q[:3]

    def input_source(self, x, L):
        """(kept, u8) for a kernel reading the NCHW var ``x``: ``kept`` the form it can read without a
        layout change if its blocks fit ((tensor, block), uint8 where ``u8``), ``u8`` the uint8 form that
        the previous kernel wrote for layer ``L`` ((tensor, layout, block)) or None."""
        u8 = self.as_u8(x, L) if QUANTIZATIONS[self.opts.quantize].integer_activations else None
        if u8 is None:
            return self.blocked.get(x), None
        return ((u8[0], u8[2]) if u8[1] in BLOCKED else None), u8

    def read_input(self, bb, x, L, keep, u8):
        """``x`` as the kernel of layer ``L`` reads it before any reblock: the kept form, else the uint8
        form back in NCHW, else ``x``; quantized where activations are integers and no kernel did it."""
        if keep is not None:
            x = keep[0]
        elif u8 is not None:  # uint8 in another layout: back to NCHW (still uint8)
            x = _from_layout(bb, u8[0], u8[1], int(x.ty.shape[1]))
        if QUANTIZATIONS[self.opts.quantize].integer_activations and u8 is None:
            x = quantize(bb, x, L.act["scale"], L.act["zero_point"])
        return x

    def output(self, bb, y, layout: str, block: int, c: int, quant_out=None, keep_blocked: bool = True):
        """The NCHW var of a kernel's output ``y`` (``c`` channels); its blocked or uint8 form is kept
        for the next kernels (``quant_out``: ``y`` is uint8 with that (scale, zero point))."""
        if quant_out:
            out = _from_layout(bb, dequantize(bb, y, *quant_out), layout, c)
            self.quantized[out] = (y, layout, block, quant_out)
            return out
        out = _from_layout(bb, y, layout, c)
        if layout in BLOCKED:
            (self.blocked if keep_blocked else self.padded)[out] = (y, block)
        return out

    def propagate(self, bb, value, out):
        """Glue that works on NCHWc as well gets a blocked twin when its inputs have one (layouts.py); a
        channel concat of uint8 kernel outputs (one quantization, one blocked layout) a uint8 one."""
        twin = blocked_twin(bb, value, self.blocked)
        if twin is not None:
            self.blocked[out] = twin
        if self.mapped:
            self._propagate_mapped(bb, value, out)
        u8 = concat_u8(value, self.quantized) or max_pool_u8(value, self.quantized)
        if u8 is not None:
            self.quantized[out] = (bb.emit(u8[0]), *u8[1:])

    def _propagate_mapped(self, bb, value, out):
        """A shuffle of a mapped tensor permutes its map; per-channel glue with a mapped input gets a
        mapped twin."""
        from tvm import relax  # lazy: heavy (TVM)

        step = shuffle_step(value, self.mapped, self._shuffling)
        if isinstance(step, Mapped):
            self.mapped[out] = step
        elif step is not None:
            self._shuffling[out] = (step[1], step[2], step[3], step[0])
        elif isinstance(value, relax.Call) and any(
                a in self.mapped or (isinstance(a, relax.Tuple) and any(f in self.mapped for f in a.fields))
                for a in value.args):
            m = mapped_twin(bb, value, self.form)
            if m is not None:
                self.mapped[out] = m

    def global_pool(self, bb, value):
        """A global pool of a tensor that a kernel wrote blocked (float, with padded channels, or uint8:
        dequantized on the way) run on that form (``layouts.blocked_global_pool``): its NCHW result, or
        None."""
        kind = global_pool_kind(value)
        if kind is None:
            return None
        x = value.args[0]
        if x in self.mapped:
            return mapped_global_pool(bb, value, kind, self.mapped[x])
        src = self.blocked.get(x) or self.padded.get(x)
        q = self.quantized.get(x)
        if src is None and q is not None and q[1] in BLOCKED:
            src = (dequantize(bb, q[0], *q[3]), q[2])
        return None if src is None else blocked_global_pool(bb, value, kind, *src)

    def want(self, x, L, wl, groups, fuse) -> Want | None:
        """The blocks that the input ``x`` of layer ``L`` and its fused residual are kept in, if any."""
        if groups != 1 or wl.c_in != L.w.shape[1]:
            return None
        keep, _ = self.input_source(x, L)
        ia = QUANTIZATIONS[self.opts.quantize].integer_activations
        ib = keep[1] if keep is not None else None
        in_bytes = wl.n * wl.c_in * wl.h * wl.w * (1 if ia else 4)
        ob, res_bytes = None, 0
        r = fuse.get("residual") if fuse else None
        if r is not None:
            if fuse.get("residual_q"):  # a uint8 residual: its block where a kernel wrote it blocked
                q = self.quantized.get(r)
                ob = q[2] if q is not None and q[1] in BLOCKED else None
            else:
                ob = self.blocked.get(r, (None, None))[1]
            res_bytes = int(np.prod([int(v) for v in r.ty.shape])) * (1 if fuse.get("residual_q") else 4)
        return Want(ib, in_bytes, ob, res_bytes, wl.n * wl.c_out * wl.out_h * wl.out_w * (1 if ia else 4))
