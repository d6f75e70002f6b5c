"""An in-process stand-in for the agent's side of the harness protocol (harness/PROTOCOL.md).

It listens on a Unix socket in a temporary directory, answers requests from a thread, records them,
hands out checkpoint directories under its own root and writes `metadata.json` on `checkpoint_end`
(with a SHA-256 of each file in place of the agent's BLAKE3: the standard library has no BLAKE3).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import uuid as uuidlib
from pathlib import Path
from typing import Any

HARNESS_PYTHON = Path(__file__).resolve().parents[1]
if str(HARNESS_PYTHON) not in sys.path:
    sys.path.insert(0, str(HARNESS_PYTHON))


class FakeAgent:
    """Answers one trial per the protocol; policy: periodic validation/checkpoints, optional stop.

    With `world_size` > 1 it is one agent of a distributed trial, running `local_world_size`
    ranks from `rank_offset` on, and keeps the agent's rules for them: an agent of ranks other
    than 0 refuses reports and opens checkpoints only under the uuid rank 0 got; a checkpoint is
    committed, with the metadata of the agent's first rank, once each of its ranks ended it.
    """

    def __init__(
        self,
        *,
        trial_id: int = 7,
        experiment_id: int = 3,
        allocation_id: str = "alloc-1",
        hparams: dict[str, Any] | None = None,
        max_length: int = 100,
        start_step: int = 0,
        latest_checkpoint: str | None = None,
        validation_period: int = 10,
        checkpoint_period: int = 25,
        stop_at: int | None = None,
        world_size: int = 1,
        rank_offset: int = 0,
        local_world_size: int = 1,
    ) -> None:
        self.trial_id = trial_id
        self.experiment_id = experiment_id
        self.allocation_id = allocation_id
        self.hparams = dict(hparams or {})
        self.max_length = max_length
        self.start_step = start_step
        self.latest_checkpoint = latest_checkpoint
        self.validation_period = validation_period
        self.checkpoint_period = checkpoint_period
        self.stop_at = stop_at
        self.world_size = world_size
        self.rank_offset = rank_offset
        self.local_world_size = local_world_size
        # A short directory: Unix socket paths are limited to about 100 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
        self.socket_path = str(self.dir / "h.sock")
        self.checkpoint_root = self.dir / "ckpt"
        self.checkpoint_root.mkdir()
        self.requests: list[dict[str, Any]] = []
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.fail_next: str | None = None  # answer the next request with this error
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(8)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # --- for the tests -----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment the agent gives a trial."""
        env = dict(os.environ)
        env.pop("BATON_LATEST_CHECKPOINT", None)
        env.update(
            BATON_HARNESS_SOCKET=self.socket_path,
            BATON_TRIAL_ID=str(self.trial_id),
            BATON_EXPERIMENT_ID=str(self.experiment_id),
            BATON_ALLOCATION_ID=self.allocation_id,
            BATON_HPARAMS=json.dumps(self.hparams),
            CUDA_VISIBLE_DEVICES="",
            PYTHONPATH=os.pathsep.join(
                [str(HARNESS_PYTHON)] + [p for p in [env.get("PYTHONPATH")] if p]
            ),
        )
        if self.latest_checkpoint:
            env["BATON_LATEST_CHECKPOINT"] = self.latest_checkpoint
        return env

    def ops(self) -> list[str]:
        """The `op` of every request received, in order."""
        with self._lock:
            return [r.get("op") for r in self.requests]

    def committed(self) -> dict[int, Path]:
        """Step → directory of every committed checkpoint."""
        with self._lock:
            return {c["step"]: c["path"] for c in self.checkpoints.values() if c["state"] == "committed"}

    def close(self) -> None:
        """Stop listening and remove the temporary directory."""
        self._listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- server ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        state = {"initialized": False, "last_step": None}
        with conn, conn.makefile("rb") as rfile:
            for line in rfile:
                try:
                    request = json.loads(line)
                except ValueError:
                    request = None
                with self._lock:
                    if isinstance(request, dict):
                        self.requests.append(request)
                    response = self._answer(request, state)
                try:
                    conn.sendall((json.dumps(response) + "\n").encode())
                except OSError:
                    return

    def _answer(self, request: Any, state: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(request, dict):
            return _err("request is not a JSON object")
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            return _err(message)
        op = request.get("op")
        if op == "init":
            if state["initialized"]:
                return _err("init was already sent")
            state["initialized"] = True
            state["last_step"] = self.start_step
            return {
                "ok": True,
                "trial_id": self.trial_id,
                "experiment_id": self.experiment_id,
                "allocation_id": self.allocation_id,
                "hparams": self.hparams,
                "max_length": self.max_length,
                "start_step": self.start_step,
                "latest_checkpoint": self.latest_checkpoint,
            }
        if not state["initialized"]:
            return _err("the first request must be init")
        if self.rank_offset > 0 and op in ("report_training", "report_validation"):
            return _err(f"{op} comes from rank 0 only")
        if op == "report_training":
            step = request.get("step")
            if not isinstance(step, int) or not isinstance(request.get("metrics"), dict):
                return _err("report_training needs an integer step and a metrics object")
            if step <= state["last_step"]:
                return _err(f"step {step} does not increase (last step {state['last_step']})")
            state["last_step"] = step
            done = step >= self.max_length
            suspend = self.stop_at is not None and step >= self.stop_at
            return {
                "ok": True,
                "validate": step % self.validation_period == 0 or done,
                "checkpoint": step % self.checkpoint_period == 0 or done or suspend,
                "stop": done or suspend,
            }
        if op == "report_validation":
            if not isinstance(request.get("step"), int):
                return _err("report_validation needs an integer step")
            return {"ok": True}
        if op == "checkpoint_start":
            if not isinstance(request.get("step"), int):
                return _err("checkpoint_start needs an integer step")
            uuid = request.get("uuid")
            if uuid is None:
                if self.rank_offset > 0:
                    return _err("checkpoint_start needs the uuid rank 0 got")
                uuid = str(uuidlib.uuid4())
            elif self.rank_offset == 0 and (self.world_size <= 1 or uuid not in self.checkpoints):
                return _err("checkpoint_start of rank 0 takes no uuid")
            ckpt = self.checkpoints.get(uuid)
            if ckpt is None:
                path = self.checkpoint_root / uuid
                path.mkdir()
                ckpt = self.checkpoints[uuid] = {
                    "step": request["step"], "path": path, "state": "open", "ended": {},
                }
            return {"ok": True, "uuid": uuid, "path": str(ckpt["path"])}
        if op == "checkpoint_end":
            ckpt = self.checkpoints.get(request.get("uuid"))
            if ckpt is None or ckpt["state"] != "open":
                return _err(f"unknown checkpoint {request.get('uuid')!r}")
            local_rank = 0
            if self.world_size > 1:
                local_rank = request.get("rank", -1) - self.rank_offset
                if not 0 <= local_rank < self.local_world_size:
                    return _err(f"rank {request.get('rank')!r} does not run on this agent")
            ckpt["ended"][local_rank] = request.get("metadata") or {}
            if len(ckpt["ended"]) < self.local_world_size:
                return {"ok": True}
            return self._commit(request["uuid"], ckpt, ckpt["ended"][0])
        if op == "checkpoint_abort":
            ckpt = self.checkpoints.get(request.get("uuid"))
            if ckpt is None or ckpt["state"] != "open":
                return _err(f"unknown checkpoint {request.get('uuid')!r}")
            ckpt["state"] = "aborted"
            shutil.rmtree(ckpt["path"], ignore_errors=True)
            return {"ok": True}
        return _err(f"unknown op {op!r}")

    def _commit(self, uuid: str, ckpt: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
        root: Path = ckpt["path"]
        if os.path.lexists(root / "metadata.json"):
            return _err("metadata.json is reserved for Baton; pass metadata in checkpoint_end")
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            for name in sorted(dirnames + filenames):
                p = Path(dirpath) / name
                if p.is_symlink():
                    target = p.resolve()
                    if target != root.resolve() and root.resolve() not in target.parents:
                        return _err(f"{p.relative_to(root)} is a symlink that escapes the checkpoint")
            for name in sorted(filenames):
                p = Path(dirpath) / name
                data = p.read_bytes()
                rel = p.relative_to(root).as_posix()
                files.append({"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        doc = {
            "uuid": uuid,
            "experiment_id": self.experiment_id,
            "trial_id": self.trial_id,
            "step": ckpt["step"],
            "hparams": self.hparams,
            "metadata": metadata,
            "files": sorted(files, key=lambda f: f["path"]),
        }
        (root / "metadata.json").write_text(json.dumps(doc, indent=2))
        ckpt["state"] = "committed"
        ckpt["metadata"] = metadata
        return {"ok": True}


def _err(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
