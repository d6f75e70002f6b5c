"""Distributed trials: real rank processes, each with a fake agent, synchronised over loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from fake_agent import FakeAgent  # also puts harness/python on sys.path

import baton

TRIAL = Path(__file__).resolve().parent / "distributed_trial.py"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def rank_env(agent: FakeAgent, rank: int, world_size: int, local_rank: int, local_world_size: int,
             port: int, **extra: str) -> dict[str, str]:
    """The environment an agent gives one rank of a distributed trial."""
    return {
        **agent.env(),
        "BATON_RANK": str(rank),
        "BATON_WORLD_SIZE": str(world_size),
        "BATON_LOCAL_RANK": str(local_rank),
        "BATON_LOCAL_WORLD_SIZE": str(local_world_size),
        "BATON_SYNC_ADDR": "127.0.0.1",
        "BATON_SYNC_PORT": str(port),
        "BATON_SYNC_TIMEOUT_SECONDS": "20",
        **extra,
    }


class DistributedTest(unittest.TestCase):
    """Runs ranks of `distributed_trial.py`: `layout[r]` is the agent that runs rank r."""

    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bt-dist-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.port = free_port()

    def agents(self, layout: list[int], **chief_options: object) -> list[FakeAgent]:
        """One fake agent per part of the trial; the first runs rank 0 with `chief_options`
        (the others share its trial description)."""
        shared = {k: v for k, v in chief_options.items() if k in ("max_length", "hparams")}
        agents = []
        for index in range(max(layout) + 1):
            options = chief_options if index == 0 else shared
            agent = FakeAgent(world_size=len(layout), rank_offset=layout.index(index),
                              local_world_size=layout.count(index), **options)
            self.addCleanup(agent.close)
            agents.append(agent)
        return agents

    def run_ranks(self, layout: list[int], agents: list[FakeAgent],
                  extra: dict[int, dict[str, str]] | None = None) -> list[tuple[int, dict | None, str]]:
        """Start every rank (rank 0 last, a little later), wait for all; (exit code, record,
        stderr) per rank."""
        processes = []
        for rank in reversed(range(len(layout))):
            agent = layout[rank]
            env = rank_env(agents[agent], rank, len(layout), rank - layout.index(agent),
                           layout.count(agent), self.port, **(extra or {}).get(rank, {}))
            if rank == 0:
                time.sleep(0.5)
            out = self.dir / f"rank-{rank}.json"
            process = subprocess.Popen([sys.executable, str(TRIAL), str(out)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self.addCleanup(process.kill)
            processes.append((rank, out, process))
        results: dict[int, tuple[int, dict | None, str]] = {}
        for rank, out, process in processes:
            try:
                _, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                _, stderr = process.communicate()
                self.fail(f"rank {rank} did not finish: {stderr}")
            record = json.loads(out.read_text()) if out.exists() else None
            results[rank] = (process.returncode, record, stderr)
        return [results[rank] for rank in range(len(layout))]

    def test_every_rank_does_what_rank_0_was_told_and_writes_its_part(self) -> None:
        layout = [0, 0, 1]  # ranks 0 and 1 on the chief's agent, rank 2 on another
        chief, other = self.agents(layout, max_length=20, validation_period=3,
                                   checkpoint_period=5, stop_at=13, hparams={"lr": 0.1})
        results = self.run_ranks(layout, [chief, other])
        for rank, (code, _, stderr) in enumerate(results):
            self.assertEqual(code, 0, f"rank {rank}: {stderr}")
        records = [record for _, record, _ in results]
        expected = [[s, s % 3 == 0, s in (5, 10, 13), s == 13] for s in range(1, 14)]
        for rank, record in enumerate(records):
            self.assertEqual(record["steps"], expected, f"rank {rank}")
            self.assertEqual(record["hparams"], {"lr": 0.1})
        self.assertEqual([(r["rank"], r["local_rank"], r["local_world_size"], r["is_chief"])
                          for r in records], [(0, 0, 2, True), (1, 1, 2, False), (2, 0, 1, False)])

        # Only rank 0 reports, to its own agent.
        trained = [r for r in chief.requests if r["op"] == "report_training"]
        self.assertEqual([r["step"] for r in trained], list(range(1, 14)))
        self.assertTrue(all(r["metrics"]["rank"] == 0 for r in trained))
        validated = [r for r in chief.requests if r["op"] == "report_validation"]
        self.assertEqual([(r["step"], r["metrics"]["rank"]) for r in validated], [(3, 0), (6, 0), (9, 0), (12, 0)])
        self.assertEqual([op for op in other.ops() if op.startswith("report")], [])

        # Every rank's agent opened rank 0's checkpoints under their uuid, and every rank ended it.
        chief_starts = [r for r in chief.requests if r["op"] == "checkpoint_start"]
        chief_ends = [r for r in chief.requests if r["op"] == "checkpoint_end"]
        uuids = {r["step"]: r["uuid"] for r in chief_ends if r["rank"] == 0}
        self.assertEqual(sorted(uuids), [5, 10, 13])
        self.assertEqual([(r["step"], r.get("uuid")) for r in chief_starts],
                         [(s, u) for s in (5, 10, 13) for u in (None, uuids[s])])
        self.assertEqual(sorted((r["step"], r["uuid"], r["rank"]) for r in chief_ends),
                         [(s, uuids[s], rank) for s in (5, 10, 13) for rank in (0, 1)])
        self.assertEqual([(r["step"], r["uuid"]) for r in other.requests if r["op"] == "checkpoint_start"],
                         sorted(uuids.items()))
        self.assertEqual([(r["step"], r["uuid"], r["rank"]) for r in other.requests if r["op"] == "checkpoint_end"],
                         [(s, u, 2) for s, u in sorted(uuids.items())])

        # Each agent committed the files of its own ranks; rank 0's metadata is the checkpoint's.
        for step, uuid in uuids.items():
            meta = json.loads((chief.committed()[step] / "metadata.json").read_text())
            self.assertEqual((meta["uuid"], meta["metadata"]), (uuid, {"rank": 0}))
            self.assertEqual([f["path"] for f in meta["files"]], ["rank-0.json", "rank-1.json"])
            meta = json.loads((other.committed()[step] / "metadata.json").read_text())
            self.assertEqual((meta["uuid"], [f["path"] for f in meta["files"]]), (uuid, ["rank-2.json"]))
        self.assertEqual([c[0] for c in records[2]["checkpoints"]], [5, 10, 13])
        self.assertEqual(Path(records[1]["checkpoints"][0][1]), chief.committed()[5])

    def test_a_killed_worker_makes_rank_0_fail_naming_it(self) -> None:
        layout = [0, 1]
        agents = self.agents(layout, max_length=2000, checkpoint_period=1000)
        results = self.run_ranks(layout, agents, {0: {"TEST_STEP_SECONDS": "0.005"},
                                                  1: {"TEST_DIE_AT_STEP": "5"}})
        (code0, record0, stderr0), (code1, _, _) = results
        self.assertEqual(code1, -9)
        self.assertNotEqual(code0, 0)
        self.assertIsNone(record0)
        self.assertIn("baton._client.HarnessError: lost rank 1 of the trial", stderr0)

    def test_a_dead_rank_0_makes_the_workers_fail(self) -> None:
        layout = [0, 1, 2]
        agents = self.agents(layout, max_length=2000, checkpoint_period=1000)
        results = self.run_ranks(layout, agents, {0: {"TEST_DIE_AT_STEP": "5"}})
        self.assertEqual(results[0][0], -9)
        for code, _, stderr in results[1:]:
            self.assertNotEqual(code, 0)
            self.assertRegex(stderr, r"HarnessError: lost the connection to rank 0 while rank \d "
                                     r"waited for directive of step 5")

    def test_a_failed_checkpoint_on_a_worker_is_aborted_and_fails_the_trial(self) -> None:
        layout = [0, 1]
        chief, other = self.agents(layout, max_length=2000, checkpoint_period=5)
        results = self.run_ranks(layout, [chief, other], {0: {"TEST_STEP_SECONDS": "0.005"},
                                                          1: {"TEST_FAIL_CHECKPOINT_AT": "10"}})
        (code0, _, stderr0), (code1, _, stderr1) = results
        self.assertNotEqual(code1, 0)
        self.assertIn("OSError: disk full", stderr1)
        self.assertEqual(other.ops()[-2:], ["checkpoint_start", "checkpoint_abort"])
        self.assertEqual(sorted(other.committed()), [5])
        self.assertNotEqual(code0, 0)
        self.assertIn("HarnessError: lost rank 1 of the trial: its connection closed", stderr0)

    def test_rank_0_refuses_duplicate_and_unknown_ranks(self) -> None:
        agent = FakeAgent(world_size=3)
        self.addCleanup(agent.close)
        env = rank_env(agent, 0, 3, 0, 1, self.port, BATON_SYNC_TIMEOUT_SECONDS="3")
        chief = subprocess.Popen([sys.executable, str(TRIAL), str(self.dir / "out.json")], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(chief.kill)

        def hello(message: dict) -> tuple[socket.socket, dict]:
            deadline = time.monotonic() + 10
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port))
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self.addCleanup(sock.close)
            sock.sendall((json.dumps(message) + "\n").encode())
            return sock, json.loads(sock.makefile("rb").readline())

        _, welcome = hello({"op": "hello", "rank": 1, "world_size": 3})
        self.assertEqual(welcome, {"ok": True})
        for message, error in [
            ({"op": "hello", "rank": 1, "world_size": 3}, "rank 1 is already connected"),
            ({"op": "hello", "rank": 3, "world_size": 3}, "rank 3 is out of range: the other ranks are 1 to 2"),
            ({"op": "hello", "rank": 0, "world_size": 3}, "rank 0 is out of range"),
            ({"op": "hello", "rank": 2, "world_size": 4}, "rank 2 says the trial has 4 ranks, rank 0 has 3"),
            ({"rank": 2}, 'expected {"op":"hello"'),
        ]:
            sock, reply = hello(message)
            self.assertFalse(reply["ok"])
            self.assertIn(error, reply["error"])
            self.assertEqual(sock.recv(1), b"", "a refused rank's connection is closed")
        _, stderr = chief.communicate(timeout=30)
        self.assertNotEqual(chief.returncode, 0)
        self.assertRegex(stderr, r"refused a rank from \S*127\.0\.0\.1: rank 1 is already connected")
        self.assertIn("HarnessError: rank 0 waited 3 s (BATON_SYNC_TIMEOUT_SECONDS) on port "
                      f"{self.port} for ranks [2] to connect; they never did", stderr)
        self.assertEqual(agent.ops(), ["init"])


class RankEnvironmentTest(unittest.TestCase):
    """What `baton.init()` makes of the rank variables, in this process."""

    def setUp(self) -> None:
        self.agent = FakeAgent()
        self.addCleanup(self.agent.close)
        names = [n for n in os.environ if n.startswith("BATON_")]
        patcher = mock.patch.dict(os.environ, {"BATON_HARNESS_SOCKET": self.agent.socket_path})
        patcher.start()
        self.addCleanup(patcher.stop)
        for name in names:
            if name != "BATON_HARNESS_SOCKET":
                del os.environ[name]

    def test_a_one_rank_trial_is_unchanged(self) -> None:
        for env in [{}, {"BATON_RANK": "0", "BATON_WORLD_SIZE": "1", "BATON_LOCAL_RANK": "0",
                         "BATON_LOCAL_WORLD_SIZE": "1"}]:
            with mock.patch.dict(os.environ, env), baton.init() as ctx:
                self.assertEqual((ctx.rank, ctx.world_size, ctx.local_rank, ctx.local_world_size),
                                 (0, 1, 0, 1))
                self.assertTrue(ctx.is_chief)
                ctx.report_training(1, {"loss": 1.0})
                ctx.report_validation(1, {"loss": 1.0})
                with ctx.checkpoint(1, metadata={"a": 1}) as path:
                    (path / "w").write_text("w")
        starts = [r for r in self.agent.requests if r["op"] == "checkpoint_start"]
        self.assertEqual(starts, [{"op": "checkpoint_start", "step": 1}] * 2)
        self.assertEqual(self.agent.ops(), ["init", "report_training", "report_validation",
                                            "checkpoint_start", "checkpoint_end"] * 2)

    def test_a_worker_without_rank_0_gives_up_with_a_clear_error(self) -> None:
        port = free_port()
        env = {"BATON_RANK": "1", "BATON_WORLD_SIZE": "2", "BATON_SYNC_ADDR": "127.0.0.1",
               "BATON_SYNC_PORT": str(port), "BATON_SYNC_TIMEOUT_SECONDS": "0.5"}
        with mock.patch.dict(os.environ, env):
            with self.assertRaisesRegex(baton.HarnessError, f"rank 1 could not connect to rank 0 at "
                                        f"127.0.0.1:{port} within 0.5 s"):
                baton.init()
        self.assertEqual(self.agent.ops(), [])

    def test_bad_rank_variables_are_named(self) -> None:
        base = {"BATON_WORLD_SIZE": "2", "BATON_SYNC_ADDR": "127.0.0.1", "BATON_SYNC_PORT": "29500"}
        for env, error in [
            ({"BATON_RANK": "2"}, "BATON_RANK 2 is not in 0..1 (BATON_WORLD_SIZE 2)"),
            ({"BATON_WORLD_SIZE": "two"}, "BATON_WORLD_SIZE must be an integer, got 'two'"),
            ({"BATON_WORLD_SIZE": "0"}, "BATON_WORLD_SIZE must be >= 1"),
            ({"BATON_LOCAL_RANK": "1"}, "BATON_LOCAL_RANK 1 is not in 0..0"),
            ({"BATON_SYNC_ADDR": ""}, "BATON_SYNC_ADDR is not set"),
            ({"BATON_SYNC_PORT": "70000"}, "BATON_SYNC_PORT must be a TCP port"),
            ({"BATON_SYNC_TIMEOUT_SECONDS": "-1"}, "BATON_SYNC_TIMEOUT_SECONDS must be > 0"),
        ]:
            with mock.patch.dict(os.environ, {**base, **env}):
                with self.assertRaisesRegex(baton.HarnessError, error.replace("(", r"\(").replace(")", r"\)")):
                    baton.init()
        self.assertEqual(self.agent.ops(), [])


if __name__ == "__main__":
    unittest.main()
