"""A two-rank trial (no framework) whose rank 1 fails inside one checkpoint, once: rank 0's part of
that checkpoint is committed, rank 1's never is, so the checkpoint must never be used.

Hyperparameters: fail_at (the step whose checkpoint rank 1 abandons), marker (a file that records
that it did, so the restarted trial runs through).
"""

from __future__ import annotations

import json
import os
import sys

import baton


def main() -> int:
    with baton.init() as ctx:
        fail_at, marker = int(ctx.hparams["fail_at"]), ctx.hparams["marker"]
        state = {"sum": 0}
        if ctx.latest_checkpoint is not None:
            state = json.loads((ctx.latest_checkpoint / f"rank-{ctx.rank}.json").read_text())
        print(f"rank {ctx.rank} of {ctx.world_size} from step {ctx.start_step}", flush=True)
        for step in range(ctx.start_step + 1, ctx.max_length + 1):
            state["sum"] += step * (ctx.rank + 1)
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
