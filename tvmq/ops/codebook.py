"""Codebook-indexed convolution: ``conv2d_{layout}_codebook``.

Weights are unsigned indices into a float32 codebook of 2..256 entries;
1-, 2- and 4-bit indices may be packed several to a byte. The lookup is a
separate ``decode`` stage so the schedule chooses where it happens (inline
in the inner loop, once per weight tile, or once for all weights).
"""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError
from . import direct as D
from . import reference as R
from .base import OpSpec, register
from .float import add_epilogue, blocks, data_block_param, finish_reference, float_tolerance, residual_input

PACKABLE = (1, 2, 4)


def check_codebook(bits: int, entries: int | None, packed: bool) -> int:
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise TvmqError(f"codebook bits must be an integer in 1..8, got {bits!r}")
    entries = entries or 2**bits
    if not 2 <= entries <= 2**bits:
        raise TvmqError(f"codebook entries must be in 2..{2 ** bits} for {bits}-bit indices, got {entries}")
    if packed and bits not in PACKABLE:
        raise TvmqError(f"packed indices support bits {list(PACKABLE)}, got {bits}")
    return entries


def check_indices(indices: np.ndarray, entries: int):
    """Refuse indices that point outside the codebook (the kernel does not bounds-check)."""
    if indices.size and int(indices.max()) >= entries:
        raise TvmqError(f"codebook index {int(indices.max())} is out of range for a codebook of {entries} entries")


def index_reader(wshape, bits: int, packed: bool, name="indices", planar: int = 0):
    """Placeholder for stored indices and ``code(*idx)`` reading one index as int32.

    ``planar``: the packing of ``reference.pack_bits`` (0: neighbours share a byte; L: groups of L
    bytes, so a vector of L consecutive codes is one contiguous load and one shift).
    """
    from tvm import te  # lazy: heavy (TVM)

    if isinstance(planar, bool) or not isinstance(planar, int) or planar < 0:
        raise TvmqError(f"planar must be a non-negative integer (bytes per group; 0: interleaved), got {planar!r}")
    if not packed:
        P = te.placeholder(wshape, "uint8", name=name)
        return P, lambda *i: P[i].astype("int32")
    n = int(np.prod(wshape))
    per = 8 // bits
    group = per * (planar or 1)
    P = te.placeholder((((n + group - 1) // group) * group // per,), "uint8", name=name)
    strides = [int(np.prod(wshape[k + 1:])) for k in range(len(wshape))]

    def code(*i):
        f = sum(ix * st for ix, st in zip(i, strides))
        if planar:
            g, r = f // group, f % group
            byte, shift = g * planar + r % planar, (r // planar) * bits
        else:
            byte, shift = f // per, (f % per) * bits
        return (P[byte].astype("int32") >> shift) & ((1 << bits) - 1)

    return P, code


@register("codebook")
def conv2d_codebook(wl, bits=5, entries=None, packed=None, layout="nchwc", padding="hard", ib=None, ob=None,
                    bias=False, relu=False, planar=None, residual=False, data_block=None) -> OpSpec:
    """Direct convolution with float activations and codebook-indexed weights.

    Packed indices are planar in groups of 16 bytes by default (``reference.pack_bits``): 16
    consecutive codes, one float32 vector of lookups, come from one contiguous load."""
    from tvm import te  # lazy: heavy (TVM)

    packed = bits in PACKABLE if packed is None else packed
    planar = (16 if packed else 0) if planar is None else planar
    entries = check_codebook(bits, entries, packed)
    ib, ob = blocks(wl, ib, ob)
    xb = data_block or ib
    dshape, wshape, _, hw = D.shapes(wl, layout, ib, ob, xb)
    X = te.placeholder(dshape, "float32", name="data")
    P, code = index_reader(wshape, bits, packed, planar=planar)
    CB = te.placeholder((entries,), "float32", name="codebook")
    dec = te.compute(wshape, lambda *i: CB[code(*i)], name="decode")
    read, _ = D.padded_reader(X, wl, hw, 0.0, padding)
    out = D.conv(wl, layout, read, lambda *i: dec[i], lambda a, b: a * b, "float32", ib, ob, xb=xb)
    out, extra = add_epilogue(out, layout, ob, bias, relu, wl.c_out, residual=residual)

    def make_inputs(rng):
        x = rng.uniform(-1, 1, (wl.n, wl.c_in, wl.h, wl.w)).astype("float32")
        idx = rng.integers(0, entries, (wl.c_out, wl.c_in, wl.kh, wl.kw)).astype("uint8")
        cb = np.sort(rng.uniform(-1, 1, entries)).astype("float32")
        idx_l = D.to_layout_weight(idx, layout, ib, ob)
        ins = [D.to_layout_data(x, layout, xb), R.pack_bits(idx_l, bits, planar) if packed else idx_l, cb]
        if bias:
            ins.append(rng.uniform(-1, 1, wl.c_out).astype("float32"))
        if residual:
            ins.append(residual_input(rng, wl, layout, ob))
        return ins

    def decode_weights(ins):
        idx = R.unpack_bits(ins[1], bits, int(np.prod(wshape)), planar).reshape(wshape) if packed else ins[1]
        check_indices(idx, entries)
        return D.from_layout_weight(ins[2][idx], layout, wl, ib, ob)

    def reference(ins):
        x = D.from_layout_data(ins[0], layout)
        y = finish_reference(R.conv2d_nchw(x, decode_weights(ins), wl), ins[3] if bias else None, relu,
                             D.from_layout_data(ins[-1], layout) if residual else None)
        return D.to_layout_out(y, layout, ob)

    atol, rtol = float_tolerance(wl)
    return OpSpec(
        name=f"conv2d_{layout}_codebook", variant="codebook", layout=layout, workload=wl,
        params=dict(bits=bits, entries=entries, packed=packed, planar=planar, padding=padding, ib=ib, ob=ob, bias=bias, relu=relu,
                    **({"residual": True} if residual else {}), **data_block_param(ib, xb)),
        tensors=[X, P, CB, *extra, out], make_inputs=make_inputs, reference=reference, atol=atol, rtol=rtol,
    )
