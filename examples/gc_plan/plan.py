"""A scripted trial: validates and checkpoints exactly where its plan says, to exercise checkpoint GC.

The hyperparameter `plan` is a list of `[step, metric]` pairs, steps strictly increasing, metric a
number or null. The trial reports training for every step from its start step + 1 to the last
planned step. At each planned step it first reports validation `{"validation_loss": metric}` when
the metric is not null, then writes a checkpoint holding `state.json` (the trial and step) and
`blob.bin` (64 KiB of bytes derived from the trial and step, so sizes and checksums are real).
Then it exits 0.

Baton's directives do not change the plan: validation requests and periodic checkpoint requests
are ignored. A stop is obeyed: when it comes with a checkpoint request (a suspend, or the end of
training) and no checkpoint was written at that step yet, one is written, then the trial returns.
A trial resumed from a checkpoint at step k checks `state.json` and continues with step k + 1.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import baton

BLOB_BYTES = 64 * 1024


def parse_plan(raw: Any) -> list[tuple[int, float | None]]:
    """Check the `plan` hyperparameter and return it as (step, metric) pairs."""
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"hyperparameter plan must be a non-empty list of [step, metric], got {raw!r}")
    plan: list[tuple[int, float | None]] = []
    previous = 0
    for entry in raw:
        if not isinstance(entry, list) or len(entry) != 2:
            raise ValueError(f"plan entry {entry!r} must be [step, metric_or_null]")
        step, metric = entry
        if isinstance(step, bool) or not isinstance(step, int) or step <= previous:
            raise ValueError(f"plan entry {entry!r}: steps must be integers >= 1, strictly increasing")
        if metric is not None and (isinstance(metric, bool) or not isinstance(metric, (int, float))):
            raise ValueError(f"plan entry {entry!r}: metric must be a number or null")
        plan.append((step, None if metric is None else float(metric)))
        previous = step
    return plan


def write_checkpoint(ctx: baton.Context, step: int) -> None:
    """Write the checkpoint of `step`: state.json and a 64 KiB blob."""
    blob = random.Random(f"{ctx.trial_id}-{step}").randbytes(BLOB_BYTES)
    with ctx.checkpoint(step, metadata={"framework": "gc-plan"}) as path:
        with open(path / "state.json", "w") as f:
            json.dump({"trial_id": ctx.trial_id, "step": step}, f)
        with open(path / "blob.bin", "wb") as f:
            f.write(blob)
    print(f"checkpoint at step {step}", flush=True)


def main() -> int:
    with baton.init() as ctx:
        try:
            plan = parse_plan(ctx.hparams.get("plan"))
        except ValueError as e:
            print(e, file=sys.stderr, flush=True)
            return 2
        start = ctx.start_step
        if ctx.latest_checkpoint is not None:
            with open(ctx.latest_checkpoint / "state.json") as f:
                restored = json.load(f).get("step")
            if restored != start:
                print(f"checkpoint holds step {restored}, Baton says {start}", file=sys.stderr)
                return 1
            print(f"resuming from step {start}", flush=True)
        metrics = dict(plan)
        last = plan[-1][0]
        for step in range(start + 1, last + 1):
            d = ctx.report_training(step, {"loss": 1.0 / step})
            checkpointed = False
            if step in metrics:
                if metrics[step] is not None:
                    ctx.report_validation(step, {"validation_loss": metrics[step]})
                write_checkpoint(ctx, step)
                checkpointed = True
            if d.stop:
                if d.checkpoint and not checkpointed:
                    write_checkpoint(ctx, step)
                print(f"stopping at step {step}", flush=True)
                break
        print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
