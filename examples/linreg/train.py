"""Linear regression trained by mini-batch SGD with momentum, in pure Python, as a Baton trial.

Deterministic: the data comes from a fixed seed and the mini-batch of step s depends only on
(DATA_SEED, s), so a run resumed from any checkpoint ends with bit-for-bit the same weights as an
uninterrupted run.

Hyperparameters (all optional):
    learning_rate (0.05), momentum (0.9), batch_size (16)
    step_seconds (0.0)   sleep per step, to make a trial slow enough to move mid-training
    fail_at_step (none)  exit with status 3 right after reporting this step, only on a fresh start
                         (BATON_LATEST_CHECKPOINT unset), to exercise crash recovery
    ignore_stop (false)  ignore suspend requests (checkpoint + stop before max_length) and keep
                         training, to exercise the preemption timeout
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

import baton

DATA_SEED = 1234
FEATURES = 8
SAMPLES = 512
NOISE = 0.1


def make_data() -> tuple[list[list[float]], list[float]]:
    """Synthetic data: y = w·x + b + noise, with true w, b drawn from DATA_SEED."""
    rng = random.Random(DATA_SEED)
    true_w = [rng.uniform(-2.0, 2.0) for _ in range(FEATURES)]
    true_b = rng.uniform(-1.0, 1.0)
    xs, ys = [], []
    for _ in range(SAMPLES):
        x = [rng.gauss(0.0, 1.0) for _ in range(FEATURES)]
        xs.append(x)
        ys.append(sum(wi * xi for wi, xi in zip(true_w, x)) + true_b + rng.gauss(0.0, NOISE))
    return xs, ys


def batch_indices(step: int, batch_size: int) -> list[int]:
    """The mini-batch of `step`: a function of (DATA_SEED, step) only."""
    rng = random.Random(DATA_SEED * 1_000_003 + step)
    return [rng.randrange(SAMPLES) for _ in range(batch_size)]


def predict(w: list[float], b: float, x: list[float]) -> float:
    """Model output for one sample."""
    return sum(wi * xi for wi, xi in zip(w, x)) + b


def mse(w: list[float], b: float, xs: list[list[float]], ys: list[float]) -> float:
    """Mean squared error over a data set."""
    return sum((predict(w, b, x) - y) ** 2 for x, y in zip(xs, ys)) / len(xs)


def main() -> int:
    with baton.init() as ctx:
        hp = ctx.hparams
        lr = float(hp.get("learning_rate", 0.05))
        beta = float(hp.get("momentum", 0.9))
        batch_size = int(hp.get("batch_size", 16))
        step_seconds = float(hp.get("step_seconds", 0.0))
        fail_at = hp.get("fail_at_step")
        fail_at = int(fail_at) if fail_at is not None else None
        ignore_stop = bool(hp.get("ignore_stop", False))
        fresh_start = not os.environ.get("BATON_LATEST_CHECKPOINT")

        xs, ys = make_data()
        # Model (w, b) and optimizer state (momentum buffers vw, vb).
        w, b = [0.0] * FEATURES, 0.0
        vw, vb = [0.0] * FEATURES, 0.0
        start = ctx.start_step
        if ctx.latest_checkpoint is not None:
            with open(ctx.latest_checkpoint / "weights.json") as f:
                weights = json.load(f)
            with open(ctx.latest_checkpoint / "optimizer.json") as f:
                opt = json.load(f)
            if opt.get("step") != start:
                print(f"checkpoint holds step {opt.get('step')}, Baton says {start}", file=sys.stderr)
                return 1
            w, b = weights["w"], weights["b"]
            vw, vb = opt["vw"], opt["vb"]
            print(f"resuming from step {start} ({ctx.latest_checkpoint})", flush=True)
        else:
            print(f"starting fresh (trial {ctx.trial_id}, hparams {json.dumps(hp, sort_keys=True)})", flush=True)

        for step in range(start + 1, ctx.max_length + 1):
            # Gradient of the batch MSE; loss is the batch MSE before the update.
            gw, gb, loss = [0.0] * FEATURES, 0.0, 0.0
            for i in batch_indices(step, batch_size):
                x = xs[i]
                err = predict(w, b, x) - ys[i]
                loss += err * err
                for j in range(FEATURES):
                    gw[j] += 2.0 * err * x[j]
                gb += 2.0 * err
            loss /= batch_size
            for j in range(FEATURES):
                vw[j] = beta * vw[j] + gw[j] / batch_size
                w[j] -= lr * vw[j]
            vb = beta * vb + gb / batch_size
            b -= lr * vb
            if step_seconds > 0:
                time.sleep(step_seconds)

            d = ctx.report_training(step, {"loss": loss})
            if step % 10 == 0:
                print(f"step {step}: loss {loss:.6f}", flush=True)
            if fail_at is not None and step == fail_at and fresh_start:
                print(f"failing on purpose at step {step} (fail_at_step)", file=sys.stderr, flush=True)
                return 3
            if ignore_stop and d.stop and step < ctx.max_length:
                # A stop before max_length comes from a suspend, which always asks for a checkpoint
                # too: ignore both and keep training, so the agent must fall back to its preemption
                # timeout. Validation and periodic checkpoints (which come without stop) still run,
                # and the trial still completes normally at max_length.
                d = baton.Directive(validate=d.validate)
            if d.validate:
                ctx.report_validation(step, {"validation_loss": mse(w, b, xs, ys)})
            if d.checkpoint:
                with ctx.checkpoint(step, metadata={"framework": "pure-python", "format": "json"}) as path:
                    with open(path / "weights.json", "w") as f:
                        json.dump({"w": w, "b": b}, f)
                    with open(path / "optimizer.json", "w") as f:
                        json.dump({"step": step, "vw": vw, "vb": vb}, f)
                    with open(path / "hparams.json", "w") as f:
                        json.dump(hp, f, indent=2, sort_keys=True)
            if d.stop:
                print(f"stopping at step {step}", flush=True)
                break
        print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
