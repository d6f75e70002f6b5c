"""examples/keras_mlp as a trial against the fake agent: a resume is bitwise exact, and the
checkpoint loads with stock Keras and h5py in a process where baton cannot be imported."""

from __future__ import annotations

import json
import re
import unittest
from pathlib import Path

from example_trials import ExampleTrialTest

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


class KerasResumeTest(ExampleTrialTest):
    EXAMPLE = "keras_mlp"
    HPARAMS = {"learning_rate": 0.005, "batch_size": 32, "seed": 7}

    def test_a_suspended_and_resumed_trial_ends_bitwise_like_an_uninterrupted_one(self) -> None:
        full, resumed = self.full_stopped_and_resumed()
        for name in ("model.weights.h5", "optimizer.weights.h5"):
            self.assertEqual(
                _datasets(full.committed()[120] / name), _datasets(resumed.committed()[120] / name), name
            )

    def test_the_checkpoint_loads_with_stock_keras_without_baton(self) -> None:
        agent = self.agent()
        proc = self.run_trial(agent)
        trial_probe = float(re.search(r"probe prediction (\S+)", proc.stdout).group(1))
        final = agent.committed()[120]
        meta = self.trial_metadata(final)
        self.assertEqual((meta["framework"], meta["format"]), ("keras", "baton.keras/1"))
        for name in FILES:
            self.assertTrue((final / name).is_file(), name)
        loaded = json.loads(self.isolated(LOAD, final, self.example))
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
