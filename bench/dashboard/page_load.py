"""Benchmark: how long the dashboard's experiment page takes to show 1,000 trials of 100 training
points each, against TensorBoard showing the same data in the same run.

Peer: TensorBoard (tensorboard_peer.py) serving 1,000 runs of 100 "loss" scalars, its backend
fully loaded before the first page load. Both pages are loaded `--repeat` times in headless
Chromium, each in a fresh browser context, and timed from navigation start (page_load.mjs):
    tensorboard listed  the run table holds every run and the loss card is there (TensorBoard
                        selects no run when there are more than 500, so nothing is drawn yet)
    tensorboard drawn   select-all clicked at "listed", until every run's curve is in the chart
    baton loaded        body[data-loaded=true] on the dashboard's experiment page
The Baton side is a URL of a page already holding the data (`--baton-url`, e.g.
http://127.0.0.1:PORT/ui/#/experiments/ID, and `--baton-token`); without one, only the peer is
measured. Prints one JSON object, with baton loaded / tensorboard drawn as the ratio.

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
    parser.add_argument("--baton-url", help="the dashboard's experiment page, data loaded")
    parser.add_argument("--baton-token", default="", help="a viewer token for it")
    parser.add_argument("--tensorboard", default=str(Path(sys.executable).with_name("tensorboard")))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="baton-bench-dashboard-") as scratch:
        logdir = Path(scratch) / "runs"
        tensorboard_peer.write_events(logdir, args.runs, args.points)
        server, url = tensorboard_peer.serve(args.tensorboard, logdir, Path(scratch) / "tb.log")
        try:
            loaded_s = tensorboard_peer.wait_loaded(url, args.runs, args.points)
            peer = measure("tensorboard", f"{url}/#timeseries", args.runs, args.repeat)
            baton = (measure("baton", args.baton_url, args.runs, args.repeat, args.baton_token)
                     if args.baton_url else None)
        finally:
            server.terminate()
            server.wait()
    result = {
        "runs": args.runs,
        "points_per_run": args.points,
        "tensorboard_backend_load_s": round(loaded_s, 2),
        "tensorboard": peer,
        "baton": baton,
    }
    if baton:
        result["ratio_baton_to_tensorboard_drawn"] = round(
            baton["median_ms"]["loaded"] / peer["median_ms"]["drawn"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
