"""A TensorFlow custom training loop (a tf.Module MLP, Adam, tf.GradientTape) as a Baton trial,
checkpointed as a SavedModel with baton.tensorflow and resumed exactly.

Deterministic: the data comes from a fixed seed and the batch of step s from (seed, s), the
weights are initialised from the seed, TensorFlow runs with op determinism and one thread, and a
checkpoint holds the variables, Adam's state and the RNG states.

Hyperparameters (all optional): learning_rate (0.005), batch_size (32), hidden (32), seed (7),
step_seconds (0.0) to slow it down.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

import keras  # noqa: E402

import baton  # noqa: E402
import baton.tensorflow  # noqa: E402
from data import FEATURES, make_data, probe_input  # noqa: E402


class MLP(tf.Module):
    """Two hidden ReLU layers; `__call__` is the serving signature."""

    def __init__(self, hidden: int, seed: int) -> None:
        super().__init__()
        init = tf.random.Generator.from_seed(seed)

        def dense(inputs: int, outputs: int) -> tuple[tf.Variable, tf.Variable]:
            scale = (2.0 / inputs) ** 0.5
            return tf.Variable(init.normal([inputs, outputs]) * scale), tf.Variable(tf.zeros([outputs]))

        self.w1, self.b1 = dense(FEATURES, hidden)
        self.w2, self.b2 = dense(hidden, hidden)
        self.w3, self.b3 = dense(hidden, 1)

    @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="x")])
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        h = tf.nn.relu(x @ self.w1 + self.b1)
        h = tf.nn.relu(h @ self.w2 + self.b2)
        return h @ self.w3 + self.b3


def main() -> int:
    with baton.init() as ctx:
        hp = ctx.hparams
        seed = int(hp.get("seed", 7))
        batch_size = int(hp.get("batch_size", 32))
        step_seconds = float(hp.get("step_seconds", 0.0))
        model = MLP(int(hp.get("hidden", 32)), seed)
        optimizer = keras.optimizers.Adam(float(hp.get("learning_rate", 0.005)))
        optimizer.build(model.trainable_variables)
        x, y, vx, vy = make_data()

        @tf.function
        def train_step(bx: tf.Tensor, by: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(bx) - by))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        if ctx.latest_checkpoint is not None:
            restored = baton.tensorflow.load(ctx.latest_checkpoint, model, optimizer)
            if restored != ctx.start_step:
                print(f"checkpoint holds step {restored}, Baton says {ctx.start_step}", file=sys.stderr)
                return 1
            print(f"resuming from step {ctx.start_step}", flush=True)
        else:
            print("starting fresh", flush=True)
        for step in range(ctx.start_step + 1, ctx.max_length + 1):
            rows = numpy.random.default_rng(seed * 1_000_003 + step).integers(0, len(x), batch_size)
            loss = float(train_step(tf.constant(x[rows]), tf.constant(y[rows])))
            if step_seconds > 0:
                time.sleep(step_seconds)
            d = ctx.report_training(step, {"loss": loss})
            if d.validate:
                val = float(tf.reduce_mean(tf.square(model(tf.constant(vx)) - vy)))
                ctx.report_validation(step, {"validation_loss": val})
            if d.checkpoint:
                probe = float(model(tf.constant(probe_input()))[0, 0])
                meta = {**baton.tensorflow.metadata(), "probe_prediction": probe}
                with ctx.checkpoint(step, metadata=meta) as path:
                    baton.tensorflow.save(path, model, optimizer, steps_completed=step)
            if d.stop:
                print(f"stopping at step {step}", flush=True)
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
