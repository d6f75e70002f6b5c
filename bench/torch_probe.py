"""The trial of bench/torch_checkpoint.py: a PyTorch state of `size_mib`, checkpointed with
baton.torch and restored, each timed next to plain torch.save + cp and torch.load.

Appends JSON events to the file named by the `events` hyperparameter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def committed_count(events: str) -> int:
    """Checkpoints timed so far in this run."""
    if not os.path.exists(events):
        return 0
    with open(events) as f:
        return sum(json.loads(line)["event"] == "committed" for line in f)


def peer_file(scratch: Path, step: int) -> Path:
    """The peer's local checkpoint file of `step`."""
    return scratch / f"peer-{step}.pth"


def peer_save_and_copy(model: torch.nn.Module, scratch: Path, step: int) -> float:
    """torch.save to a new local file, then cp of it to another directory; seconds.

    A new file per checkpoint, as Baton writes: overwriting one file reuses its page cache and
    is more than twice as fast here, which no real run of checkpoints gets.
    """
    started = time.perf_counter()
    local = peer_file(scratch, step)
    torch.save({"models": {"default": model.state_dict()}}, local)
    copy_dir = scratch / "copied"
    copy_dir.mkdir(exist_ok=True)
    subprocess.run(["cp", str(local), str(copy_dir / local.name)], check=True)
    return time.perf_counter() - started


def main() -> int:
    with baton.init() as ctx:
        events, size_mib = ctx.hparams["events"], int(ctx.hparams["size_mib"])
        scratch = Path(ctx.hparams["scratch"])
        scratch.mkdir(parents=True, exist_ok=True)
        model = make_state(size_mib)
        if ctx.latest_checkpoint is not None:
            # Alternated, best of three each: the first large allocation of a process costs page
            # faults that neither side should carry alone.
            load_s, peer_load_s, mapped_s = [], [], []
            for _ in range(3):
                started = time.perf_counter()
                baton.torch.load(ctx.latest_checkpoint, models=model)
                load_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                peer = torch.load(peer_file(scratch, ctx.start_step))
                peer_load_s.append(time.perf_counter() - started)
                del peer
                # For reference: what baton.torch.load does inside, by hand on the local file.
                started = time.perf_counter()
                peer = torch.load(peer_file(scratch, ctx.start_step), mmap=True)
                model.load_state_dict(peer["models"]["default"])
                mapped_s.append(time.perf_counter() - started)
                del peer
            emit(events, event="restored", load_s=min(load_s), peer_load_s=min(peer_load_s),
                 mapped_load_s=min(mapped_s))
        step = ctx.start_step
        while True:
            step += 1
            time.sleep(0.05)
            d = ctx.report_training(step, {"loss": 1.0 / step})
            if not (d.checkpoint and d.stop):
                continue
            # Whoever writes second pays for the first one's dirty pages: alternate the order.
            peer_first = committed_count(events) % 2 == 0
            if peer_first:
                peer_s = peer_save_and_copy(model, scratch, step)
            started = time.perf_counter()
            with ctx.checkpoint(step, metadata=baton.torch.metadata()) as path:
                baton.torch.save(path, models=model, steps_completed=step)
            wait_committed(path)
            save_s = time.perf_counter() - started
            if not peer_first:
                peer_s = peer_save_and_copy(model, scratch, step)
            emit(events, event="committed", save_commit_s=save_s, peer_save_cp_s=peer_s,
                 peer_first=peer_first, bytes=sum(p.numel() * 4 for p in model.parameters()))
            return 0


if __name__ == "__main__":
    sys.exit(main())
