"""A base for tests that run an example's train.py as a trial against the fake agent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_agent import FakeAgent  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


class ExampleTrialTest(unittest.TestCase):
    """Runs `examples/<EXAMPLE>/train.py` with HPARAMS: 120 steps, validation every 20,
    checkpoints every 40."""

    EXAMPLE = ""
    HPARAMS: dict = {}

    def setUp(self) -> None:
        self.example = REPO / "examples" / self.EXAMPLE
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.EXAMPLE}-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def agent(self, **options) -> FakeAgent:
        options.setdefault("hparams", self.HPARAMS)
        options.setdefault("max_length", 120)
        options.setdefault("checkpoint_period", 40)
        options.setdefault("validation_period", 20)
        agent = FakeAgent(**options)
        self.addCleanup(agent.close)
        return agent

    def run_trial(self, agent: FakeAgent) -> subprocess.CompletedProcess[str]:
        """Run train.py once, as the agent would; it must exit 0."""
        proc = subprocess.run(
            [sys.executable, "train.py"], cwd=self.example, env=agent.env(),
            capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        return proc

    def full_stopped_and_resumed(self, stop_at: int = 57) -> tuple[FakeAgent, FakeAgent]:
        """An uninterrupted run, and one stopped at `stop_at` then resumed from that checkpoint
        (a copy, as an agent downloads it); the resumed one's losses must equal the full run's."""
        full = self.agent()
        self.run_trial(full)
        self.assertEqual(sorted(full.committed()), [40, 80, 120])
        stopped = self.agent(stop_at=stop_at)
        self.assertIn(f"stopping at step {stop_at}", self.run_trial(stopped).stdout)
        copy = self.tmp / f"c{stop_at}"
        shutil.copytree(stopped.committed()[stop_at], copy)
        resumed = self.agent(start_step=stop_at, latest_checkpoint=str(copy))
        self.assertIn(f"resuming from step {stop_at}", self.run_trial(resumed).stdout)
        self.assertEqual(sorted(resumed.committed()), [80, 120])
        full_losses = _losses(full)
        self.assertEqual(_losses(resumed), {s: full_losses[s] for s in range(stop_at + 1, 121)})
        return full, resumed

    def isolated(self, script: str, *args: Path) -> str:
        """Run `script` in a Python that ignores PYTHONPATH (baton is not importable); stdout."""
        out = subprocess.run(
            [sys.executable, "-I", "-c", script, *map(str, args)],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        return out.stdout.strip().splitlines()[-1]

    def trial_metadata(self, checkpoint: Path) -> dict:
        """The trial's own metadata in a committed checkpoint's metadata.json."""
        return json.loads((checkpoint / "metadata.json").read_text())["metadata"]


def _losses(agent: FakeAgent) -> dict[int, float]:
    return {r["step"]: r["metrics"]["loss"] for r in agent.requests if r["op"] == "report_training"}
