"""``tvmq targets``: list the targets and whether each runs here."""

from ..targets import get_target, target_names


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
    return 0
