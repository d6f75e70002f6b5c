"""A data-parallel PyTorch trial: one rank per slot, on one agent or several, with
torch.distributed (gloo on CPU, NCCL on GPUs) and DistributedDataParallel, checkpointed by every
rank into one Baton checkpoint and resumed exactly wherever the ranks run next.

Each rank trains on its own shard of every step's batch, drawn from (seed, step, rank), so the run
does not depend on where or how often it was moved. Rank 0 saves the model, the optimizer and the
LR schedule (`state_dict.pth`, plain `torch.load` reads it); every rank also writes
`rank-N/progress.json` with the loss it saw. A resumed trial loads `state_dict.pth` on every rank.

Hyperparameters (all optional): learning_rate (0.05), batch_size (32, per rank), seed (7),
lr_step (40), lr_gamma (0.8), step_seconds (0.0) to slow it down.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
import torch.distributed as dist

import baton
import baton.torch
from model import FEATURES, make_model, probe_input, targets


def device(local_rank: int) -> torch.device:
    """This rank's GPU when the allocation has GPUs, CPU otherwise."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def main() -> int:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    with baton.init() as ctx:
        hp = ctx.hparams
        seed, batch_size = int(hp.get("seed", 7)), int(hp.get("batch_size", 32))
        step_seconds = float(hp.get("step_seconds", 0.0))
        dev = device(ctx.local_rank)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=ctx.rank, world_size=ctx.world_size)
        torch.manual_seed(seed)
        model = make_model().to(dev)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(model.parameters(), lr=float(hp.get("learning_rate", 0.05)), momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(
            opt, step_size=int(hp.get("lr_step", 40)), gamma=float(hp.get("lr_gamma", 0.8))
        )
        if ctx.latest_checkpoint is not None:
            restored = baton.torch.load(
                ctx.latest_checkpoint, models=model, optimizers=opt, lr_schedulers=sched,
                map_location=dev,
            )
            if restored["steps_completed"] != ctx.start_step:
                print(f"checkpoint holds step {restored['steps_completed']}, Baton says {ctx.start_step}",
                      file=sys.stderr)
                return 1
            print(f"rank {ctx.rank}/{ctx.world_size} resuming from step {ctx.start_step}", flush=True)
        else:
            print(f"rank {ctx.rank}/{ctx.world_size} starting fresh", flush=True)
        for step in range(ctx.start_step + 1, ctx.max_length + 1):
            shard = torch.Generator().manual_seed(seed * 1_000_003 + step * 1_009 + ctx.rank)
            x = torch.randn(batch_size, FEATURES, generator=shard).to(dev)
            loss = torch.nn.functional.mse_loss(ddp(x), targets(x))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step_seconds > 0:
                time.sleep(step_seconds)
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            mean_loss = float(mean_loss) / ctx.world_size
            d = ctx.report_training(step, {"loss": mean_loss})
            if d.validate:
                probe = probe_input().to(dev)
                ctx.report_validation(step, {"validation_loss": float(
                    torch.nn.functional.mse_loss(model(probe), targets(probe)))})
            if d.checkpoint:
                with ctx.checkpoint(step, metadata=baton.torch.metadata()) as path:
                    if ctx.is_chief:
                        baton.torch.save(path, models=model, optimizers=opt, lr_schedulers=sched,
                                         steps_completed=step)
                    mine = path / f"rank-{ctx.rank}"
                    mine.mkdir()
                    (mine / "progress.json").write_text(json.dumps({"step": step, "loss": mean_loss}))
            if d.stop:
                print(f"rank {ctx.rank} stopping at step {step}", flush=True)
                break
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
