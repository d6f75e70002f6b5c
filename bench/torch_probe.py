"""The trial of bench/torch_checkpoint.py: a PyTorch state of `size_mib`, checkpointed with
baton.torch and restored, each timed next to plain torch.save + cp and torch.load.

Appends JSON events to the file named by the `events` hyperparameter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import baton
import baton.torch


def emit(path: str, **event) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(event) + "\n")


def make_state(size_mib: int) -> torch.nn.Module:
    """A module of float32 parameters totalling size_mib MiB, in 64 MiB tensors."""
    pieces, per_piece = max(1, size_mib // 64), 64 * 1024 * 1024 // 4
    generator = torch.Generator().manual_seed(0)
    return torch.nn.ParameterList(
        torch.nn.Parameter(torch.rand(per_piece, generator=generator)) for _ in range(pieces)
    )


def wait_committed(directory: Path) -> None:
    while not (directory / "metadata.json").exists():
        time.sleep(0.002)


def peer_save_and_copy(model: torch.nn.Module, scratch: Path) -> tuple[float, Path]:
    """torch.save to a local file, then cp of it to the storage directory; seconds and the file."""
    started = time.perf_counter()
    local = scratch / "peer.pth"
    torch.save({"models": {"default": model.state_dict()}}, local)
    copy_dir = scratch / "copied"
    copy_dir.mkdir(exist_ok=True)
    subprocess.run(["cp", str(local), str(copy_dir / "peer.pth")], check=True)
    return time.perf_counter() - started, local


def main() -> int:
    with baton.init() as ctx:
        events, size_mib = ctx.hparams["events"], int(ctx.hparams["size_mib"])
        scratch = Path(ctx.hparams["scratch"])
        scratch.mkdir(parents=True, exist_ok=True)
        model = make_state(size_mib)
        if ctx.latest_checkpoint is not None:
            # Alternated, best of three each: the first large allocation of a process costs page
            # faults that neither side should carry alone.
            load_s, peer_load_s = [], []
            for _ in range(3):
                started = time.perf_counter()
                baton.torch.load(ctx.latest_checkpoint, models=model)
                load_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                peer = torch.load(scratch / "peer.pth")
                peer_load_s.append(time.perf_counter() - started)
                del peer
            emit(events, event="restored", load_s=min(load_s), peer_load_s=min(peer_load_s))
        step = ctx.start_step
        while True:
            step += 1
            time.sleep(0.05)
            d = ctx.report_training(step, {"loss": 1.0 / step})
            if not (d.checkpoint and d.stop):
                continue
            peer_s, _ = peer_save_and_copy(model, scratch)
            started = time.perf_counter()
            with ctx.checkpoint(step, metadata=baton.torch.metadata()) as path:
                baton.torch.save(path, models=model, steps_completed=step)
            wait_committed(path)
            emit(events, event="committed", save_commit_s=time.perf_counter() - started,
                 peer_save_cp_s=peer_s, bytes=sum(p.numel() * 4 for p in model.parameters()))
            return 0


if __name__ == "__main__":
    sys.exit(main())
