"""``tvmq targets``: list the targets and whether each runs here."""

from ..run import amx_permission
from ..targets import cpu_flags, get_target, target_names


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args):
    import json

    rows = []
    for name in target_names():
        t = get_target(name)
        why = t.local_problem()
        rows.append(dict(name=name, runner=t.runner, local=why is None, why=why or "", target=t.target,
                         description=t.description))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':8} {'measured':8} {'runs here':9}  target")
    for r in rows:
        here = "yes" if r["local"] else "no (RPC)"
        print(f"{r['name']:8} {r['runner']:8} {here:9}  {json.dumps(r['target'], sort_keys=True)}")
        print(f"{'':8} {r['description']}")
    print(amx_line())
    return 0


def amx_line() -> str:
    """Whether this CPU has Intel AMX and whether Linux grants this process its tile state."""
    amx = sorted(f for f in cpu_flags() if f.startswith("amx_"))
    if not amx:
        return "AMX: this CPU has none"
    why = amx_permission.request()
    return f"AMX: this CPU has {' '.join(amx)}; Linux {'refuses tile state: ' + why if why else 'grants tile state'}"
