"""The page-load benchmark's peer: TensorBoard showing the data of Baton's benchmark experiment.

Writes `runs` runs (`trial-0000` …) of `points` "loss" scalars each, steps 1..points, with
deterministic values (the same curve shapes that Baton's side is given), as TensorBoard event
files, then serves them with `tensorboard` on loopback and waits until its backend holds every
run and point, so that what is timed afterwards is the page alone.

Needs the `tensorboard` package only (bench/dashboard/requirements.txt; no TensorFlow):
    python bench/dashboard/tensorboard_peer.py DIR [--runs 1000] [--points 100] [--port 6006]
serves until interrupted; bench/dashboard/page_load.py imports it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

# Wall time of step 1 of every run (a fixed date: the files are the same on every machine).
BASE_WALL_TIME = 1_700_000_000.0


def loss(run: int, step: int) -> float:
    """The loss run `run` reports at `step`: a decaying curve, its floor and pace set by the run."""
    floor = 0.05 + 0.01 * (run % 17)
    pace = 0.02 + 0.001 * (run % 29)
    return floor + (1.0 - floor) / (1.0 + pace * step)


def write_events(logdir: Path, runs: int, points: int) -> None:
    """Writes `runs` runs of `points` loss scalars under `logdir` (which must not exist yet)."""
    logdir.mkdir(parents=True)
    for run in range(runs):
        writer = EventFileWriter(str(logdir / f"trial-{run:04d}"))
        for step in range(1, points + 1):
            summary = Summary(value=[Summary.Value(tag="loss", simple_value=loss(run, step))])
            writer.add_event(Event(wall_time=BASE_WALL_TIME + step, step=step, summary=summary))
        writer.close()


def get_json(url: str):
    """The JSON answer of a GET to `url`."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def serve(tensorboard: str, logdir: Path, log: Path, port: int = 0) -> tuple[subprocess.Popen, str]:
    """Starts `tensorboard` on 127.0.0.1:`port` (0: a free one) over `logdir`, its output to the
    file `log`; the process and its URL once it listens."""
    server = subprocess.Popen(
        [tensorboard, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port),
         "--reload_interval", "0"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+)/", log.read_text())
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            raise RuntimeError(f"tensorboard exited with {server.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    server.kill()
    raise TimeoutError(f"tensorboard did not listen within 60 s:\n{log.read_text()}")


def wait_loaded(base: str, runs: int, points: int, timeout: float = 600.0) -> float:
    """Waits until TensorBoard at `base` serves `runs` runs with `points` points of the last;
    returns the seconds waited."""
    started = time.monotonic()
    last = f"trial-{runs - 1:04d}"
    while True:
        try:
            listed = get_json(f"{base}/data/runs")
            if len(listed) >= runs:
                series = get_json(f"{base}/data/plugin/scalars/scalars?run={last}&tag=loss")
                if len(series) >= points:
                    return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"TensorBoard at {base} did not load {runs} runs in {timeout:.0f} s")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--port", type=int, default=6006)
    parser.add_argument("--tensorboard", default=str(Path(sys.executable).with_name("tensorboard")))
    args = parser.parse_args()
    if not args.logdir.exists():
        write_events(args.logdir, args.runs, args.points)
    server, url = serve(args.tensorboard, args.logdir, args.logdir.with_suffix(".log"), args.port)
    try:
        waited = wait_loaded(url, args.runs, args.points)
        print(json.dumps({"url": url, "loaded_s": round(waited, 2)}), flush=True)
        server.wait()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
