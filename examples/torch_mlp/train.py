"""A PyTorch MLP trained as a Baton trial, checkpointed with baton.torch and resumed exactly.

Deterministic: the data comes from a fixed seed, each epoch's order from (seed, epoch), and a
resumed trial skips the batches its epoch already used; the checkpoint holds the model, Adam's
state, the LR scheduler and every RNG (dropout draws from torch's), so a trial moved any number of
times ends with bitwise the same weights as an uninterrupted one on the same kind of device.

Hyperparameters (all optional): learning_rate (0.01), batch_size (32), seed (7), dropout (0.1),
lr_step (50) and lr_gamma (0.7) for the StepLR schedule, step_seconds (0.0) to slow it down.
"""

from __future__ import annotations

import itertools
import os
import sys
import time

import torch

import baton
import baton.torch
from model import make_data, make_model, probe_input


def device() -> torch.device:
    """CUDA when the allocation has a GPU, CPU otherwise."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def batches(train, batch_size: int, seed: int, start_step: int):
    """Batches from step start_step + 1 on: epoch e shuffled by (seed, e), used batches skipped."""
    per_epoch = len(train) // batch_size
    epoch, done_in_epoch = divmod(start_step, per_epoch)
    for epoch in itertools.count(epoch):
        order = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        loader = torch.utils.data.DataLoader(
            train, batch_size=batch_size, shuffle=True, generator=order, drop_last=True
        )
        yield from itertools.islice(loader, done_in_epoch, None)
        done_in_epoch = 0


def main() -> int:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    with baton.init() as ctx:
        hp = ctx.hparams
        lr = float(hp.get("learning_rate", 0.01))
        batch_size = int(hp.get("batch_size", 32))
        seed = int(hp.get("seed", 7))
        step_seconds = float(hp.get("step_seconds", 0.0))
        on = device()
        torch.manual_seed(seed)
        model = make_model(float(hp.get("dropout", 0.1))).to(on)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=int(hp.get("lr_step", 50)), gamma=float(hp.get("lr_gamma", 0.7))
        )
        train, validation = make_data()
        if ctx.latest_checkpoint is not None:
            started = time.perf_counter()
            restored = baton.torch.load(
                ctx.latest_checkpoint, models=model, optimizers=optimizer, lr_schedulers=scheduler
            )
            print(f"loaded checkpoint in {time.perf_counter() - started:.3f} s", flush=True)
            if restored["steps_completed"] != ctx.start_step:
                print(f"checkpoint holds step {restored['steps_completed']}, Baton says {ctx.start_step}", file=sys.stderr)
                return 1
            print(f"resuming from step {ctx.start_step} on {on}", flush=True)
        else:
            print(f"starting fresh on {on} (trial {ctx.trial_id})", flush=True)

        data = batches(train, batch_size, seed, ctx.start_step)
        for step in range(ctx.start_step + 1, ctx.max_length + 1):
            x, y = next(data)
            model.train()
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x.to(on)), y.to(on))
            loss.backward()
            optimizer.step()
            scheduler.step()
            if step_seconds > 0:
                time.sleep(step_seconds)
            d = ctx.report_training(step, {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]})
            if d.validate:
                model.eval()
                with torch.no_grad():
                    vx, vy = validation.tensors
                    val = torch.nn.functional.mse_loss(model(vx.to(on)), vy.to(on)).item()
                ctx.report_validation(step, {"validation_loss": val})
            if d.checkpoint:
                model.eval()
                with torch.no_grad():
                    probe = model(probe_input().to(on)).item()
                meta = {**baton.torch.metadata(), "device": on.type, "probe_prediction": probe}
                started = time.perf_counter()
                with ctx.checkpoint(step, metadata=meta) as path:
                    baton.torch.save(
                        path,
                        models=model,
                        optimizers=optimizer,
                        lr_schedulers=scheduler,
                        steps_completed=step,
                        extra={"hparams": hp},
                    )
                print(f"saved checkpoint at step {step} in {time.perf_counter() - started:.3f} s", flush=True)
            if d.stop:
                print(f"stopping at step {step}", flush=True)
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
