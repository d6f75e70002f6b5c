"""The trial's view of Baton: init, per-step reports and checkpoints."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from baton._client import SOCKET_ENV, Connection, HarnessError

RESERVED_METADATA_FILE = "metadata.json"


@dataclass(frozen=True, slots=True)
class Directive:
    """What the trial does after a step: validate, then checkpoint, then stop (in that order)."""

    validate: bool = False
    """Report validation metrics for this step (`Context.report_validation`)."""
    checkpoint: bool = False
    """Write a checkpoint of the state after this step (`Context.checkpoint`)."""
    stop: bool = False
    """Return (exit 0) after doing what else was asked."""


class Context:
    """A trial's connection to Baton, created by `baton.init()`.

    Attributes (read-only by convention):
        trial_id (int), experiment_id (int), allocation_id (str): who this run is.
        hparams (dict): the trial's hyperparameters.
        max_length (int): the searcher's target length in steps.
        start_step (int): step of the checkpoint being restored, 0 on a fresh start.
        latest_checkpoint (pathlib.Path | None): local directory to restore from, None on a fresh
            start.

    Usable as a context manager: `with baton.init() as ctx:` closes the connection on exit.
    """

    def __init__(self, conn: Connection, reply: Mapping[str, Any]) -> None:
        """Build a context from an open connection and the agent's `init` reply."""
        self._conn = conn
        try:
            self.trial_id: int = int(reply["trial_id"])
            self.experiment_id: int = int(reply["experiment_id"])
            self.allocation_id: str = str(reply["allocation_id"])
            self.hparams: dict[str, Any] = dict(reply["hparams"])
            self.max_length: int = int(reply["max_length"])
            self.start_step: int = int(reply.get("start_step") or 0)
        except (KeyError, TypeError, ValueError) as e:
            conn.close()
            raise HarnessError(f"the agent sent a malformed init reply: {dict(reply)!r}") from e
        latest = reply.get("latest_checkpoint")
        self.latest_checkpoint: pathlib.Path | None = pathlib.Path(latest) if latest else None

    def report_training(self, step: int, metrics: Mapping[str, Any]) -> Directive:
        """Report that `step` (1-based count of completed steps) is done; return what to do next."""
        r = self._conn.call(
            {"op": "report_training", "step": _step(step, 1), "metrics": _metrics(metrics)}
        )
        return Directive(
            validate=bool(r.get("validate")),
            checkpoint=bool(r.get("checkpoint")),
            stop=bool(r.get("stop")),
        )

    def report_validation(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Report validation metrics at `step` (allowed at any step)."""
        self._conn.call(
            {"op": "report_validation", "step": _step(step, 0), "metrics": _metrics(metrics)}
        )

    @contextlib.contextmanager
    def checkpoint(
        self, step: int, metadata: Mapping[str, Any] | None = None
    ) -> Iterator[pathlib.Path]:
        """Write a checkpoint of the state after `step`; yields the empty directory to write into.

        On normal exit of the block the checkpoint is handed to Baton, which uploads it and writes
        `metadata.json` (holding `metadata`, the trial's own description) last. If the block raises,
        the checkpoint is discarded and the exception propagates. `metadata.json` is reserved: a
        trial that writes it gets a HarnessError.
        """
        meta = dict(metadata or {})
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"checkpoint metadata must be JSON-serializable: {e}") from e
        r = self._conn.call({"op": "checkpoint_start", "step": _step(step, 0)})
        try:
            uuid = str(r["uuid"])
            path = pathlib.Path(r["path"])
        except (KeyError, TypeError) as e:
            raise HarnessError(f"the agent sent a malformed checkpoint_start reply: {r!r}") from e
        try:
            yield path
            if os.path.lexists(path / RESERVED_METADATA_FILE):
                raise HarnessError(
                    f"the trial wrote {RESERVED_METADATA_FILE} into checkpoint {uuid}: that file is "
                    "written by Baton; pass your own metadata as ctx.checkpoint(step, metadata={...})"
                )
            self._conn.call(
                {"op": "checkpoint_end", "uuid": uuid, "step": step, "metadata": meta}
            )
        except BaseException:
            # Discard the checkpoint, but never hide the original error behind a failed abort.
            with contextlib.suppress(HarnessError):
                self._conn.call({"op": "checkpoint_abort", "uuid": uuid})
            raise

    def close(self) -> None:
        """Close the connection to the agent. Idempotent."""
        self._conn.close()

    def __enter__(self) -> Context:
        """Return the context itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connection."""
        self.close()

    def __repr__(self) -> str:
        """Short description for logs."""
        return (
            f"Context(trial_id={self.trial_id}, experiment_id={self.experiment_id}, "
            f"allocation_id={self.allocation_id!r}, start_step={self.start_step}, "
            f"max_length={self.max_length})"
        )


def init() -> Context:
    """Connect to the agent running this trial and return its Context.

    Raises HarnessError when the script is not run as a Baton trial or the agent refuses.
    """
    path = os.environ.get(SOCKET_ENV)
    if not path:
        raise HarnessError(f"{SOCKET_ENV} is not set: run this script as a Baton trial")
    conn = Connection(path)
    try:
        reply = conn.call({"op": "init"})
    except BaseException:
        conn.close()
        raise
    return Context(conn, reply)


def _step(step: Any, minimum: int) -> int:
    """Check that `step` is an integer >= `minimum`."""
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            as_int = step.__index__()  # numpy and torch integers
        except (AttributeError, TypeError):
            raise TypeError(f"step must be an int, not {type(step).__name__}") from None
        step = int(as_int)
    if step < minimum:
        raise ValueError(f"step must be >= {minimum}, got {step}")
    return step


def _metrics(metrics: Mapping[str, Any]) -> dict[str, int | float]:
    """Check metrics: string names, finite numbers (numpy/torch scalars are converted)."""
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict of name to number, not {type(metrics).__name__}")
    out: dict[str, int | float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"metric names must be strings, got {name!r}")
        if type(value) is float or type(value) is int:
            v = value
        elif isinstance(value, bool) or not hasattr(type(value), "__float__"):
            raise TypeError(f"metric {name!r} must be a number, not {type(value).__name__}")
        else:
            v = float(value)
        if type(v) is float and not math.isfinite(v):
            raise ValueError(f"metric {name!r} is {v}: only finite numbers can be reported")
        out[name] = v
    return out
