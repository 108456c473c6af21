"""Check a model export against onnxruntime: weights decoded back from weights.npz, same-input
comparison within the quantization's tolerance, top-1 accuracy on a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TvmqError
from . import WEIGHTS_NAME
from .onnx_prep import ConvLayer, check_supported, conv_layers, float_source_sha, materialize, with_weights
from .onnx_rewrites import (dropouts_as_identity, fold_constant_weights, gemm_to_conv, split_concat_convs,
                            sums_as_adds)
from ..workload import ConvWorkload
from ..ops import direct as D
from ..ops import reference as Ref
from ..quantize import fold_batchnorms, load_model
from . import weights as W
from ..quantize.evaluate import run as ort_run
from ..dataset import read_xy
from ..quantize.evaluate import top1
from ..ops.grouped import weight_from_layout
from .fake_quant import quantize_conv_inputs


def decode_weights(man_model: dict, arrays: dict, layers: list[ConvLayer], functions: list[dict]) -> dict:
    """OIHW float weights of each conv layer, decoded from the exported arrays (what the kernels read)."""

    q = man_model["quantize"]["method"]
    rows = {r["node"]: r for r in man_model["layers"]}
    fn = {f["name"]: f for f in functions}
    out = {}
    for L in layers:
        r = rows.get(L.node)
        if r is None:
            raise TvmqError(f"the exported model has no layer {L.node!r}: MODEL is not the model that was exported")
        if r.get("kernel"):
            f = fn[r["kernel"]]
            wl = ConvWorkload.from_dict(r["workload"])
            w = np.zeros(L.w.shape, np.float32)
            for piece in r["pieces"]:
                lo, hi = piece["out_channels"]
                dec = _decode_piece(q, f, wl, {k: arrays[v] for k, v in piece["inputs"].items()}, r.get("activation"))
                at = piece.get("out_rows")  # a gathered or mapped kernel: its outputs' places
                w[lo:hi] = (dec[at] if at is not None else dec[: hi - lo])[:, : L.w.shape[1]]  # less padding
        else:
            if q == "none":
                w = arrays[L.safe] if L.safe in arrays else arrays[f"{L.safe}_w"]
            elif q == "kmeans":
                w = arrays[f"{L.safe}_cb"][arrays[f"{L.safe}_idx"]]
            elif q == "kmeans_int8":
                w = arrays[f"{L.safe}_cb"].astype(np.float32)[arrays[f"{L.safe}_idx"]] * arrays[f"{L.safe}_wscale"][0]
            else:
                w = arrays[f"{L.safe}_q"].astype(np.float32) * arrays[f"{L.safe}_wscale"]
        if w.shape != L.w.shape:
            raise TvmqError(f"layer {L.node!r}: exported weights are {list(w.shape)}, MODEL has {list(L.w.shape)}")
        L.deq = np.asarray(w, np.float32)
        out[L.node] = L.deq
    return out


def _decode_piece(q, f, wl, a: dict, act) -> np.ndarray:
    """OIHW weights (padded output channels included) of one kernel call, from its stored arrays."""

    if f.get("op_variant", "").startswith("grouped_"):  # tvmq/ops/grouped.py's weight layout

        if "w" in a:  # float weights (codebooks: decoded at export)
            return weight_from_layout(a["w"], wl)
        w = weight_from_layout(a["q"], wl)
        return w.astype(np.float32) * (a["scale"] / np.float32(act["scale"])).reshape(-1, 1, 1, 1)
    p = f["op_params"]
    layout, ib, ob = f["make_op"]["layout"], p["ib"], p["ob"]
    if q == "none":
        return D.from_layout_weight(a["w"], layout, wl, ib, ob)
    if q in ("kmeans", "kmeans_int8"):
        shp = D.shapes(wl, layout, ib, ob)[1]
        idx = Ref.unpack_bits(a["idx"], p["bits"], int(np.prod(shp)), p.get("planar", 0)).reshape(shp) \
            if p["packed"] else a["idx"]
        if q == "kmeans":
            return D.from_layout_weight(a["cb"][idx], layout, wl, ib, ob)
        qw = D.from_layout_weight(a["cb"][idx], layout, wl, ib, ob).astype(np.float32)
    else:
        qw = D.from_layout_weight(a["q"], layout, wl, ib, ob).astype(np.float32)
    return qw * (a["scale"] / np.float32(act["scale"])).reshape(-1, 1, 1, 1)


NUDGE = 1e-6  # relative input change that shows how far uint8 rounding alone moves a model's output


def _rel(a: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    d = float(np.max(np.abs(a.astype(np.float64) - ref.astype(np.float64))))
    return d, d / max(float(np.max(np.abs(ref))), 1e-30)


def reference_models(mr, model_path):
    """(float source model, same-weights model) for onnxruntime, both from MODEL and the export."""

    info = mr.info
    src = load_model(model_path)
    check_supported(src)
    src = materialize(src, None)
    warn = None
    if float_source_sha(src) != info["source"]["sha256"]:
        warn = (f"{model_path} is not the float model this export was built from (sha256 differs)"
                + (f"; it was exported with --random-weights: use {mr.ex.path / 'source.onnx'}"
                   if info["source"].get("random_weights") is not None else ""))
    import onnx  # lazy: heavy (onnx)

    prep = onnx.ModelProto()
    prep.CopyFrom(src)
    fold_batchnorms(prep)
    fold_constant_weights(prep)
    gemm_to_conv(prep)
    if info.get("graph", {}).get("concat_conv_split"):  # the export ran those convs per concat input
        dropouts_as_identity(prep)
        sums_as_adds(prep)
        split_concat_convs(prep)
    layers = conv_layers(prep)
    arrays = W.load(mr.ex.path / WEIGHTS_NAME)
    decode_weights(info, arrays, layers, mr.ex.manifest["functions"])
    same = with_weights(prep, layers)
    acts = {r["weight"]: r["activation"] for r in info["layers"] if r.get("kernel") and r.get("activation")}
    u8 = tuple(r["weight"] for r in info["layers"] if (r.get("fused_epilogue") or {}).get("residual") == "uint8")
    quantize_conv_inputs(same, acts, u8)
    return src, same, warn


def compare_with_onnx(mr, model_path, x: np.ndarray) -> dict:
    """Exported model vs onnxruntime on the same input.

    A float export is compared with MODEL itself (tolerance 1e-4 relative). A quantized export is
    compared with MODEL carrying the export's own weights, decoded from weights.npz, and with integer
    activations each tvmq conv's input rounded as the kernel reads it (:mod:`.fake_quant`), so only
    the arithmetic differs (tolerance per quantization; with integer activations at least twice what
    the reference itself moves for an input ``NUDGE`` larger, since one activation rounded the other
    way changes all after it); and, for information, with the float MODEL (the quantization's own
    error). MODEL must be the float model the export was built from.
    """

    src, same, warn = reference_models(mr, model_path)
    q = mr.info["quantize"]
    y = mr.run(x)
    ref_float = ort_run(src, x, [src.graph.output[0].name], batch=len(x))[0]
    ref = ref_float if q["method"] == "none" else ort_run(same, x, [same.graph.output[0].name], batch=len(x))[0]
    if ref.shape != y.shape:
        raise TvmqError(f"onnxruntime's output is {list(ref.shape)}, the export's {list(y.shape)}")
    d, r = _rel(y, ref)
    d_float, r_float = _rel(y, ref_float)
    tol = mr.info["tolerance"]["relative"]
    sens = None
    if q.get("calibration"):  # rounding to uint8 makes a deep net's output jump: how far, for this input
        nudged = ort_run(same, (x * np.float32(1 + NUDGE)).astype(np.float32), [same.graph.output[0].name],
                         batch=len(x))[0]
        sens = _rel(nudged, ref)[1]
    bound = max(tol, 2 * sens) if sens is not None else tol
    ok = r <= bound and warn is None
    lines = [f"warning: {warn}"] if warn else []
    verdict = "ok" if ok else "FAIL"
    if q["method"] == "none":
        lines.append(f"vs onnxruntime on {Path(model_path).name}: max |diff| {d:.3g}, relative {r:.3g} "
                     f"(tolerance {tol:g}) -> {verdict}")
    else:
        qname = f"{q['method']} {q['bits']}-bit"
        same = f"same ({qname}) weights" + (" and activation rounding" if q.get("calibration") else "")
        why = "" if sens is None else (f"; the reference itself moves {sens:.3g} for an input {NUDGE:g} larger, "
                                       f"so the bound is max({tol:g}, 2 x that) = {bound:.3g}")
        lines.append(f"vs onnxruntime, {same}: max |diff| {d:.3g}, relative {r:.3g} "
                     f"(tolerance {tol:g}{why}) -> {verdict}")
        lines.append(f"vs onnxruntime, float model: max |diff| {d_float:.3g}, relative {r_float:.3g} "
                     f"(the quantization's own error)")
    return {"ok": bool(ok), "max_abs_diff": d, "relative": r, "tolerance": tol, "rounding_sensitivity": sens,
            "bound": bound,
            "float_max_abs_diff": d_float, "float_relative": r_float, "argmax_agree_float":
            bool((y.reshape(len(y), -1).argmax(1) == ref_float.reshape(len(y), -1).argmax(1)).all()),
            "warning": warn, "lines": lines}


def load_data(data_path, input_shape) -> tuple[np.ndarray, np.ndarray]:
    """x (float32) and y (int64) of an .npz, checked against the model's input; numpy only."""

    x, y = read_xy(data_path)
    if list(x.shape[1:]) != list(input_shape[1:]) or y.shape != (len(x),) or not len(x):
        raise TvmqError(f"--eval: x is {list(x.shape)} and y {list(y.shape)}; the model takes "
                        f"[N, {', '.join(map(str, input_shape[1:]))}] with N labels")
    return x.astype(np.float32), y.astype(np.int64)


def evaluate(mr, data_path, model_path=None) -> dict:
    """Top-1 of the exported model on ``data_path`` (x, y), and of MODEL under onnxruntime if given.

    Without MODEL this needs numpy and the TVM runtime only (what a board has)."""
    x, y = load_data(data_path, mr.input_shape)
    logits = mr.run_batches(x).reshape(len(x), -1)
    res = {"n": int(len(x)), "exported": float((logits.argmax(1) == y).mean())}
    if model_path:

        res["onnx"] = top1(materialize(load_model(model_path), None), x, y)
    return res
