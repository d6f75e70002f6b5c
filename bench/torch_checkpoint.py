"""Benchmark: checkpointing and restoring a ~1 GiB PyTorch state through Baton on shared_fs.

    save   baton.torch.save into the checkpoint directory + Baton's commit (hashing, metadata.json),
           until metadata.json exists   vs   torch.save to a new local file + cp of it to another dir
    resume the agent's verified download of the checkpoint + baton.torch.load
           vs   torch.load of the local file

A master and one agent (release binaries) run bench/torch_probe.py, which builds the state,
trains until `experiment pause` suspends it (checkpoint, timed against the peer), and is
resumed by `experiment activate` (restore, timed against the peer). Prints the ratios; the target
is 1.1 or less. Run through scripts/bench-torch.sh.
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
TARGET = 1.1


def wait_event(path: pathlib.Path, name: str, count: int, timeout: float) -> dict:
    """The `count`-th event called `name` (1-based)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            found = [e for e in map(json.loads, path.read_text().splitlines()) if e["event"] == name]
            if len(found) >= count:
                return found[count - 1]
        time.sleep(0.1)
    raise RuntimeError(f"no {name} event #{count} within {timeout} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--ml-python", required=True)
    p.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    p.add_argument("--cycles", type=int, default=3, help="pause/activate cycles (3)")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="baton-torch-bench-"))
    events = root / "events.jsonl"
    cluster = Cluster(pathlib.Path(args.bin_dir), root, agents=("a1",))
    try:
        cluster.start()
        config = (REPO / "bench" / "torch_probe.yaml").read_text()
        config = config.replace("ML_PYTHON", args.ml_python).replace("SIZE_MIB", str(args.size_mib))
        (root / "experiment.yaml").write_text(config.replace("ROOT", str(root)))
        experiment = str(cluster.cli_json("experiment", "create", str(root / "experiment.yaml"),
                                          str(REPO / "bench"))["id"])
        trial = None
        samples = []
        for cycle in range(1, args.cycles + 1):
            time.sleep(2)
            cluster.cli("experiment", "pause", experiment)
            committed = wait_event(events, "committed", cycle, 600)
            while cluster.cli_json("experiment", "describe", experiment)["trials"][0]["state"] != "PAUSED":
                time.sleep(0.1)
            cluster.cli("experiment", "activate", experiment)
            restored = wait_event(events, "restored", cycle, 600)
            trial = cluster.cli_json("experiment", "describe", experiment)["trials"][0]["id"]
            logs = cluster.cli("trial", "logs", str(trial))
            downloads = re.findall(r"restored checkpoint \S+ \(step \d+, \d+ bytes\) in (\S+)", logs)
            if len(downloads) < cycle:
                raise RuntimeError(f"no restore line #{cycle} in the trial's log:\n{logs[-2000:]}")
            samples.append((committed, restored, parse_duration(downloads[cycle - 1])))
            print(f"cycle {cycle}/{args.cycles} done", file=sys.stderr)
        cluster.cli("experiment", "kill", experiment)
    finally:
        cluster.close(set())
    size = samples[0][0]["bytes"] / 2**30
    print(f"state: {size:.2f} GiB in float32 tensors, shared_fs, {len(samples)} cycles")
    print("cycle  save+commit  torch.save+cp  ratio   download+load  torch.load  ratio"
          "   (torch.load mmap + load_state_dict)")
    save_ratios, resume_ratios = [], []
    for i, (committed, restored, download_s) in enumerate(samples, 1):
        save, peer_save = committed["save_commit_s"], committed["peer_save_cp_s"]
        resume, peer_load = download_s + restored["load_s"], restored["peer_load_s"]
        save_ratios.append(save / peer_save)
        resume_ratios.append(resume / peer_load)
        print(f"{i:5}  {save:9.2f} s  {peer_save:11.2f} s  {save / peer_save:5.2f}"
              f"   {download_s:5.2f} + {restored['load_s']:.2f} s  {peer_load:8.2f} s  {resume / peer_load:5.2f}"
              f"   ({restored['mapped_load_s']:.2f} s)")
    print(f"median ratios: save {statistics.median(save_ratios):.2f}, resume {statistics.median(resume_ratios):.2f}")
    print(f"target: ratios <= {TARGET}")
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
