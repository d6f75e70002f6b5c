"""examples/torch_mlp as a trial against the fake agent: a resume is bitwise exact, and the
checkpoint loads with plain torch in a process where baton cannot be imported."""

from __future__ import annotations

import unittest
from pathlib import Path

import torch

from example_trials import ExampleTrialTest

LOAD = r'''
import sys, torch
try:
    import baton
    sys.exit("baton must not be importable")
except ImportError:
    pass
sys.path.insert(0, sys.argv[2])
from model import make_model, probe_input
state = torch.load(sys.argv[1] + "/state_dict.pth")
model = make_model()
model.load_state_dict(state["models"]["default"])
model.eval()
print(repr(model(probe_input()).item()))
'''


class TorchResumeTest(ExampleTrialTest):
    EXAMPLE = "torch_mlp"
    HPARAMS = {"learning_rate": 0.01, "batch_size": 32, "seed": 7}

    def test_a_suspended_and_resumed_trial_ends_bitwise_like_an_uninterrupted_one(self) -> None:
        full, resumed = self.full_stopped_and_resumed()
        left, right = (torch.load(a.committed()[120] / "state_dict.pth") for a in (full, resumed))
        for kind in ("models", "optimizers", "lr_schedulers"):
            self.assertEqual(_flat(left[kind]), _flat(right[kind]), kind)
        self.assertEqual(left["steps_completed"], right["steps_completed"])

    def test_the_checkpoint_loads_with_plain_torch_without_baton(self) -> None:
        agent = self.agent()
        self.run_trial(agent)
        final = agent.committed()[120]
        meta = self.trial_metadata(final)
        self.assertEqual((meta["framework"], meta["format"]), ("torch", "baton.torch/1"))
        self.assertEqual(meta["torch_version"], torch.__version__)
        self.assertEqual(float(self.isolated(LOAD, final, self.example)), meta["probe_prediction"])


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
