"""The trial of bench/distributed_move.py: one rank or several, each writing its share of a
checkpoint of `size_mib` MiB and reading it back on resume; appends JSON events to the file named
by the `events` hyperparameter:

    first_step   the rank's first step of this allocation, after its restore ("t", "rank",
                 "allocation")
"""

from __future__ import annotations

import json
import os
import sys
import time

import baton


def emit(path: str, **event) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(event) + "\n")


def main() -> int:
    with baton.init() as ctx:
        events = ctx.hparams["events"]
        share = int(ctx.hparams["size_mib"]) * 2**20 // ctx.world_size
        mine = f"rank-{ctx.rank}.bin"
        if ctx.latest_checkpoint is not None:
            with open(ctx.latest_checkpoint / mine, "rb") as f:
                while f.read(2**24):
                    pass
        payload = os.urandom(min(share, 2**20)) * max(1, share // 2**20)
        first = True
        step = ctx.start_step
        while step < ctx.max_length:
            step += 1
            time.sleep(0.01)
            d = ctx.report_training(step, {"loss": 1.0 / step})
            if first:
                emit(events, event="first_step", t=time.time(), rank=ctx.rank,
                     allocation=os.environ["BATON_ALLOCATION_ID"])
                first = False
            if d.checkpoint:
                with ctx.checkpoint(step) as path:
                    (path / mine).write_bytes(payload)
            if d.stop:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
