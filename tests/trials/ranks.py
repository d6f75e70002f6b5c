"""A trial of several ranks (no framework): each rank sums step × (rank + 1) and keeps the sum in
its own file of every checkpoint, so its final sum shows whether every step counted exactly once
however the trial was moved.

Hyperparameters: step_seconds (0) to slow it down; fail_at (0: never) makes rank 1 fail inside
the checkpoint of that step, once — rank 0's part is committed, rank 1's never is — recorded in
the file named by marker so that the restarted trial runs through.
"""

from __future__ import annotations

import json
import os
import sys
import time

import baton


def main() -> int:
    with baton.init() as ctx:
        fail_at, marker = int(ctx.hparams.get("fail_at", 0)), ctx.hparams.get("marker", "")
        step_seconds = float(ctx.hparams.get("step_seconds", 0))
        state = {"sum": 0}
        if ctx.latest_checkpoint is not None:
            state = json.loads((ctx.latest_checkpoint / f"rank-{ctx.rank}.json").read_text())
        print(f"rank {ctx.rank} of {ctx.world_size} from step {ctx.start_step}", flush=True)
        for step in range(ctx.start_step + 1, ctx.max_length + 1):
            state["sum"] += step * (ctx.rank + 1)
            time.sleep(step_seconds)
            d = ctx.report_training(step, {"sum": float(state["sum"])})
            if d.checkpoint:
                with ctx.checkpoint(step) as path:
                    (path / f"rank-{ctx.rank}.json").write_text(json.dumps(state))
                    if ctx.rank == 1 and step == fail_at and not os.path.exists(marker):
                        open(marker, "w").close()
                        raise RuntimeError(f"rank 1 abandons the checkpoint of step {step}")
            if d.stop:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
