"""Benchmark: the per-step harness round trip (`ctx.report_training` inside a real trial, to a real
agent that forwards the report to a real master) against a raw newline-JSON exchange between two
Python processes over a Unix socket (the client encodes the same request and decodes the same
reply; the server answers each line with a fixed reply, the floor of any implementation), in the
same run.

Prints p50/p99 of both and their ratio. Run through scripts/bench-harness.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from move_latency import Cluster  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent

ECHO_SERVER = r"""
import json, socket, sys
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(1)
print("ready", flush=True)
conn, _ = listener.accept()
reader = conn.makefile("rb")
reply = (json.dumps({"validate": False, "checkpoint": False, "stop": False, "ok": True}) + "\n").encode()
for line in reader:
    conn.sendall(reply)
"""

ECHO_CLIENT = r"""
import json, socket, sys, time
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
reader = sock.makefile("rb")
count, warmup = int(sys.argv[2]), int(sys.argv[3])
times = []
for step in range(1, warmup + count + 1):
    started = time.perf_counter_ns()
    line = json.dumps({"op": "report_training", "step": step, "metrics": {"loss": 1.0 / step}})
    sock.sendall((line + "\n").encode())
    json.loads(reader.readline())
    if step > warmup:
        times.append(time.perf_counter_ns() - started)
print(json.dumps(times))
"""


def percentile(values: list[int], q: float) -> float:
    """The q-quantile in microseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def echo_peer(root: pathlib.Path, count: int, warmup: int) -> list[int]:
    """Round trips of the raw echo between two Python processes."""
    path = str(root / f"echo-{time.monotonic_ns()}.sock")
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, path], stdout=subprocess.PIPE)
    try:
        server.stdout.readline()
        out = subprocess.run([sys.executable, "-c", ECHO_CLIENT, path, str(count), str(warmup)],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)
    finally:
        server.kill()
        server.wait()


def harness(cluster: Cluster, root: pathlib.Path, count: int, warmup: int) -> list[int]:
    """Round trips of `report_training` in a real trial."""
    out = root / "harness.json"
    config = (REPO / "bench" / "roundtrip_probe.yaml").read_text()
    for placeholder, value in (("COUNT", str(count)), ("WARMUP", str(warmup)), ("OUT", str(out)),
                               ("MAX_LENGTH", str(count + warmup + 10)),
                               ("STORAGE", str(root / "storage"))):
        config = config.replace(placeholder, value)
    (root / "experiment.yaml").write_text(config)
    cluster.cli("experiment", "create", str(root / "experiment.yaml"), str(REPO / "bench"))
    deadline = time.time() + 300
    while not out.exists() or not out.read_text().endswith("]"):
        if time.time() > deadline:
            raise RuntimeError(f"the probe did not finish; logs in {root}")
        time.sleep(0.2)
    return json.loads(out.read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    args = p.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="baton-roundtrip-bench-"))
    cluster = Cluster(pathlib.Path(args.bin_dir), root, agents=("a1",))
    try:
        cluster.start()
        peer_first = echo_peer(root, args.count, args.warmup)
        ours = harness(cluster, root, args.count, args.warmup)
        peer_second = echo_peer(root, args.count, args.warmup)
    finally:
        cluster.close(set())
    peer = peer_first + peer_second
    print(f"{args.count} round trips each (after {args.warmup} warm-up), Python client")
    print(f"report_training:  p50 {percentile(ours, 0.5):6.1f} µs  p99 {percentile(ours, 0.99):6.1f} µs")
    print(f"raw echo (peer):  p50 {percentile(peer, 0.5):6.1f} µs  p99 {percentile(peer, 0.99):6.1f} µs")
    print(f"ratio p50: {percentile(ours, 0.5) / percentile(peer, 0.5):.2f}   "
          f"(target <= 1.3, p99 under 100 µs)")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
