"""The torch_mlp model and data, shared by the trial and by code that loads its checkpoints."""

from __future__ import annotations

import torch

FEATURES = 16
HIDDEN = 32
SAMPLES = 1024
DATA_SEED = 1234


def make_model(dropout: float = 0.1) -> torch.nn.Module:
    """A two-hidden-layer MLP regressor."""
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, 1),
    )


def make_data() -> tuple[torch.utils.data.TensorDataset, torch.utils.data.TensorDataset]:
    """Synthetic training and validation sets: y = sin(x·w) + x·v + noise, from DATA_SEED."""
    g = torch.Generator().manual_seed(DATA_SEED)
    w = torch.randn(FEATURES, 1, generator=g)
    v = torch.randn(FEATURES, 1, generator=g) * 0.1
    x = torch.randn(SAMPLES + SAMPLES // 4, FEATURES, generator=g)
    y = torch.sin(x @ w) + x @ v + 0.05 * torch.randn(x.shape[0], 1, generator=g)
    train = torch.utils.data.TensorDataset(x[:SAMPLES], y[:SAMPLES])
    validation = torch.utils.data.TensorDataset(x[SAMPLES:], y[SAMPLES:])
    return train, validation


def probe_input() -> torch.Tensor:
    """A fixed input whose prediction shows that a loaded model is the trained one."""
    return torch.linspace(-1.0, 1.0, FEATURES).reshape(1, FEATURES)
