"""Integer codebook convolution: ``conv2d_{layout}_codebook_int8``.

The codebook turned into integers: weights are b-bit indices (packed for 1, 2, 4 bits) into a
table of int8 centroids, activations uint8 with a zero point, int32 accumulation and the integer
epilogues of ``integer.py``. The lookup is a separate ``decode`` stage, as in ``codebook.py``, so
the schedule places it; decoded weights are int8, so the inner loop is the int8 kernel's (VNNI
``vpdpbusd`` where the target has it). The table is stored padded to 64 entries (one zmm; with
AVX-512 VBMI a 64-byte lookup is one ``vpermb``, see ``tvmq.build.lower``).
"""

from __future__ import annotations

import numpy as np

from . import direct as D
from . import reference as R
from .base import OpSpec, register
from .codebook import PACKABLE, check_codebook, check_indices, index_reader
from .float import blocks, data_block_param
from .integer import (check_int, epilogue_inputs, epilogue_reference, fused_reference, int_epilogue, quant_out_input,
                      residual_inputs)

TABLE = 64


@register("codebook_int8")
def conv2d_codebook_int8(wl, bits=4, entries=None, packed=None, epilogue="requant", layout="nchwc",
                         padding="hard", ib=None, ob=None, shift=30, planar=None, bias=False, relu=False,
                         residual=False, quant_out=False, data_block=None, group_read=None) -> OpSpec:
    """uint8 activations x int8 centroids looked up from b-bit indices; int32 accumulation.
    ``group_read``: (groups, base, stride, channels), a grouped conv in one call (``direct.check_group_read``).

    Packed indices are planar (``reference.pack_bits``) in groups of 64 bytes by default, the width
    of one decoded vector (16 o x 4 i in the VNNI layout)."""
    from tvm import te  # lazy: heavy (TVM)

    packed = bits in PACKABLE if packed is None else packed
    planar = (TABLE if packed else 0) if planar is None else planar
    entries = check_codebook(bits, entries, packed)
    check_int("uint8", "int8", epilogue, shift)
    table = max(entries, TABLE)
    ib, ob = blocks(wl, ib, ob)
    xb = data_block or ib
    group_read, dshape, wshape, hw = D.read_shapes(wl, layout, ib, ob, xb, group_read)
    X = te.placeholder(dshape, "uint8", name="data")
    XZ = te.placeholder((1,), "int32", name="x_zp")
    P, code = index_reader(wshape, bits, packed, planar=planar)
    CB = te.placeholder((table,), "int8", name="codebook")
    dec = te.compute(wshape, lambda *i: CB[code(*i)], name="decode")
    read, _ = D.padded_reader(X, wl, hw, XZ[0].astype("uint8"), padding)
    acc = D.conv(wl, layout, read, lambda *i: dec[i].astype("int32"), lambda a, b: a.astype("int32") * b, "int32",
                 ib, ob, xb=xb, group_read=group_read)
    out, extra = int_epilogue(acc, XZ, layout, ob, wl.c_out, epilogue, shift, bias, relu, residual, quant_out)

    def make_inputs(rng):
        x = rng.integers(0, 256, (wl.n, group_read[3] if group_read else wl.c_in, wl.h, wl.w)).astype("uint8")
        idx = rng.integers(0, entries, (wl.c_out, wl.c_in, wl.kh, wl.kw)).astype("uint8")
        cb = np.zeros(table, "int8")
        cb[:entries] = np.sort(rng.integers(-128, 128, entries))
        idx_l = D.to_layout_weight(idx, layout, ib, ob)
        zp = np.array([rng.integers(0, 256)], "int32")
        wsum = cb[idx].astype(np.int64).reshape(wl.c_out, -1).sum(1).astype("int32")
        return [D.to_layout_data(x, layout, xb), R.pack_bits(idx_l, bits, planar) if packed else idx_l, cb, zp, wsum,
                *epilogue_inputs(rng, wl, epilogue), *([rng.uniform(-1, 1, wl.c_out).astype("float32")] if bias else []),
                *(residual_inputs(rng, wl, layout, ob, residual) if residual else []),
                *([quant_out_input(rng, wl.c_in * wl.kh * wl.kw)] if quant_out else [])]

    def reference(ins):
        idx = R.unpack_bits(ins[1], bits, int(np.prod(wshape)), planar).reshape(wshape) if packed else ins[1]
        check_indices(idx, entries)
        w = D.from_layout_weight(ins[2][idx].astype(np.int64), layout, wl, ib, ob)
        x = D.from_layout_data(ins[0], layout)
        zp = int(ins[3][0])
        acc = D.group_read_reference(lambda a, b: R.conv2d_nchw(a, b, wl, pad_value=zp, acc=np.int64), x, w, wl,
                                     group_read) if group_read else R.conv2d_nchw(x, w, wl, pad_value=zp, acc=np.int64)
        y = epilogue_reference(acc, zp, ins[4], epilogue, ins[5:], shift)
        y = fused_reference(y, ins, layout, bias, relu, residual, quant_out)
        return D.to_layout_out(y, layout, ob)

    return OpSpec(
        name=f"conv2d_{layout}_codebook_int8", variant="codebook_int8", layout=layout, workload=wl,
        params=dict(bits=bits, entries=entries, packed=packed, planar=planar, epilogue=epilogue, padding=padding, ib=ib, ob=ob,
                    shift=shift, **({"bias": bias, "relu": relu} if bias or relu else {}),
                    **({"residual": residual} if residual else {}), **({"quant_out": True} if quant_out else {}),
                    **data_block_param(ib, xb), **({"group_read": list(group_read)} if group_read else {})),
        tensors=[X, P, CB, XZ, *extra, out], make_inputs=make_inputs, reference=reference, atol=1e-3, rtol=1e-5,
        int_tol=1 if quant_out else 0,
    )
