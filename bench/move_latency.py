"""Benchmark: control-plane time of moving a trial between two agents on loopback.

Starts a master and two agents (release binaries), runs bench/move_probe.py as a single trial,
then moves it back and forth `--moves` times with `baton trial move ID --to AGENT`. For each move:

    total          t0 (just before `baton trial move` starts) -> first step reported on the new agent
    trial's own    its save, the checkpoint's transfer and its load, from the probe's events
    control plane  total - trial's own

Two definitions of "trial's own" are printed side by side:

    loose   (save_start - t0) + save + hand-off + restore + first step.
            The whole wait from t0 until the trial starts saving counts as the trial's (its wait
            for a step boundary, at most one 5 ms step), although it also holds the CLI start, the
            RPC and the delivery of the suspend to the agent.
    strict  (save_start - agent received the suspend) + save + hand-off + the agent's commit of
            the checkpoint + the new agent's download of it + restore + first step.
            Request delivery is control plane; the checkpoint transfer (both halves) is the trial's.

The daemons log JSON (with microsecond timestamps), which gives the component breakdown.
The peer, timed in the same run (one sample after each move, same background load): starting the
trial interpreter cold, `python3 -c "import baton"` with the harness on PYTHONPATH.

Standard library only. Run through scripts/bench-move.sh, which builds the release binaries.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
TARGET_MEDIAN_MS = 300.0
CONFIG_PLACEHOLDER = "/tmp/baton-move-probe"
AGENTS = ("a1", "a2")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--moves", type=int, default=20, help="number of moves (default 20)")
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds the trial runs on its new agent before the next move (0.5)")
    p.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json-out", help="also write every measurement to this JSON file")
    return p.parse_args()


# ---------------------------------------------------------------- processes


class Cluster:
    """A master and its agents in a temporary directory; stopped by close()."""

    def __init__(self, bin_dir: pathlib.Path, root: pathlib.Path,
                 agents: tuple[str, ...] = AGENTS) -> None:
        self.bin_dir = bin_dir
        self.agents = agents
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, BATON_MASTER=self.url, BATON_LOG_FORMAT="json")
        self.env.pop("BATON_CONFIG", None)

    def start(self) -> None:
        self._spawn("master", [str(self.bin_dir / "baton-master"), "--listen",
                               f"127.0.0.1:{self.port}", "--data-dir", str(self.root / "master")])
        for agent in self.agents:
            self._spawn(agent, [str(self.bin_dir / "baton-agent"), "--master", self.url,
                                "--id", agent, "--slots", "1",
                                "--work-dir", str(self.root / agent)])
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                agents = self.cli_json("agent", "list")
                if sum(1 for a in agents if a.get("connected")) >= len(self.agents):
                    return
            except RuntimeError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the agents did not connect within 30 s; logs in {self.root}")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=log, env=self.env,
                                           stdin=subprocess.DEVNULL))

    def cli(self, *args: str) -> str:
        r = subprocess.run([str(self.bin_dir / "baton"), *args], env=self.env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"baton {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def cli_json(self, *args: str):
        return json.loads(self.cli(*args, "--json"))

    def close(self, trial_pids: set[int]) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # Trial processes normally die with their agent; make sure, by the pids they reported.
        for pid in trial_pids:
            if is_probe(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_probe(pid: int) -> bool:
    try:
        return b"move_probe.py" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# ---------------------------------------------------------------- probe events


class Events:
    """Reads the probe's events file incrementally."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.all: list[dict] = []

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        self.all.extend(json.loads(line) for line in lines if line.strip())

    def of(self, allocation: str) -> dict[str, dict]:
        return {e["event"]: e for e in self.all if e["allocation"] == allocation}

    def wait_first_step(self, known: set[str], timeout: float) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.poll()
            for e in self.all:
                if e["event"] == "first_step" and e["allocation"] not in known:
                    return e
            time.sleep(0.005)
        raise RuntimeError(f"no first step of a new allocation within {timeout} s")


# ---------------------------------------------------------------- daemon logs

_UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds from a Rust Debug duration such as `1.234ms` or `850.1µs`."""
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_timestamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_log(path: pathlib.Path) -> list[dict]:
    """JSON lines of a daemon log, each with `t` (seconds) and the message's fields flattened."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            # The first of duplicate keys wins: a field named `message` follows the log message.
            record = json.loads(line, object_pairs_hook=first_key_wins)
        except ValueError:
            continue
        fields = dict(record.get("fields", {}))
        fields["t"] = parse_timestamp(record["timestamp"])
        out.append(fields)
    return out


def first_key_wins(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def first(records: list[dict], message: str, **match: str) -> dict | None:
    for r in records:
        if r.get("message") == message and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


# ---------------------------------------------------------------- statistics


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (the 19th of 20 values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return seconds * 1000.0


# ---------------------------------------------------------------- benchmark


def peer_sample(harness: pathlib.Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(harness))
    begun = time.perf_counter()
    subprocess.run(["python3", "-c", "import baton"], env=env, check=True)
    return time.perf_counter() - begun


def main() -> int:
    args = parse_args()
    bin_dir = pathlib.Path(args.bin_dir)
    root = pathlib.Path(tempfile.mkdtemp(prefix="baton-move-bench-"))
    events = Events(root / "events.jsonl")
    cluster = Cluster(bin_dir, root)
    trial_pids: set[int] = set()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cluster.start()
        config = (REPO / "bench" / "move_probe.yaml").read_text().replace(
            CONFIG_PLACEHOLDER + "/events.jsonl", str(events.path)
        ).replace(CONFIG_PLACEHOLDER, str(root))
        (root / "experiment.yaml").write_text(config)
        experiment = cluster.cli_json("experiment", "create", str(root / "experiment.yaml"),
                                      str(REPO / "bench"))["id"]
        start = events.wait_first_step(set(), timeout=60)
        allocations = {start["allocation"]}
        trial = cluster.cli_json("experiment", "describe", str(experiment))["trials"][0]
        trial_id, agent = trial["id"], trial["agent_id"]
        moves, peers = [], []
        for i in range(args.moves):
            time.sleep(args.settle)
            target = AGENTS[1] if agent == AGENTS[0] else AGENTS[0]
            old = next(e["allocation"] for e in reversed(events.all) if e["event"] == "first_step")
            t0 = time.time()
            cluster.cli("trial", "move", str(trial_id), "--to", target, "--json")
            t_cli = time.time()
            new = events.wait_first_step(allocations, timeout=60)["allocation"]
            allocations.add(new)
            moves.append({"move": i + 1, "from": agent, "to": target, "old": old, "new": new,
                          "t0": t0, "t_cli": t_cli})
            agent = target
            peers.append(peer_sample(REPO / "harness" / "python"))
            print(f"move {i + 1}/{args.moves} {moves[-1]['from']} -> {target} done", file=sys.stderr)
        time.sleep(0.2)
        events.poll()
        trial_pids = {e["pid"] for e in events.all if "pid" in e}
        logs = [json.loads(line) for line in cluster.cli("trial", "logs", str(trial_id),
                                                          "--json").splitlines() if line.strip()]
        cluster.cli("experiment", "kill", str(experiment))
    finally:
        events.poll()
        trial_pids |= {e["pid"] for e in events.all if "pid" in e}
        cluster.close(trial_pids)

    master_log = read_log(root / "master.log")
    agent_logs = {a: read_log(root / f"{a}.log") for a in AGENTS}
    rows = [measure(m, events, master_log, agent_logs, logs) for m in moves]
    report(rows, peers)
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps({"moves": rows, "peer_s": peers},
                                                          indent=1))
    if args.keep:
        print(f"\nlogs and events kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def measure(m: dict, events: Events, master: list[dict], agents: dict[str, list[dict]],
            trial_logs: list[dict]) -> dict:
    """All timestamps of one move, and its components in seconds."""
    old, new, t0 = m["old"], m["new"], m["t0"]
    o, n = events.of(old), events.of(new)
    src, dst = agents[m["from"]], agents[m["to"]]
    uuid = o["save_start"]["uuid"]
    stop_sent = first(master, "stopping allocation", allocation=old)["t"]
    suspend_rcvd = first(src, "suspend requested", allocation=old)["t"]
    committed = first(src, "checkpoint committed", checkpoint=uuid)
    commit_s = parse_duration(committed["elapsed"])
    exited = first(src, "allocation exited", allocation=old)["t"]
    ended = first(master, "allocation ended", allocation=old)["t"]
    placed = first(master, "starting allocation", allocation=new)["t"]
    received = first(dst, "starting allocation", allocation=new)["t"]
    spawned = first(dst, "trial process started", allocation=new)["t"]
    restored = next(line["text"] for line in trial_logs
                    if line["allocation_id"] == new and line["text"].startswith("restored checkpoint"))
    download_s = parse_duration(restored.rsplit(" in ", 1)[1])

    total = n["first_step"]["t"] - t0
    save = o["save_end"]["t"] - o["save_start"]["t"]
    handoff = o["checkpoint_committed"]["t"] - o["save_end"]["t"]
    restore = n["restore_end"]["t"] - n["restore_start"]["t"]
    first_step = n["first_step"]["t"] - n["restore_end"]["t"]
    wait_loose = o["save_start"]["t"] - t0
    wait_strict = o["save_start"]["t"] - suspend_rcvd
    own_loose = wait_loose + save + handoff + restore + first_step
    own_strict = wait_strict + save + handoff + commit_s + download_s + restore + first_step
    c = {
        "cli_to_master_stop": stop_sent - t0,
        "master_stop_to_agent": suspend_rcvd - stop_sent,
        "step_boundary_wait": wait_strict,
        "save": save,
        "checkpoint_end_handoff": handoff,
        "trial_wrapup": o["process_end"]["t"] - o["checkpoint_committed"]["t"],
        "process_end_to_agent_report": exited - o["process_end"]["t"],
        "  of which agent commit": commit_s,
        "agent_exit_to_master_end": ended - exited,
        "master_end_to_placed": placed - ended,
        "master_to_new_agent": received - placed,
        "new_agent_prepare_spawn": spawned - received,
        "  of which download": download_s,
        "spawn_to_interpreter": n["process_start"]["t"] - spawned,
        "import_baton_and_init": n["restore_start"]["t"] - n["process_start"]["t"],
        "restore": restore,
        "first_step": first_step,
    }
    return {**m, "total": total, "cli_returned": m["t_cli"] - t0,
            "own_loose": own_loose, "own_strict": own_strict,
            "cp_loose": total - own_loose, "cp_strict": total - own_strict,
            "interpreter": n["process_start"]["t"] - spawned, "components": c}


def report(rows: list[dict], peers: list[float]) -> None:
    print("\nPer move (ms): total = t0 -> first step on the new agent; cp = control plane")
    print(f"{'#':>3} {'from':>4} {'to':>4} {'total':>8} {'own(L)':>8} {'cp(L)':>8} "
          f"{'own(S)':>8} {'cp(S)':>8} {'interp':>8} {'cli':>7}")
    for r in rows:
        print(f"{r['move']:>3} {r['from']:>4} {r['to']:>4} {ms(r['total']):8.1f} "
              f"{ms(r['own_loose']):8.1f} {ms(r['cp_loose']):8.1f} {ms(r['own_strict']):8.1f} "
              f"{ms(r['cp_strict']):8.1f} {ms(r['interpreter']):8.1f} {ms(r['cli_returned']):7.1f}")

    def stat(key: str) -> tuple[float, float]:
        values = [r[key] for r in rows]
        return ms(statistics.median(values)), ms(p95(values))

    peer_med = ms(statistics.median(peers))
    print(f"\nSummary over {len(rows)} moves (p95 = nearest rank)")
    print(f"{'metric':<44} {'median ms':>10} {'p95 ms':>10}")
    for key, label in (("total", "total (t0 -> first step on new agent)"),
                       ("own_loose", "trial's own, loose"),
                       ("cp_loose", "control plane, loose"),
                       ("own_strict", "trial's own, strict"),
                       ("cp_strict", "control plane, strict"),
                       ("interpreter", "  in it: spawn + interpreter start")):
        med, p = stat(key)
        print(f"{label:<44} {med:10.1f} {p:10.1f}")
    peer_label = 'peer: python3 -c "import baton" (cold)'
    print(f"{peer_label:<44} {peer_med:10.1f} {ms(p95(peers)):10.1f}")
    for key, label in (("cp_loose", "loose"), ("cp_strict", "strict")):
        med, _ = stat(key)
        verdict = "met" if med < TARGET_MEDIAN_MS else "NOT met"
        print(f"control plane {label}: median / peer median = {med / peer_med:.2f}x; "
              f"median / 300 ms target = {med / TARGET_MEDIAN_MS:.2f} ({verdict})")

    print("\nComponents (ms), in order along the move")
    print(f"{'component':<30} {'median':>8} {'p95':>8} {'max':>8}")
    for name in rows[0]["components"]:
        values = [r["components"][name] for r in rows]
        print(f"{name:<30} {ms(statistics.median(values)):8.1f} {ms(p95(values)):8.1f} "
              f"{ms(max(values)):8.1f}")


if __name__ == "__main__":
    sys.exit(main())
