"""``tvmq edge up|down|status``: the emulated Raspberry Pi 3 (qemu Cortex-A53 + TVM RPC)."""

from __future__ import annotations

import json
import time
from ..edge import board


def add_arguments(p):
    sub = p.add_subparsers(dest="edge_cmd", metavar="ACTION", required=True)
    u = sub.add_parser("up", help="install once, then start a tracker and N emulated servers on 127.0.0.1")
    u.add_argument("--servers", type=int, default=1, metavar="N", help="emulated RPC servers (default 1)")
    u.add_argument("--port", type=int, default=9190, metavar="P", help="tracker port on 127.0.0.1 (default 9190)")
    u.add_argument("--key", default="rasp3b", help="RPC key the servers register (default rasp3b)")
    u.add_argument("--threads", type=int, default=None, metavar="T",
                   help="TVM_NUM_THREADS on the emulated servers (default: TVM's)")
    u.add_argument("--wait", type=float, default=180.0, metavar="S",
                   help="seconds to wait for the servers to register (default 180)")
    sub.add_parser("down", help="stop exactly the processes 'edge up' started")
    s = sub.add_parser("status", help="show the tracker, the servers and what the tracker lists")
    s.add_argument("--json", action="store_true", help="print JSON")


def _print_status(st: dict):
    if "tracker" not in st:
        print(f"emulated board: down (installed: {'yes' if st['installed'] else 'no'}; {st['edge_dir']})")
        return
    state = "up" if st["up"] else "DOWN" if not st["tracker_alive"] else "no server registered"
    print(f"emulated board: {state}  (qemu-aarch64 Cortex-A53; timings are emulated)")
    print(f"  tracker  {st['tracker']}  pid {st['tracker_pid']}  {'alive' if st['tracker_alive'] else 'dead'}")
    print(f"  key      {st['key']}: {st['registered']} registered, {st['free']} free")
    for s in st["servers"]:
        print(f"  server   127.0.0.1:{s['port']}  pid {s['pid']}  {'alive' if s['alive'] else 'dead'}  log {s['log']}")
    if st.get("error"):
        print(f"  error    {st['error']}")
    print(f"  use: --rpc-tracker {st['tracker']} --rpc-key {st['key']}")


def run(args) -> int:

    if args.edge_cmd == "up":
        t0 = time.monotonic()
        st = board.up(n_servers=args.servers, port=args.port, key=args.key, wait_s=args.wait, threads=args.threads)
        _print_status(st)
        print(f"  ready in {time.monotonic() - t0:.1f} s")
        return 0
    if args.edge_cmd == "down":
        board.down()
        return 0
    st = board.status()
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        _print_status(st)
    return 0 if st["up"] else 1
