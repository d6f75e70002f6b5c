"""The tf_savedmodel data, shared by the trial and by code that uses its checkpoints."""

from __future__ import annotations

import numpy

FEATURES = 12
SAMPLES = 1024
DATA_SEED = 1234


def make_data() -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Synthetic regression data from DATA_SEED: training x, y and validation x, y (float32)."""
    rng = numpy.random.default_rng(DATA_SEED)
    w = rng.normal(size=(FEATURES, 1))
    x = rng.normal(size=(SAMPLES + SAMPLES // 4, FEATURES))
    y = numpy.tanh(x @ w) + 0.05 * rng.normal(size=(x.shape[0], 1))
    x, y = x.astype("float32"), y.astype("float32")
    return x[:SAMPLES], y[:SAMPLES], x[SAMPLES:], y[SAMPLES:]


def probe_input() -> numpy.ndarray:
    """A fixed input whose prediction shows that a loaded model is the trained one."""
    return numpy.linspace(-1.0, 1.0, FEATURES, dtype="float32").reshape(1, FEATURES)
