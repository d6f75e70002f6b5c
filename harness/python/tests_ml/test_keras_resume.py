"""examples/keras_mlp as a trial against the fake agent: a resume is bitwise exact, and the
checkpoint loads with stock Keras and h5py in a process where baton cannot be imported."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_agent import FakeAgent  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "keras_mlp"
HPARAMS = {"learning_rate": 0.005, "batch_size": 32, "seed": 7}
FILES = ("model.json", "model.weights.h5", "optimizer.weights.h5")

LOAD = r'''
import sys, h5py, json, keras
try:
    import baton
    sys.exit("baton must not be importable")
except ImportError:
    pass
sys.path.insert(0, sys.argv[2])
from model import probe_input
ckpt = sys.argv[1]
model = keras.models.model_from_json(open(ckpt + "/model.json").read())
model.load_weights(ckpt + "/model.weights.h5")
with h5py.File(ckpt + "/optimizer.weights.h5") as f:
    optimizer = keras.optimizers.deserialize(json.loads(f.attrs["config"]))
    optimizer.build(model.trainable_variables)
    optimizer.load_own_variables({key: f[key][()] for key in f.keys()})
print(json.dumps({"probe": float(model(probe_input(), training=False).numpy()[0, 0]),
                  "iterations": int(optimizer.iterations.numpy())}))
'''


class KerasResumeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="keras-"))
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
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        return proc

    def copy(self, checkpoint: Path, name: str) -> str:
        target = self.tmp / name
        shutil.copytree(checkpoint, target)
        return str(target)

    def test_a_suspended_and_resumed_trial_ends_bitwise_like_an_uninterrupted_one(self) -> None:
        full = self.agent()
        self.run_trial(full)
        self.assertEqual(sorted(full.committed()), [40, 80, 120])
        stopped = self.agent(stop_at=57)
        self.assertIn("stopping", self.run_trial(stopped).stdout)
        resumed = self.agent(start_step=57, latest_checkpoint=self.copy(stopped.committed()[57], "c57"))
        self.assertIn("resuming from step 57", self.run_trial(resumed).stdout)
        self.assertEqual(sorted(resumed.committed()), [80, 120])
        for name in ("model.weights.h5", "optimizer.weights.h5"):
            self.assertEqual(_datasets(full.committed()[120] / name), _datasets(resumed.committed()[120] / name), name)

        def losses(agent: FakeAgent) -> dict[int, float]:
            return {r["step"]: r["metrics"]["loss"] for r in agent.requests if r["op"] == "report_training"}

        full_losses = losses(full)
        self.assertEqual(losses(resumed), {s: full_losses[s] for s in range(58, 121)})

    def test_the_checkpoint_loads_with_stock_keras_without_baton(self) -> None:
        agent = self.agent()
        proc = self.run_trial(agent)
        trial_probe = float(re.search(r"probe prediction (\S+)", proc.stdout).group(1))
        final = agent.committed()[120]
        meta = json.loads((final / "metadata.json").read_text())["metadata"]
        self.assertEqual((meta["framework"], meta["format"]), ("keras", "baton.keras/1"))
        for name in FILES:
            self.assertTrue((final / name).is_file(), name)
        out = subprocess.run(
            [sys.executable, "-I", "-c", LOAD, str(final), str(EXAMPLE)],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        loaded = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(loaded["probe"], trial_probe)
        self.assertEqual(loaded["iterations"], 120)


def _datasets(path: Path) -> dict[str, bytes]:
    """Every dataset of an HDF5 file, by name, as bytes."""
    import h5py

    out: dict[str, bytes] = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes()) if isinstance(obj, h5py.Dataset) else None)
    return out


if __name__ == "__main__":
    unittest.main()
