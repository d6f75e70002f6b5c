"""Benchmark: how long the dashboard's experiment page takes to show 1,000 trials of 100 training
points each, against TensorBoard showing the same data in the same run.

Peer: TensorBoard (tensorboard_peer.py) serving 1,000 runs of 100 "loss" scalars, its backend
fully loaded before the first page load. Both pages are loaded `--repeat` times in headless
Chromium, each in a fresh browser context, and timed from navigation start (page_load.mjs):
    tensorboard listed  the run table holds every run and the loss card is there (TensorBoard
                        selects no run when there are more than 500, so nothing is drawn yet)
    tensorboard drawn   select-all clicked at "listed", until every run's curve is in the chart
    baton loaded        body[data-loaded=true] on the dashboard's experiment page
The Baton side (baton_side.py) is a master serving a finished experiment of as many trials and
steps, run by `baton-fleet --populate` from `--bin-dir` (default target/release); or, with
`--baton-url` (and `--baton-token`), a dashboard page already holding the data. Prints one JSON
object, with baton loaded / tensorboard drawn as the ratio.

Run through scripts/bench-dashboard.sh, which makes the TensorBoard environment and Playwright's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import baton_side
import tensorboard_peer

HERE = Path(__file__).resolve().parent


def measure(kind: str, url: str, runs: int, repeat: int, token: str = "") -> dict:
    """Runs page_load.mjs for `kind` against `url`; its JSON."""
    node_path = os.environ.get("BATON_BROWSER_NODE_PATH")
    if not node_path:
        sys.exit("BATON_BROWSER_NODE_PATH is not set: run scripts/bench-dashboard.sh")
    command = ["node", str(HERE / "page_load.mjs"), "--kind", kind, "--url", url,
               "--runs", str(runs), "--repeat", str(repeat)]
    if token:
        command += ["--token", token]
    done = subprocess.run(command, env={**os.environ, "NODE_PATH": node_path},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"page_load.mjs ({kind}) failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bin-dir", default=str(HERE.parents[1] / "target" / "release"),
                        help="where baton-master and baton-fleet are")
    parser.add_argument("--baton-url", help="the dashboard's experiment page, data loaded")
    parser.add_argument("--baton-token", default="", help="a viewer token for it")
    parser.add_argument("--tensorboard", default=str(Path(sys.executable).with_name("tensorboard")))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="baton-bench-dashboard-") as scratch:
        servers: list[subprocess.Popen] = []
        try:
            if not args.baton_url:
                bin_dir = Path(args.bin_dir)
                data_dir = Path(scratch) / "baton"
                experiment = baton_side.populate(bin_dir, data_dir, args.runs, args.points)
                master, base = baton_side.serve(bin_dir, data_dir, Path(scratch) / "master.log")
                servers.append(master)
                args.baton_url = f"{base}/ui/#/experiments/{experiment}"
            logdir = Path(scratch) / "runs"
            tensorboard_peer.write_events(logdir, args.runs, args.points)
            server, url = tensorboard_peer.serve(args.tensorboard, logdir, Path(scratch) / "tb.log")
            servers.append(server)
            loaded_s = tensorboard_peer.wait_loaded(url, args.runs, args.points)
            peer = measure("tensorboard", f"{url}/#timeseries", args.runs, args.repeat)
            baton = measure("baton", args.baton_url, args.runs, args.repeat, args.baton_token)
        finally:
            for server in servers:
                server.terminate()
                server.wait()
    result = {
        "runs": args.runs,
        "points_per_run": args.points,
        "tensorboard_backend_load_s": round(loaded_s, 2),
        "tensorboard": peer,
        "baton": baton,
    }
    result["ratio_baton_to_tensorboard_drawn"] = round(
        baton["median_ms"]["loaded"] / peer["median_ms"]["drawn"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
