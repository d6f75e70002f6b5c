"""Benchmark: a move of a trial with a slow start (`import_seconds`, as importing PyTorch costs)
and a large checkpoint, against save + max(start, transfer) + load of the same move.

The agent starts the trial's process at once and restores the checkpoint meanwhile, holding the
trial's `init` until the restore is verified; so a move should cost the suspend checkpoint's save,
then the longer of the start and the transfer, then the trial's load. Each cycle: `baton trial
move`, then, from the same move, total = request → first step on the new agent; save = request →
the checkpoint's metadata.json in storage; start = the new process's start-up cost; transfer = the
agent's verified restore (its log line); load = the trial reading the file back. Prints each cycle
and the median ratio total / (save + max(start, transfer) + load); the target is 1.1 or less. Run
through scripts/bench-overlap.sh.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from move_latency import Cluster, parse_duration  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent


def events_of(path: pathlib.Path, allocation: str) -> dict[str, dict]:
    """The events of one allocation, by name."""
    if not path.exists():
        return {}
    found = (json.loads(line) for line in path.read_text().splitlines())
    return {e["event"]: e for e in found if e["allocation"] == allocation}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--import-seconds", type=float, default=2.0)
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    args = p.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="baton-overlap-bench-"))
    events, storage = root / "events.jsonl", root / "storage"
    cluster = Cluster(pathlib.Path(args.bin_dir), root, agents=("a1", "a2"))
    rows = []
    try:
        cluster.start()
        config = (REPO / "bench" / "overlap_probe.yaml").read_text()
        for placeholder, value in (("SIZE_MIB", str(args.size_mib)), ("EVENTS", str(events)),
                                   ("IMPORT_SECONDS", str(args.import_seconds)),
                                   ("STORAGE", str(storage))):
            config = config.replace(placeholder, value)
        (root / "experiment.yaml").write_text(config)
        experiment = str(cluster.cli_json("experiment", "create", str(root / "experiment.yaml"),
                                          str(REPO / "bench"))["id"])
        trial = str(cluster.cli_json("experiment", "describe", experiment)["trials"][0]["id"])

        def current() -> dict:
            allocation = cluster.cli_json("trial", "describe", trial)["allocations"][-1]
            return allocation if allocation["exit_reason"] is None else {}

        for cycle in range(args.cycles):
            deadline = time.time() + 300
            while not (current() and "first_step" in events_of(events, current()["id"])):
                if time.time() > deadline:
                    raise RuntimeError(f"the trial did not run; logs in {root}")
                time.sleep(0.1)
            time.sleep(1)
            old = current()["id"]
            before = {m.parent.name for m in storage.glob("*/metadata.json")}
            started = time.time()
            cluster.cli("trial", "move", trial)
            saved = None
            while True:
                if saved is None:
                    new = {m.parent.name for m in storage.glob("*/metadata.json")} - before
                    if new:
                        saved = time.time()
                allocation = current()
                if allocation and allocation["id"] != old:
                    seen = events_of(events, allocation["id"])
                    if "first_step" in seen:
                        break
                if time.time() > started + 600:
                    raise RuntimeError(f"no move within 600 s; logs in {root}")
                time.sleep(0.01)
            logs = cluster.cli("trial", "logs", trial)
            transfer = parse_duration(re.findall(r"restored checkpoint \S+ \(step \d+, \d+ bytes\) in (\S+)", logs)[-1])
            total = seen["first_step"]["t"] - started
            save = saved - started
            load = seen["loaded"]["seconds"]
            ideal = save + max(args.import_seconds, transfer) + load
            rows.append((total, save, transfer, load, ideal))
            print(f"cycle {cycle + 1}: total {total:.2f} s = save {save:.2f} + max(start "
                  f"{args.import_seconds:.2f}, transfer {transfer:.2f}) + load {load:.2f} "
                  f"→ {total / ideal:.2f}", file=sys.stderr)
        cluster.cli("experiment", "kill", experiment)
    finally:
        cluster.close(set())
    print(f"checkpoint {args.size_mib} MiB, start-up {args.import_seconds} s, shared_fs, "
          f"{len(rows)} moves (trial move)")
    print("cycle  total    save   transfer  load   save+max(start,transfer)+load  ratio")
    for i, (total, save, transfer, load, ideal) in enumerate(rows, 1):
        print(f"{i:5}  {total:5.2f} s  {save:5.2f}  {transfer:6.2f}    {load:4.2f}   {ideal:5.2f} s"
              f"                        {total / ideal:5.2f}")
    print(f"median ratio {statistics.median(r[0] / r[4] for r in rows):.2f} (target <= 1.1); "
          f"a start after the restore would cost about save + start + transfer + load")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
