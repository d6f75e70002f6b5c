"""TensorFlow custom-training-loop trials checkpointed as a SavedModel: the variables, the
optimizer's state and a serving signature in one directory that `tf.saved_model.load` serves in
any process, and exact resume from it.

    import baton, baton.tensorflow

    with baton.init() as ctx:
        if ctx.latest_checkpoint:
            baton.tensorflow.load(ctx.latest_checkpoint, model, optimizer)
        ...
        with ctx.checkpoint(step, metadata=baton.tensorflow.metadata()) as path:
            baton.tensorflow.save(path, model, optimizer, steps_completed=step)

`model` is a `tf.Module` (or Keras model) whose `__call__` is a `tf.function` with an
`input_signature`; it is exported as the "serving_default" signature. A checkpoint holds:

    saved_model/         the SavedModel; its root has `model`, `optimizer` and
                         `steps_completed`, so
                         `tf.train.Checkpoint(model=..., optimizer=...).read(
                         "saved_model/variables/variables")` restores training state too
    baton_state.json     the Python and NumPy RNG states

Random draws during training belong in a `tf.random.Generator` attribute of the model: it is a
variable, saved and restored with the others.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import tensorflow as tf

from baton._rng import json_state, restore_json_state

FORMAT = "baton.tensorflow/1"
DIRECTORY = "saved_model"
STATE = "baton_state.json"
SIGNATURE = "serving_default"


def metadata() -> dict[str, str]:
    """Checkpoint metadata naming the framework, format, directory, signature and versions."""
    return {
        "framework": "tensorflow",
        "format": FORMAT,
        "directory": DIRECTORY,
        "signature": SIGNATURE,
        "tensorflow_version": tf.__version__,
        "python_version": platform.python_version(),
    }


def save(path: str | Path, model: Any, optimizer: Any, *, steps_completed: int) -> Path:
    """Write the SavedModel of `model` with `optimizer`'s state into the checkpoint `path`."""
    path = Path(path)
    root = tf.Module()
    root.model = model
    root.optimizer = optimizer
    root.steps_completed = tf.Variable(int(steps_completed), dtype=tf.int64, trainable=False)
    target = path / DIRECTORY
    tf.saved_model.save(root, str(target), signatures={SIGNATURE: model.__call__})
    (path / STATE).write_text(json.dumps(json_state()))
    return target


def load(path: str | Path, model: Any, optimizer: Any) -> int:
    """Restore `model`'s variables, `optimizer`'s state and the RNG states from the checkpoint
    `path`; return the steps completed. Raises an error naming what did not match."""
    path = Path(path)
    if hasattr(optimizer, "build") and not getattr(optimizer, "built", True):
        optimizer.build(model.trainable_variables)
    steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, steps_completed=steps)
    checkpoint.read(str(path / DIRECTORY / "variables" / "variables")).assert_existing_objects_matched()
    restore_json_state(json.loads((path / STATE).read_text()))
    return int(steps.numpy())
