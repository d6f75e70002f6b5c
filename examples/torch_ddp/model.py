"""The torch_ddp model and its synthetic target, shared by the trial and code that loads it."""

from __future__ import annotations

import torch

FEATURES = 8
HIDDEN = 32


def make_model() -> torch.nn.Module:
    """A small MLP regressor."""
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1)
    )


def targets(x: torch.Tensor) -> torch.Tensor:
    """What the model learns: a fixed smooth function of the input."""
    w = torch.linspace(-1.0, 1.0, FEATURES, device=x.device).reshape(FEATURES, 1)
    return torch.sin(x @ w)


def probe_input() -> torch.Tensor:
    """A fixed batch whose loss is the validation metric."""
    return torch.linspace(-2.0, 2.0, 4 * FEATURES).reshape(4, FEATURES)
