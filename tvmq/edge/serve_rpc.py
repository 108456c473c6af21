"""A TVM RPC server in one process, for the emulated board (run by the aarch64 Python).

``python -m tvm.exec.rpc_server`` imports TVM, then starts a PopenWorker that
imports TVM again; under qemu each import costs 10-20 s.  This script binds the
socket and runs TVM's own listen loop (``tvm.rpc.server._listen_loop``: report to
the tracker, accept, fork one process per session, honour ``-timeout=``) in the
main process, so a server registers after one import; a session whose process
crashed (a faulty kernel) no longer ends the server, it registers again.  It imports only ``tvm``
(no tvmq), and falls back to ``tvm.exec.rpc_server`` if TVM's internals moved.

Usage: serve_rpc.py --tracker HOST:PORT --key KEY --host 127.0.0.1 --port 9091
"""

import sys

sys.path.pop(0)  # this folder holds tvmq modules, not meant for the emulated Python

import argparse  # noqa: E402
import logging  # noqa: E402
import runpy  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracker", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9091)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        from tvm.rpc.server import _listen_loop  # lazy: TVM is heavy and stays out of start-up
    except ImportError:
        logging.warning("tvm.rpc.server._listen_loop not found; falling back to tvm.exec.rpc_server")
        sys.argv = ["rpc_server", "--tracker", args.tracker, "--key", args.key, "--host", args.host,
                    "--port", str(args.port), "--port-end", str(args.port + 1)]
        runpy.run_module("tvm.exec.rpc_server", run_name="__main__")
        return
    thost, _, tport = args.tracker.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1)
    logging.info("bind to %s:%d, key %s, tracker %s", args.host, args.port, args.key, args.tracker)

    while True:
        # TVM's loop raises RuntimeError when a session's process exits non-zero
        # (a kernel that crashed); a board keeps serving the next candidate.
        try:
            _listen_loop(sock, args.port, args.key, (thost, int(tport)), None, None)
        except RuntimeError as e:
            logging.warning("session ended abnormally (%s); serving again", e)
            time.sleep(0.5)


if __name__ == "__main__":
    main()
