"""A Keras 3 MLP (TensorFlow backend) trained as a Baton trial with baton.keras.fit.

Deterministic: the data comes from a fixed seed and the batch of step s from (seed, s), weights
are initialised from the seed, TensorFlow runs with op determinism and one thread, and a
checkpoint holds the weights, Adam's variables (its iteration count included) and the RNG states,
so a trial moved any number of times ends bitwise like an uninterrupted one.

Hyperparameters (all optional): learning_rate (0.005), batch_size (32), hidden (32), seed (7),
step_seconds (0.0) to slow it down.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

import keras  # noqa: E402

import baton  # noqa: E402
import baton.keras  # noqa: E402
from model import FEATURES, make_data, probe_input  # noqa: E402


def main() -> int:
    with baton.init() as ctx:
        hp = ctx.hparams
        seed = int(hp.get("seed", 7))
        batch_size = int(hp.get("batch_size", 32))
        step_seconds = float(hp.get("step_seconds", 0.0))
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [
                keras.Input(shape=(FEATURES,)),
                keras.layers.Dense(int(hp.get("hidden", 32)), activation="relu"),
                keras.layers.Dense(int(hp.get("hidden", 32)), activation="relu"),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(float(hp.get("learning_rate", 0.005))), loss="mse")
        x, y, vx, vy = make_data()

        def batch_for_step(step: int) -> tuple[numpy.ndarray, numpy.ndarray]:
            if step_seconds > 0:
                time.sleep(step_seconds)
            rows = numpy.random.default_rng(seed * 1_000_003 + step).integers(0, len(x), batch_size)
            return x[rows], y[rows]

        print(f"{'resuming from step ' + str(ctx.start_step) if ctx.latest_checkpoint else 'starting fresh'}", flush=True)
        last = baton.keras.fit(ctx, model, batch_for_step, validation_data=(vx, vy))
        if last < ctx.max_length:
            print(f"stopping at step {last}", flush=True)
        else:
            probe = float(model(probe_input(), training=False).numpy()[0, 0])
            print(f"done at step {ctx.max_length}: probe prediction {probe!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
