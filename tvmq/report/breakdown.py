"""The per-layer breakdown of an exported model (``tvmq.bench.breakdown``) as markdown and a PNG."""

from __future__ import annotations

from pathlib import Path

TOP = 25  # functions shown in the plot (the table lists all)


def _us(ms: float) -> str:
    return f"{ms * 1e3:.1f}" if ms < 10 else f"{ms * 1e3:,.0f}"


def _q(b: dict) -> str:
    if b["quantize"] == "none":
        return "float"
    return b["quantize"] + ("" if b["bits"] is None else f" {b['bits']}-bit")


def markdown(b: dict) -> str:
    q = _q(b)
    out = [f"# Where the time goes: {b['model']} ({q}), input {b['input_shape']}", "",
           f"Network {b['network_ms']:.3f} ms (time_evaluator, no instrument, one sample before each instrumented "
           f"run); the {b['vm_calls'] - b['builtin_calls']} timed calls sum to {b['sum_calls_ms']:.3f} ms "
           f"(interquartile mean of {b['runs']} instrumented runs each, less {b['instrument_overhead_us']:.2f} us of "
           f"instrument per call); the VM's {b['builtin_calls']} builtin calls and its dispatch are the rest. Shares "
           "are of the larger of the two totals.", ""]
    la = b.get("load_average")
    if la is not None and la > b.get("cores", 1) + 0.5:  # this measurement itself loads up to its threads
        out += [f"Load average {la} on {b['cores']} cores while measuring: other work shared the machine, and its "
                "interference lands in the VM row; measure on a quiet machine for a clean split.", ""]
    out += ["## By kind", "", "| kind | functions | calls | time us | share |", "|---|---|---|---|---|"]
    for k in b["kinds"]:
        out.append(f"| {k['kind']} | {k['functions']} | {k['calls']} | {_us(k['ms'])} | {100 * k['share']:.1f}% |")
    out += ["", "## By function", "",
            "| function | kind | layers | calls | time us | share |", "|---|---|---|---|---|---|"]
    for f in b["functions"]:
        layers = ", ".join(f.get("layers", []))
        if f["kind"] == "tvmq kernel":
            layers += f" ({f['variant']}, {f['schedule']} schedule)"
        out.append(f"| `{f['function']}` | {f['kind']} | {layers} | {f['calls']} | {_us(f['ms'])} | "
                   f"{100 * f['share']:.1f}% |")
    if not b.get("output_unchanged", True):
        out += ["", "Note: the output after the instrumented runs differed from the one before them."]
    return "\n".join(out) + "\n"


def plot(b: dict, path) -> Path:
    """Two panels: share by kind, and the TOP functions by time (coloured by kind)."""
    import matplotlib  # lazy: matplotlib is heavy and only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is heavy and only plotting needs it

    cmap = plt.get_cmap("tab20").colors
    color = {k["kind"]: cmap[i % len(cmap)] for i, k in enumerate(b["kinds"])}
    kinds = b["kinds"][::-1]
    funcs = b["functions"][:TOP][::-1]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, max(4.0, 0.28 * len(funcs) + 1.5)),
                                 gridspec_kw={"width_ratios": [1, 1.4]})
    a1.barh([k["kind"] for k in kinds], [100 * k["share"] for k in kinds], color=[color[k["kind"]] for k in kinds])
    for i, k in enumerate(kinds):
        a1.text(100 * k["share"], i, f" {100 * k['share']:.1f}%", va="center", fontsize=8)
    a1.set_xlabel("share of the network's time (%)")
    a1.set_title("by kind")
    labels = [f["function"] + (f" [{', '.join(f['layers'])}]" if f.get("layers") else "") for f in funcs]
    labels = [s if len(s) <= 48 else s[:45] + "..." for s in labels]
    a2.barh(labels, [f["ms"] * 1e3 for f in funcs], color=[color[f["kind"]] for f in funcs])
    a2.set_xlabel("time per inference (us)")
    a2.set_title(f"top {len(funcs)} functions" if len(b["functions"]) > TOP else "functions")
    a2.tick_params(axis="y", labelsize=7)
    q = _q(b)
    fig.suptitle(f"{Path(b['model']).name} ({q}): {b['network_ms']:.3f} ms per inference")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
