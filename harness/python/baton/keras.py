"""Keras 3 trials: `fit` trains a compiled model one Baton step per batch, validates,
checkpoints and stops when Baton asks, and resumes exactly from a checkpoint.

    import baton, baton.keras

    with baton.init() as ctx:
        model = make_model()            # compiled, with its optimizer
        baton.keras.fit(ctx, model, batch_for_step, validation_data=(vx, vy))

`batch_for_step(step)` returns the `(x, y)` batch of a 1-based step; a resumed trial asks for the
steps after its checkpoint, so the data position is restored with the weights.

A checkpoint holds files stock Keras and h5py read:

    model.json              the architecture, `model.to_json()`: `keras.models.model_from_json`
    model.weights.h5        the weights, `model.save_weights`: `model.load_weights`
    optimizer.weights.h5    the optimizer's variables (its iteration count included), written by
                            `optimizer.save_own_variables`: datasets "0", "1", … in the order of
                            `optimizer.variables`, with the optimizer's config as JSON in the
                            file's "config" attribute; load with `optimizer.build(
                            model.trainable_variables)` then `optimizer.load_own_variables(file)`
    baton_state.json        steps completed and the Python and NumPy RNG states
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Callable

import h5py
import keras

import baton
from baton._rng import json_state, restore_json_state

FORMAT = "baton.keras/1"
ARCHITECTURE = "model.json"
WEIGHTS = "model.weights.h5"
OPTIMIZER = "optimizer.weights.h5"
STATE = "baton_state.json"


def metadata() -> dict[str, str]:
    """Checkpoint metadata naming the framework, format, files and versions."""
    return {
        "framework": "keras",
        "format": FORMAT,
        "files": ", ".join([ARCHITECTURE, WEIGHTS, OPTIMIZER]),
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "python_version": platform.python_version(),
    }


def save(path: str | Path, model: keras.Model, steps_completed: int) -> None:
    """Write the model's architecture, weights and optimizer state and the RNG states."""
    path = Path(path)
    (path / ARCHITECTURE).write_text(model.to_json())
    model.save_weights(str(path / WEIGHTS))
    optimizer = model.optimizer
    with h5py.File(path / OPTIMIZER, "w") as f:
        f.attrs["config"] = json.dumps(keras.optimizers.serialize(optimizer))
        optimizer.save_own_variables(f)
    (path / STATE).write_text(json.dumps({"steps_completed": int(steps_completed), "rng": json_state()}))


def load(path: str | Path, model: keras.Model) -> int:
    """Restore weights, optimizer state and RNG states into a compiled `model`; return the steps
    completed."""
    path = Path(path)
    model.load_weights(str(path / WEIGHTS))
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    with h5py.File(path / OPTIMIZER, "r") as f:
        optimizer.load_own_variables({key: f[key][()] for key in f.keys()})
    state = json.loads((path / STATE).read_text())
    restore_json_state(state["rng"])
    return int(state["steps_completed"])


def fit(
    ctx: baton.Context,
    model: keras.Model,
    batch_for_step: Callable[[int], tuple[Any, Any]],
    *,
    validation_data: tuple[Any, Any] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> int:
    """Train `model` from the trial's start step, one batch per step, until `ctx.max_length` or
    Baton says stop; return the last step trained (`ctx.max_length` once the trial is complete)."""
    if ctx.latest_checkpoint is not None:
        restored = load(ctx.latest_checkpoint, model)
        if restored != ctx.start_step:
            raise baton.HarnessError(
                f"checkpoint {ctx.latest_checkpoint} holds step {restored}, Baton resumes at {ctx.start_step}"
            )
    if ctx.start_step >= ctx.max_length:
        return ctx.start_step
    callback = _BatonCallback(ctx, validation_data, extra_metadata or {})
    data = _Steps(batch_for_step, ctx.start_step, ctx.max_length)
    model.fit(data, epochs=1, callbacks=[callback], verbose=0, shuffle=False)
    return callback.last_step


class _Steps(keras.utils.PyDataset):
    """The batches of steps start + 1 … end, in order."""

    def __init__(self, batch_for_step: Callable[[int], tuple[Any, Any]], start: int, end: int) -> None:
        super().__init__()
        self.batch_for_step, self.start, self.end = batch_for_step, start, end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.batch_for_step(self.start + index + 1)


class _BatonCallback(keras.callbacks.Callback):
    """Reports each batch as a step and does what Baton answers."""

    def __init__(self, ctx: baton.Context, validation_data: Any, extra_metadata: dict[str, Any]) -> None:
        super().__init__()
        self.ctx, self.validation_data, self.extra_metadata = ctx, validation_data, extra_metadata
        self.last_step = ctx.start_step

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Keras averages metrics over an epoch; a step reports its own batch's values.
        self.model.reset_metrics()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self.ctx.start_step + batch + 1
        self.last_step = step
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        d = self.ctx.report_training(step, metrics)
        if d.validate and self.validation_data is not None:
            x, y = self.validation_data
            results = self.model.evaluate(x, y, verbose=0, return_dict=True)
            self.ctx.report_validation(step, {f"validation_{k}": float(v) for k, v in results.items()})
        if d.checkpoint:
            with self.ctx.checkpoint(step, metadata={**metadata(), **self.extra_metadata}) as path:
                save(path, self.model, step)
        if d.stop:
            self.model.stop_training = True
