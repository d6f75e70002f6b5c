"""Runs examples/linreg/train.py as a trial against the fake agent: resuming is bit-for-bit exact."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from fake_agent import FakeAgent

REPO = Path(__file__).resolve().parents[3]
LINREG = REPO / "examples" / "linreg"
HPARAMS = {"learning_rate": 0.05, "momentum": 0.9, "batch_size": 16}


class LinregResumeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="linreg-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_trial(self, agent: FakeAgent) -> subprocess.CompletedProcess[str]:
        """Run train.py once, as the agent would, and return the finished process."""
        return subprocess.run(
            [sys.executable, "train.py"],
            cwd=LINREG,
            env=agent.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def agent(self, **options) -> FakeAgent:
        options.setdefault("hparams", HPARAMS)
        agent = FakeAgent(**options)
        self.addCleanup(agent.close)
        return agent

    def download(self, checkpoint: Path, name: str) -> str:
        """Copy a committed checkpoint, as an agent downloads it before resuming."""
        target = self.tmp / name
        shutil.copytree(checkpoint, target)
        return str(target)

    def assertSameFiles(self, a: Path, b: Path) -> None:
        for name in ("weights.json", "optimizer.json"):
            self.assertEqual((a / name).read_bytes(), (b / name).read_bytes(), name)

    def uninterrupted(self) -> FakeAgent:
        agent = self.agent()
        proc = self.run_trial(agent)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("starting fresh", proc.stdout)
        self.assertEqual(sorted(agent.committed()), [25, 50, 75, 100])
        return agent

    def test_resume_from_step_50_matches_uninterrupted_run(self) -> None:
        full = self.uninterrupted()
        ckpts = full.committed()

        resumed = self.agent(start_step=50, latest_checkpoint=self.download(ckpts[50], "c50"))
        proc = self.run_trial(resumed)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("resuming from step 50", proc.stdout)
        steps = [r["step"] for r in resumed.requests if r["op"] == "report_training"]
        self.assertEqual(steps, list(range(51, 101)))
        self.assertEqual(sorted(resumed.committed()), [75, 100])
        self.assertSameFiles(ckpts[75], resumed.committed()[75])
        self.assertSameFiles(ckpts[100], resumed.committed()[100])

        # The training losses reported after step 50 are identical too.
        def losses(agent: FakeAgent) -> dict[int, float]:
            return {r["step"]: r["metrics"]["loss"] for r in agent.requests if r["op"] == "report_training"}

        full_losses = losses(full)
        self.assertEqual(losses(resumed), {s: full_losses[s] for s in range(51, 101)})

    def test_checkpoint_contents_and_validation(self) -> None:
        agent = self.uninterrupted()
        path = agent.committed()[100]
        meta = json.loads((path / "metadata.json").read_text())
        self.assertEqual(meta["metadata"], {"framework": "pure-python", "format": "json"})
        self.assertEqual([f["path"] for f in meta["files"]], ["hparams.json", "optimizer.json", "weights.json"])
        self.assertEqual(json.loads((path / "hparams.json").read_text()), HPARAMS)
        validations = [r for r in agent.requests if r["op"] == "report_validation"]
        self.assertEqual([r["step"] for r in validations], list(range(10, 101, 10)))
        first, last = validations[0]["metrics"]["validation_loss"], validations[-1]["metrics"]["validation_loss"]
        self.assertLess(last, first / 100, "training must converge")
        self.assertLess(last, 0.05)

    def test_suspend_then_resume_matches_uninterrupted_run(self) -> None:
        full = self.uninterrupted().committed()
        suspended = self.agent(stop_at=37)
        proc = self.run_trial(suspended)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("stopping at step 37", proc.stdout)
        self.assertEqual(sorted(suspended.committed()), [25, 37])

        resumed = self.agent(start_step=37, latest_checkpoint=self.download(suspended.committed()[37], "c37"))
        proc = self.run_trial(resumed)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertSameFiles(full[100], resumed.committed()[100])

    def test_fail_at_step_only_on_a_fresh_start(self) -> None:
        full = self.uninterrupted().committed()
        hparams = dict(HPARAMS, fail_at_step=30)
        crashed = self.agent(hparams=hparams)
        proc = self.run_trial(crashed)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertEqual(crashed.requests[-1], {"op": "report_training", "step": 30, "metrics": crashed.requests[-1]["metrics"]})
        self.assertEqual(sorted(crashed.committed()), [25])

        restarted = self.agent(
            hparams=hparams, start_step=25, latest_checkpoint=self.download(crashed.committed()[25], "c25")
        )
        proc = self.run_trial(restarted)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertSameFiles(full[100], restarted.committed()[100])

    def test_ignore_stop_keeps_training_to_max_length(self) -> None:
        full = self.uninterrupted().committed()
        agent = self.agent(hparams=dict(HPARAMS, ignore_stop=True), stop_at=40)
        proc = self.run_trial(agent)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        steps = [r["step"] for r in agent.requests if r["op"] == "report_training"]
        self.assertEqual(steps[-1], 100)
        # Suspend checkpoints (41..99) are ignored; the first ones and the final one are written.
        self.assertEqual(sorted(agent.committed()), [25, 100])
        self.assertSameFiles(full[100], agent.committed()[100])

    def test_not_a_trial(self) -> None:
        proc = subprocess.run(
            [sys.executable, "train.py"],
            cwd=LINREG,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "harness" / "python")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("BATON_HARNESS_SOCKET is not set: run this script as a Baton trial", proc.stderr)


if __name__ == "__main__":
    unittest.main()
