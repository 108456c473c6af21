"""The arrays a direct tvmq kernel of a model export reads besides its data: one layer's (or one
group's) weights in the kernel's layout, with the zero points, weight sums, scales and fused-epilogue
inputs its quantization needs, in the kernel's argument order (``relax_kernels._Plan._call`` makes
them graph inputs; ``compare.decode_weights`` reads them back)."""

from __future__ import annotations

import numpy as np

from ..ops import direct as D
from ..ops import reference as Ref
from .requant import out_q_array


def channel_slicer(lo: int, hi: int, c_pad: int, c_in: int):
    """(sl, wsl): output channels lo:hi zero-padded to ``c_pad`` (padded channels are sliced off after
    the call); ``wsl`` also zero-pads OIHW weights' input channels to the kernel's ``c_in`` (its data
    pads too)."""

    def sl(a):
        a = a[lo:hi]
        if c_pad > hi - lo:
            a = np.concatenate([a, np.zeros((c_pad - (hi - lo), *a.shape[1:]), a.dtype)])
        return a

    def wsl(a):
        a = sl(a)
        if c_in > a.shape[1]:
            a = np.concatenate([a, np.zeros((a.shape[0], c_in - a.shape[1], *a.shape[2:]), a.dtype)], 1)
        return a

    return sl, wsl


def layer_inputs(quantize: str, bits: int, op, L, lo: int, hi: int, c_pad: int, fuse: dict | None) -> list:
    """(role key, array or None, role) per kernel argument after the data; None marks the fused
    residual, a graph tensor rather than an array (the caller passes it in the output's layout)."""
    p = op.params
    layout, ib, ob = op.layout, p["ib"], p["ob"]
    sl, wsl = channel_slicer(lo, hi, c_pad, op.workload.c_in)
    if quantize == "int8":
        qw = wsl(L.quant["q"])
        args = [("q", D.to_layout_weight(qw, layout, ib, ob).astype(np.int8), "int8 weights"),
                ("xzp", np.array([L.act["zero_point"]], np.int32), "activation zero point"),
                ("wsum", qw.astype(np.int64).reshape(c_pad, -1).sum(1).astype(np.int32), "weight sums"),
                ("scale", sl(np.float32(L.act["scale"]) * L.quant["w_scale"]).astype(np.float32),
                 "output scales (x_scale * w_scale)")]
    elif quantize == "none":
        args = [("w", D.to_layout_weight(wsl(L.quant["weight"]), layout, ib, ob), "float weights")]
    else:
        idx = D.to_layout_weight(wsl(L.quant["indices"]), layout, ib, ob)
        idx = Ref.pack_bits(idx, bits, p.get("planar", 0)) if p["packed"] else idx
        cb = L.quant["codebook"]
        args = [("idx", idx, f"{bits}-bit codebook indices" + (" (packed)" if p["packed"] else "")),
                ("cb", cb, "int8 codebook" if quantize == "kmeans_int8" else "codebook")]
        if quantize == "kmeans_int8":  # padded output channels index entry 0: their sums are of entry 0 too
            wsum = cb[wsl(L.quant["indices"])].astype(np.int64).reshape(c_pad, -1).sum(1).astype(np.int32)
            args += [("xzp", np.array([L.act["zero_point"]], np.int32), "activation zero point"),
                     ("wsum", wsum, "weight sums"),
                     ("scale", sl(np.float32(L.act["scale"]) * L.quant["w_scale"]).astype(np.float32),
                      "output scales (x_scale * codebook scale)")]
    if fuse and fuse.get("bias") is not None:
        args.append(("bias", sl(fuse["bias"]).astype(np.float32), "bias (fused epilogue)"))
    if fuse and fuse.get("residual") is not None:
        args.append(("residual", None, "residual (fused epilogue)"))
        if fuse.get("residual_q"):
            args.append(("resq", np.array(fuse["residual_q"], np.float32), "the residual's uint8 activations "
                         "(scale, zero point)"))
    if fuse and fuse.get("quant_out"):
        args.append(("outq", out_q_array(*fuse["quant_out"]), "next layer's activations (1 / scale, zero point)"))
    return args
