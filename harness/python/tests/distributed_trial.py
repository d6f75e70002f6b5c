"""A trial the distributed tests run as each rank: it trains nothing, checkpoints one file per rank
and writes what every call returned, as JSON, to the path given as its argument.

TEST_DIE_AT_STEP kills the rank (SIGKILL) before that step, TEST_FAIL_CHECKPOINT_AT makes its
checkpoint of that step raise, and TEST_STEP_SECONDS slows each step down.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import baton

die_at = int(os.environ.get("TEST_DIE_AT_STEP", "0"))
fail_checkpoint_at = int(os.environ.get("TEST_FAIL_CHECKPOINT_AT", "0"))
pause = float(os.environ.get("TEST_STEP_SECONDS", "0"))
record: dict = {"steps": [], "checkpoints": []}
with baton.init() as ctx:
    record.update(
        rank=ctx.rank,
        world_size=ctx.world_size,
        local_rank=ctx.local_rank,
        local_world_size=ctx.local_world_size,
        is_chief=ctx.is_chief,
        hparams=ctx.hparams,
    )
    for step in range(ctx.start_step + 1, ctx.max_length + 1):
        if step == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(pause)
        d = ctx.report_training(step, {"loss": 1.0 / step, "rank": ctx.rank})
        record["steps"].append([step, d.validate, d.checkpoint, d.stop])
        if d.validate:
            ctx.report_validation(step, {"validation_loss": 0.5, "rank": ctx.rank})
        if d.checkpoint:
            with ctx.checkpoint(step, metadata={"rank": ctx.rank}) as path:
                if step == fail_checkpoint_at:
                    raise OSError("disk full")
                (path / f"rank-{ctx.rank}.json").write_text(json.dumps({"step": step}))
            record["checkpoints"].append([step, str(path)])
        if d.stop:
            break
Path(sys.argv[1]).write_text(json.dumps(record))
