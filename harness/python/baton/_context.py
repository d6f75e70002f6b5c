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
from baton._sync import Chief, Ranks, Worker, listen, sync_settings

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
        max_length (int): the target length of this run in steps (the searcher's `max_length`;
            for `adaptive_asha`, the length of the rung the trial trains for now).
        start_step (int): step of the checkpoint being restored, 0 on a fresh start.
        latest_checkpoint (pathlib.Path | None): local directory to restore from, None on a fresh
            start.
        rank (int), world_size (int): this process's rank among the trial's processes and their
            number (0 and 1 in a one-rank trial).
        local_rank (int), local_world_size (int): the same among the processes of this agent.

    In a distributed trial every rank makes the same calls with the same steps; only rank 0 talks
    to Baton about steps, and the other ranks get the same answers from it (see PROTOCOL.md).

    Usable as a context manager: `with baton.init() as ctx:` closes the connection on exit.
    """

    def __init__(
        self,
        conn: Connection,
        reply: Mapping[str, Any],
        ranks: Ranks = Ranks(),
        sync: Chief | Worker | None = None,
    ) -> None:
        """Build a context from an open connection, the agent's `init` reply and, in a distributed
        trial, this rank's place and its connections to the other ranks."""
        self._conn = conn
        self._sync = sync
        self.rank: int = ranks.rank
        self.world_size: int = ranks.world_size
        self.local_rank: int = ranks.local_rank
        self.local_world_size: int = ranks.local_world_size
        try:
            self.trial_id: int = int(reply["trial_id"])
            self.experiment_id: int = int(reply["experiment_id"])
            self.allocation_id: str = str(reply["allocation_id"])
            self.hparams: dict[str, Any] = dict(reply["hparams"])
            self.max_length: int = int(reply["max_length"])
            self.start_step: int = int(reply.get("start_step") or 0)
        except (KeyError, TypeError, ValueError) as e:
            self.close()
            raise HarnessError(f"the agent sent a malformed init reply: {dict(reply)!r}") from e
        latest = reply.get("latest_checkpoint")
        self.latest_checkpoint: pathlib.Path | None = pathlib.Path(latest) if latest else None

    @property
    def is_chief(self) -> bool:
        """Whether this is rank 0, the rank that reports to Baton (always so in a one-rank trial)."""
        return self.rank == 0

    def report_training(self, step: int, metrics: Mapping[str, Any]) -> Directive:
        """Report that `step` (1-based count of completed steps) is done; return what to do next.

        In a distributed trial only rank 0's metrics are reported; every rank gets the directive
        rank 0's agent answered for `step`.
        """
        step = _step(step, 1)
        if isinstance(self._sync, Worker):
            r = self._sync.wait("directive", step)
        else:
            r = self._conn.call(
                {"op": "report_training", "step": step, "metrics": _metrics(metrics)}
            )
        directive = Directive(
            validate=bool(r.get("validate")),
            checkpoint=bool(r.get("checkpoint")),
            stop=bool(r.get("stop")),
        )
        if isinstance(self._sync, Chief):
            self._sync.send(
                {
                    "op": "directive",
                    "step": step,
                    "validate": directive.validate,
                    "checkpoint": directive.checkpoint,
                    "stop": directive.stop,
                }
            )
        return directive

    def report_validation(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Report validation metrics at `step` (allowed at any step); only rank 0's are reported,
        on the other ranks this does nothing."""
        step = _step(step, 0)
        if isinstance(self._sync, Worker):
            return
        self._conn.call({"op": "report_validation", "step": step, "metrics": _metrics(metrics)})

    @contextlib.contextmanager
    def checkpoint(
        self, step: int, metadata: Mapping[str, Any] | None = None
    ) -> Iterator[pathlib.Path]:
        """Write a checkpoint of the state after `step`; yields the directory to write into.

        On normal exit of the block the checkpoint is handed to Baton, which uploads it and writes
        `metadata.json` (holding `metadata`, the trial's own description) last. If the block raises,
        the checkpoint is discarded and the exception propagates. `metadata.json` is reserved: a
        trial that writes it gets a HarnessError.

        In a distributed trial every rank calls this with the same step and writes its own files
        into the directory its agent gives it (ranks of one agent share it: use names that differ
        between ranks, e.g. `rank-N/`); rank 0's `metadata` is the checkpoint's. The checkpoint is
        complete once every rank handed its part over.
        """
        meta = dict(metadata or {})
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"checkpoint metadata must be JSON-serializable: {e}") from e
        step = _step(step, 0)
        start: dict[str, Any] = {"op": "checkpoint_start", "step": step}
        if isinstance(self._sync, Worker):
            start["uuid"] = self._sync.wait("checkpoint", step).get("uuid")
        r = self._conn.call(start)
        try:
            uuid = str(r["uuid"])
            path = pathlib.Path(r["path"])
        except (KeyError, TypeError) as e:
            raise HarnessError(f"the agent sent a malformed checkpoint_start reply: {r!r}") from e
        try:
            if isinstance(self._sync, Chief):
                self._sync.send({"op": "checkpoint", "step": step, "uuid": uuid})
            yield path
            if os.path.lexists(path / RESERVED_METADATA_FILE):
                raise HarnessError(
                    f"the trial wrote {RESERVED_METADATA_FILE} into checkpoint {uuid}: that file is "
                    "written by Baton; pass your own metadata as ctx.checkpoint(step, metadata={...})"
                )
            end = {"op": "checkpoint_end", "uuid": uuid, "step": step, "metadata": meta}
            if self._sync is not None:
                end["rank"] = self.rank
            self._conn.call(end)
        except BaseException:
            # Discard the checkpoint, but never hide the original error behind a failed abort.
            with contextlib.suppress(HarnessError):
                self._conn.call({"op": "checkpoint_abort", "uuid": uuid})
            raise

    def close(self) -> None:
        """Close the connections to the agent and to the other ranks. Idempotent."""
        if self._sync is not None:
            self._sync.close()
        self._conn.close()

    def __enter__(self) -> Context:
        """Return the context itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connections."""
        self.close()

    def __repr__(self) -> str:
        """Short description for logs."""
        return (
            f"Context(trial_id={self.trial_id}, experiment_id={self.experiment_id}, "
            f"allocation_id={self.allocation_id!r}, start_step={self.start_step}, "
            f"max_length={self.max_length}, rank={self.rank}, world_size={self.world_size})"
        )


def init() -> Context:
    """Connect to the agent running this trial and return its Context.

    In a distributed trial (BATON_WORLD_SIZE > 1) rank 0 first waits for every other rank to
    connect to it, and the other ranks connect to rank 0 before their own agent.

    Raises HarnessError when the script is not run as a Baton trial, the agent refuses, or the
    ranks cannot connect to each other.
    """
    path = os.environ.get(SOCKET_ENV)
    if not path:
        raise HarnessError(f"{SOCKET_ENV} is not set: run this script as a Baton trial")
    ranks = Ranks.from_env(os.environ)
    if ranks.world_size == 1:
        conn, reply = _init_agent(path)
        return Context(conn, reply)
    host, port, timeout = sync_settings(os.environ)
    if ranks.rank > 0:
        worker = Worker.connect(host, port, ranks, timeout)
        try:
            conn, reply = _init_agent(path)
        except BaseException:
            worker.close()
            raise
        return Context(conn, reply, ranks, worker)
    listener = listen(port, ranks.world_size)
    try:
        conn, reply = _init_agent(path)
    except BaseException:
        listener.close()
        raise
    try:
        chief = Chief.accept(listener, ranks, timeout)
    except BaseException:
        conn.close()
        raise
    return Context(conn, reply, ranks, chief)


def _init_agent(path: str) -> tuple[Connection, dict[str, Any]]:
    """Connect to the agent's harness socket at `path` and send `init`."""
    conn = Connection(path)
    try:
        return conn, conn.call({"op": "init"})
    except BaseException:
        conn.close()
        raise


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
