"""Benchmark: moving a two-rank trial (one rank on each of two agents) against moving a one-rank
trial with the same checkpoint size, in the same run.

Each cycle disables the agent of the trial's chief (rank 0) and measures, from just before the
`baton agent disable` call, until every rank of the trial has reported its first step on its new
agents (the suspend, every rank's checkpoint part, the master's metadata.json, the gang's placement
and rendezvous, every part's verified restore and the ranks' reads of their shares). Prints the
median of each and their ratio. Run through scripts/bench-distributed.sh.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from move_latency import Cluster  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent


def first_steps(events: pathlib.Path, allocation_prefix: str) -> list[float]:
    """The first-step times of every rank of allocations whose id starts with the prefix."""
    if not events.exists():
        return []
    found = [json.loads(line) for line in events.read_text().splitlines()]
    return [e["t"] for e in found if e["allocation"].startswith(allocation_prefix)]


def measure(cluster: Cluster, root: pathlib.Path, slots: int, size_mib: int, cycles: int) -> list[float]:
    """Seconds from `agent disable` of the chief's agent to every rank's first step, per cycle."""
    events = root / f"events-{slots}.jsonl"
    config = (REPO / "bench" / "gang_probe.yaml").read_text()
    for placeholder, value in (("SIZE_MIB", str(size_mib)), ("EVENTS", str(events)),
                               ("SLOTS", str(slots)), ("STORAGE", str(root / "storage"))):
        config = config.replace(placeholder, value)
    path = root / f"experiment-{slots}.yaml"
    path.write_text(config)
    experiment = str(cluster.cli_json("experiment", "create", str(path), str(REPO / "bench"))["id"])
    trial_id = str(cluster.cli_json("experiment", "describe", experiment)["trials"][0]["id"])

    def current() -> dict:
        detail = cluster.cli_json("trial", "describe", trial_id)
        allocation = detail["allocations"][-1]
        return allocation if allocation["exit_reason"] is None else {}

    times = []
    for cycle in range(cycles + 1):
        deadline = time.time() + 120
        while True:
            allocation = current()
            if allocation and len(first_steps(events, allocation["id"])) >= slots:
                break
            if time.time() > deadline:
                raise RuntimeError(f"the trial did not run within 120 s; logs in {root}")
            time.sleep(0.05)
        if cycle == cycles:
            break
        time.sleep(0.5)
        chief = allocation["agent_id"]
        started = time.time()
        cluster.cli("agent", "disable", chief)
        deadline = time.time() + 300
        while True:
            moved = current()
            if moved and moved["id"] != allocation["id"]:
                ranks = first_steps(events, moved["id"])
                if len(ranks) >= slots:
                    times.append(max(ranks) - started)
                    break
            if time.time() > deadline:
                raise RuntimeError(f"no move within 300 s; logs in {root}")
            time.sleep(0.02)
        cluster.cli("agent", "enable", chief)
        print(f"{slots} rank(s), cycle {cycle + 1}/{cycles}: {times[-1]:.2f} s", file=sys.stderr)
    cluster.cli("experiment", "kill", experiment)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=256, help="checkpoint size in MiB (256)")
    p.add_argument("--cycles", type=int, default=5)
    p.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="baton-gang-bench-"))
    cluster = Cluster(pathlib.Path(args.bin_dir), root, agents=("a1", "a2", "a3"))
    try:
        cluster.start()
        single = measure(cluster, root, 1, args.size_mib, args.cycles)
        gang = measure(cluster, root, 2, args.size_mib, args.cycles)
    finally:
        cluster.close(set())
    s, g = statistics.median(single), statistics.median(gang)
    print(f"checkpoint {args.size_mib} MiB, shared_fs, {args.cycles} moves each (agent disable)")
    print(f"one rank:   median {s:.2f} s  ({', '.join(f'{t:.2f}' for t in single)})")
    print(f"two ranks:  median {g:.2f} s  ({', '.join(f'{t:.2f}' for t in gang)})")
    print(f"ratio two ranks / one rank: {g / s:.2f}")
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
