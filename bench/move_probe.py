"""A minimal Baton trial that records when things happen, for the trial-move benchmark.

It steps every `step_seconds` (time.sleep, default 5 ms) up to the searcher's max_length,
checkpoints a tiny file when told, and appends one JSON line per event to the file named by the
hyperparameter `events_path`:

    process_start         first statement of the script, before `import baton`
    restore_start/_end    around reading the checkpoint it resumes from
    first_step            its first step of this allocation was reported
    save_start/_end       around writing a checkpoint (inside `with ctx.checkpoint(...)`)
    checkpoint_committed  the `with ctx.checkpoint(...)` block returned (Baton accepted it)
    stop                  it is about to return after a stop
    process_end           the harness connection is closed; the script returns

Every line holds "event", "t" (time.time()) and "allocation" (BATON_ALLOCATION_ID); process_start
also holds "pid", save_start the checkpoint's "uuid".
bench/move_latency.py reads the file.
"""

import time

_STARTED = time.time()

import json  # noqa: E402
import os  # noqa: E402

_ALLOCATION = os.environ["BATON_ALLOCATION_ID"]
_EVENTS = open(  # noqa: SIM115  (kept open for the life of the process, line-buffered)
    json.loads(os.environ["BATON_HPARAMS"])["events_path"], "a", buffering=1, encoding="utf-8"
)


def emit(event: str, t: float | None = None, **fields: object) -> None:
    """Append one event line (one write on an O_APPEND file: lines never interleave)."""
    record = {"event": event, "t": time.time() if t is None else t, "allocation": _ALLOCATION}
    record.update(fields)
    _EVENTS.write(json.dumps(record) + "\n")


emit("process_start", t=_STARTED, pid=os.getpid())

import sys  # noqa: E402

import baton  # noqa: E402

STATE_FILE = "state.json"


def main() -> int:
    with baton.init() as ctx:
        step_seconds = float(ctx.hparams.get("step_seconds", 0.005))
        step = ctx.start_step
        if ctx.latest_checkpoint is not None:
            emit("restore_start", step=step)
            with open(ctx.latest_checkpoint / STATE_FILE, encoding="utf-8") as f:
                saved = json.load(f)["step"]
            if saved != step:
                print(f"checkpoint holds step {saved}, Baton says {step}", file=sys.stderr)
                return 1
            emit("restore_end", step=step)
        first = True
        previous_report = None
        while step < ctx.max_length:
            time.sleep(step_seconds)
            step += 1
            d = ctx.report_training(step, {"loss": 1.0 / step})
            reported = time.time()
            if first:
                emit("first_step", t=reported, step=step)
                first = False
            if d.validate:
                ctx.report_validation(step, {"validation_loss": 1.0 / step})
            if d.checkpoint:
                with ctx.checkpoint(step, metadata={"framework": "none"}) as path:
                    emit("save_start", step=step, uuid=path.name, directive_t=reported,
                         previous_report_t=previous_report)
                    with open(path / STATE_FILE, "w", encoding="utf-8") as f:
                        json.dump({"step": step}, f)
                    emit("save_end", step=step)
                emit("checkpoint_committed", step=step)
            if d.stop:
                emit("stop", step=step)
                break
            previous_report = reported
    emit("process_end", step=step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
