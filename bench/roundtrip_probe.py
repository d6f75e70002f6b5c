"""The trial of bench/harness_roundtrip.py: times `report_training` round trips to its agent.

Warms up, then reports `count` steps back to back, timing each call with perf_counter_ns, and
writes the nanoseconds as a JSON list to the file named by the `out` hyperparameter.
"""

from __future__ import annotations

import json
import sys
import time

import baton


def main() -> int:
    with baton.init() as ctx:
        count, warmup = int(ctx.hparams["count"]), int(ctx.hparams["warmup"])
        times = []
        for step in range(1, warmup + count + 1):
            started = time.perf_counter_ns()
            ctx.report_training(step, {"loss": 1.0 / step})
            if step > warmup:
                times.append(time.perf_counter_ns() - started)
        with open(ctx.hparams["out"], "w") as f:
            json.dump(times, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
