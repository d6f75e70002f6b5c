"""The page-load benchmark's Baton side: a master holding a finished experiment of `runs` trials
with `points` training steps each, its dashboard served on loopback.

`baton-fleet --populate` runs the experiment on a real master with simulated agents (one training
report a step, a validation every 10 steps) and leaves the database; a fresh `baton-master` then
serves that database with `--http-listen`, as after a restart, so what is timed is the page.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def populate(bin_dir: Path, data_dir: Path, runs: int, points: int) -> int:
    """Fills `data_dir` with the finished experiment; its id."""
    agents = (runs + 7) // 8
    done = subprocess.run(
        [str(bin_dir / "baton-fleet"), "--populate", str(data_dir),
         "--master-bin", str(bin_dir / "baton-master"),
         "--agents", str(agents), "--slots", "8", "--trials", str(runs),
         "--max-length", str(points), "--steps-per-second", "10",
         "--validation-period", "10", "--checkpoint-period", str(points)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"baton-fleet --populate failed:\n{done.stdout}{done.stderr}")
    return int(done.stdout.strip().splitlines()[-1])


def serve(bin_dir: Path, data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """Starts a master on `data_dir` with the dashboard on a free port; it and the base URL once
    the API answers."""
    port = free_port()
    server = subprocess.Popen(
        [str(bin_dir / "baton-master"), "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
         "--http-listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/experiments", timeout=5):
                return server, base
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit(f"the master did not serve its API:\n{log.read_text()}")
            time.sleep(0.1)
