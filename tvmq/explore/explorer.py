"""The one call behind ``python -m tvmq explore``: pick records and configs, build, render."""

from __future__ import annotations

from pathlib import Path

from ..errors import TvmqError
from ..machine import this_machine
from ..variants import is_integer
from . import kernel, records, roofline, view


def explore(workload: str, variant: str, target: str, logs: str | Path, config: str = "best",
            diff: str | None = None, space_out: str | Path | None = None, full_script: bool = False,
            asm_lines: int = 80, peak_gflops: float | None = None, bandwidth_gbs: float | None = None,
            heatmap: tuple[str, str] | None = None) -> str:
    """The explorer's text for one (workload, variant, target).

    ``config``: ``best`` (fastest record), ``default``, ``record:N`` or a JSON object. ``diff``: a
    second config in the same forms (a JSON object changes only the knobs it names in A's config);
    the text is then the difference A=config -> B=diff.
    ``space_out``: also draw the space from the records into this folder (PNGs and a markdown page;
    ``heatmap`` names its two knobs, else tile_ow x ob).
    Records are selected by workload, variant and target name whatever machine measured them; code
    is compiled for the target the records were measured with (the named target when none).
    """
    probe = records.make_task(workload, variant, target)
    recs = records.load(logs, probe.workload, variant, target)
    tgt = records.main_target(records.ok(recs)) or records.main_target(recs)
    task = records.make_task(workload, variant, target, tgt) if tgt else probe
    mine = records.of_target(recs, tgt) if tgt else []
    machine = f"logs {logs}: {len(mine)} records; " + records.machine_line(mine, probe.target)
    if not mine and (config == "best" or diff == "best" or space_out):
        raise TvmqError(f"no records of {task.workload.name} {variant} on target {target} under {logs} "
                        "(use --config default or --config JSON to see a schedule without records)")
    peak = _measured_peak(mine, variant)
    if peak_gflops or bandwidth_gbs:
        dflt = roofline.estimate_peak(task.target.target, variant, True)
        peak = roofline.Peak(peak_gflops or dflt.gflops, bandwidth_gbs or dflt.bandwidth_gbs,
                             "given on the command line")

    def make(which: str, base: dict | None = None):
        cfg, rec, label = records.choose(which, task, mine, base)
        rec = rec or records.measured(cfg, mine, task.space())
        return kernel.build(task, cfg, label, rec, peak, asm_lines)

    a = make(config)
    if diff is None:
        parts = [view.show(a, task, machine, full_script)]
    else:
        parts = [view.diff(a, make(diff, a.config), task, machine)]
    if space_out:
        from . import page  # matplotlib is imported only when plots are asked for

        parts.append(page.write(space_out, mine, task, machine, a, heatmap))
    return "\n\n".join(parts)


def _measured_peak(recs: list[dict], variant: str):
    """The peak measured on this machine (``tvmq targets --measure-peak``), when the records are its own."""
    here = this_machine()
    if not recs or any(r.get("machine_kind") != here.kind for r in recs) or not here.peak_fp32_gflops:
        return None
    int8 = is_integer(variant) and here.peak_int8_gops
    return roofline.Peak(here.peak_int8_gops if int8 else here.peak_fp32_gflops, roofline.BANDWIDTH_GBS,
                         f"measured on {here.kind} ({'int8 VNNI' if int8 else 'fp32 FMA'} peak, all cores); "
                         f"bandwidth {roofline.BANDWIDTH_GBS} GB/s (assumed)")


def command_line(workload: str, variant: str, target: str) -> str:
    """The explore command for one table row (what ``tune`` and ``bench`` print under their tables)."""
    return f"python -m tvmq explore --workload {workload} --variant {variant} --target {target}"


def footer(spec: str | None, rows: list[dict], target: str) -> str:
    """One line under a table: the explore command for its first row (``spec`` is the --workload or
    --suite given: a suite name, a suite.layer, or a file)."""
    row = next((r for r in rows if r.get("workload") and r.get("variant")), None)
    if row is None:
        return ""
    suite = (spec or "SUITE").split(".")[0] if spec and not spec.endswith(".json") else "SUITE"
    layer = f"{suite}.{row['workload']}"
    return f"why a row is fast: {command_line(layer, row['variant'], target)} (--diff, --space DIR)"
