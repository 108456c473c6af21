"""``tvmq quantize``: quantize an ONNX model's Conv/Gemm/MatMul weights and report error and compression.

Single run: prints the per-layer table, writes ``DIR/weights.npz`` (packed
indices + codebooks, or integers + scales), ``DIR/manifest.json`` and
``DIR/dequantized.onnx``; with ``--eval`` also the float and quantized top-1.
``--sweep``: top-1 against bits 8..1 for k-means (each init) and uniform,
as a table, a JSON file and a PNG plot.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TvmqError
from ..quantize import INITS, QuantSpec, evaluate, onnx_model, sweep
from ..report.quantize_table import format_table, report


def add_arguments(p):
    p.add_argument("model", metavar="MODEL.onnx", help="ONNX model whose Conv/Gemm/MatMul weights are quantized")
    p.add_argument("--method", metavar="kmeans|uniform|fixed",
                   help="k-means codebook, uniform integers, or (W,F) fixed point (required unless --sweep)")
    p.add_argument("--bits", type=int, metavar="N",
                   help="index bits 1..8 (kmeans); 1..8, 16 or 32 (uniform); word width W 1..32 (fixed)")
    p.add_argument("--per-channel", action="store_true", help="one codebook / scale per output channel")
    p.add_argument("--init", metavar="linear|random|density|log",
                   help="k-means initialisation (default linear; --sweep default: all four)")
    p.add_argument("--asymmetric", action="store_true", help="uniform: full signed grid with a zero point")
    p.add_argument("--scale", default="minmax", metavar="minmax|percentile|pow2",
                   help="uniform scale: min-max range, a percentile, or the lowest-NRMSE power of two (default minmax)")
    p.add_argument("--percentile", type=float, default=99.9, help="for --scale percentile (default 99.9)")
    p.add_argument("--fixed-frac", type=int, metavar="F", help="fixed: fraction bits 0..W (default: lowest NRMSE)")
    p.add_argument("--rounding", default="nearest", metavar="nearest|stochastic", help="fixed: rounding mode")
    p.add_argument("--seed", type=int, default=0, help="seeds random k-means init and stochastic rounding")
    p.add_argument("--no-bnfold", action="store_true", help="do not fold BatchNormalization into Conv first")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default ./<model>_<method><bits>); --sweep: where the plot goes")
    p.add_argument("--json", type=Path, metavar="REPORT.json", help="also write the report as JSON")
    p.add_argument("--eval", type=Path, metavar="DATA.npz",
                   help="arrays x (model input) and y (labels): report top-1 of the float and quantized model")
    p.add_argument("--sweep", action="store_true",
                   help="accuracy vs bits 8..1 for kmeans (each init) and uniform; needs --eval")
    p.add_argument("--plot", type=Path, metavar="PNG", help="--sweep plot path (default DIR/accuracy_vs_bits.png)")


def spec_from(args, bits):

    return QuantSpec(method=args.method or "kmeans", bits=bits, per_channel=args.per_channel,
                     init=args.init or "linear", symmetric=not args.asymmetric, scale=args.scale,
                     percentile=args.percentile, frac=args.fixed_frac, rounding=args.rounding, seed=args.seed)


def run(args) -> int:
    if args.sweep:
        return run_sweep(args)
    if args.method is None or args.bits is None:
        raise TvmqError("--method and --bits are required (or use --sweep)")

    spec = spec_from(args, args.bits).check()
    out = args.out or Path(f"{Path(args.model).stem}_{spec.method}{spec.bits}")
    onnx_model.check_out_dir(out)  # before the work, not after it
    model = onnx_model.load_model(args.model)
    data = evaluate.load_dataset(args.eval, model) if args.eval else None
    mq = onnx_model.quantize_model(model, spec, fold_bn=not args.no_bnfold, source=f"MODEL {str(args.model)!r}")
    ev = _evaluate(model, mq, data) if data else None
    print(format_table(mq, ev))
    rep = report(mq, ev, str(args.model), out)  # built before writing anything, so a failure writes nothing
    onnx_model.write_outputs(mq, out, str(args.model))
    print(f"wrote {out}/weights.npz, manifest.json, dequantized.onnx")
    if args.json:
        onnx_model.write_json(args.json, rep)
        print(f"wrote {args.json}")
    return 0


def _evaluate(model, mq, data) -> dict:

    x, y = data
    acts = evaluate.activation_sparsity(model, [r.layer.activation for r in mq.layers], x)
    for r in mq.layers:
        r.report["act_sparsity"] = acts[r.layer.activation]
    return dict(samples=int(len(y)), float_top1=evaluate.top1(model, x, y), quant_top1=evaluate.top1(mq.model, x, y))


# -- table -------------------------------------------------------------------


# -- sweep -------------------------------------------------------------------
def run_sweep(args) -> int:

    if not args.eval:
        raise TvmqError("--sweep needs --eval DATA.npz to measure accuracy")
    methods = [args.method] if args.method else ["kmeans", "uniform"]
    inits = [args.init] if args.init else list(INITS)
    specs = sweep.sweep_specs(methods, inits, args.per_channel, spec_from(args, 8))
    for s in specs:
        s.check()
    model = onnx_model.load_model(args.model)
    x, y = evaluate.load_dataset(args.eval, model)
    onnx_model.quantize_model(model, specs[0], source=f"MODEL {str(args.model)!r}")  # fail fast on a bad model
    res = sweep.run_sweep(model, x, y, specs)
    res.update(model=str(args.model), data=str(args.eval), specs=[s.__dict__ for s in specs])
    print(sweep.table(res), end="")
    png = args.plot or (args.out or Path(".")) / "accuracy_vs_bits.png"
    sweep.plot(res, png, title=f"{Path(args.model).stem}: top-1 vs bits ({len(y)} test samples)")
    print(f"wrote {png}")
    if args.json:
        onnx_model.write_json(args.json, res)
        print(f"wrote {args.json}")
    return 0
