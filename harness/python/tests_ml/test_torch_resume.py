"""examples/torch_mlp as a trial against the fake agent: a resume is bitwise exact, and the
checkpoint loads with plain torch in a process where baton cannot be imported."""

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

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "torch_mlp"
HPARAMS = {"learning_rate": 0.01, "batch_size": 32, "seed": 7}


class TorchResumeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="torch-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def agent(self, **options) -> FakeAgent:
        options.setdefault("hparams", HPARAMS)
        options.setdefault("max_length", 120)
        options.setdefault("checkpoint_period", 40)
        options.setdefault("validation_period", 20)
        agent = FakeAgent(**options)
        self.addCleanup(agent.close)
        return agent

    def run_trial(self, agent: FakeAgent) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "train.py"], cwd=EXAMPLE, env=agent.env(),
            capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def copy(self, checkpoint: Path, name: str) -> str:
        target = self.tmp / name
        shutil.copytree(checkpoint, target)
        return str(target)

    def assertSameState(self, a: Path, b: Path) -> None:
        """Every tensor of two state_dict.pth files is bitwise equal (RNG states excepted)."""
        left = torch.load(a / "state_dict.pth")
        right = torch.load(b / "state_dict.pth")
        for kind in ("models", "optimizers", "lr_schedulers"):
            self.assertEqual(_flat(left[kind]), _flat(right[kind]), kind)
        self.assertEqual(left["steps_completed"], right["steps_completed"])

    def test_a_suspended_and_resumed_trial_ends_bitwise_like_an_uninterrupted_one(self) -> None:
        full = self.agent()
        self.run_trial(full)
        self.assertEqual(sorted(full.committed()), [40, 80, 120])
        stopped = self.agent(stop_at=57)
        proc = self.run_trial(stopped)
        self.assertIn("stopping at step 57", proc.stdout)
        resumed = self.agent(start_step=57, latest_checkpoint=self.copy(stopped.committed()[57], "c57"))
        proc = self.run_trial(resumed)
        self.assertIn("resuming from step 57", proc.stdout)
        self.assertEqual(sorted(resumed.committed()), [80, 120])
        self.assertSameState(full.committed()[120], resumed.committed()[120])

        def losses(agent: FakeAgent) -> dict[int, float]:
            return {r["step"]: r["metrics"]["loss"] for r in agent.requests if r["op"] == "report_training"}

        full_losses = losses(full)
        self.assertEqual(losses(resumed), {s: full_losses[s] for s in range(58, 121)})

    def test_the_checkpoint_loads_with_plain_torch_without_baton(self) -> None:
        agent = self.agent()
        self.run_trial(agent)
        final = agent.committed()[120]
        meta = json.loads((final / "metadata.json").read_text())["metadata"]
        self.assertEqual(meta["framework"], "torch")
        self.assertEqual(meta["format"], "baton.torch/1")
        self.assertEqual(meta["torch_version"], torch.__version__)
        script = (
            "import sys, torch\n"
            "sys.path.insert(0, sys.argv[2])\n"
            "try:\n    import baton\n    sys.exit('baton must not be importable')\nexcept ImportError:\n    pass\n"
            "from model import make_model, probe_input\n"
            "state = torch.load(sys.argv[1] + '/state_dict.pth')\n"
            "model = make_model()\n"
            "model.load_state_dict(state['models']['default'])\n"
            "model.eval()\n"
            "print(repr(model(probe_input()).item()))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-I", "-c", script, str(final), str(EXAMPLE)],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(float(proc.stdout.strip()), meta["probe_prediction"])


def _flat(tree, prefix: str = "") -> dict[str, object]:
    """Leaves of nested dicts/lists, tensors as (dtype, shape, bytes)."""
    out: dict[str, object] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}/{key}"))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            out.update(_flat(value, f"{prefix}/{index}"))
    elif isinstance(tree, torch.Tensor):
        out[prefix] = (str(tree.dtype), tuple(tree.shape), tree.cpu().contiguous().numpy().tobytes())
    else:
        out[prefix] = tree
    return out


if __name__ == "__main__":
    unittest.main()
