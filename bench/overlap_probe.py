"""The trial of bench/overlap_move.py: a trial whose start costs `import_seconds` (like importing a
framework) and whose checkpoint is one file of `size_mib` MiB; appends JSON events to the file named
by the `events` hyperparameter:

    imported    the start-up cost is paid (before baton.init())
    init        baton.init() returned (the agent has restored and verified the checkpoint)
    loaded      the checkpoint file is read back ("seconds": the read alone)
    first_step  the first step of this allocation was reported
"""

from __future__ import annotations

import json
import os
import sys
import time

HP = json.loads(os.environ["BATON_HPARAMS"])
EVENTS = HP["events"]
ALLOCATION = os.environ["BATON_ALLOCATION_ID"]


def emit(event: str, **fields) -> None:
    with open(EVENTS, "a") as f:
        f.write(json.dumps({"event": event, "t": time.time(), "allocation": ALLOCATION, **fields}) + "\n")


time.sleep(float(HP["import_seconds"]))
emit("imported")

import baton  # noqa: E402


def main() -> int:
    with baton.init() as ctx:
        emit("init")
        if ctx.latest_checkpoint is not None:
            started = time.perf_counter()
            with open(ctx.latest_checkpoint / "state.bin", "rb") as f:
                while f.read(2**24):
                    pass
            emit("loaded", seconds=time.perf_counter() - started)
        step, first = ctx.start_step, True
        while step < ctx.max_length:
            step += 1
            time.sleep(0.01)
            d = ctx.report_training(step, {"loss": 1.0 / step})
            if first:
                emit("first_step")
                first = False
            if d.checkpoint:
                with ctx.checkpoint(step) as path:
                    (path / "state.bin").write_bytes(os.urandom(2**20) * int(HP["size_mib"]))
            if d.stop:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
