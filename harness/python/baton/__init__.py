"""Baton trial harness: the library a training script uses to talk to the agent that runs it.

    import baton

    with baton.init() as ctx:
        state = restore(ctx.latest_checkpoint) if ctx.latest_checkpoint else fresh_state()
        for step in range(ctx.start_step + 1, ctx.max_length + 1):
            loss = train_one_step(state)
            d = ctx.report_training(step, {"loss": loss})
            if d.validate:
                ctx.report_validation(step, {"validation_loss": evaluate(state)})
            if d.checkpoint:
                with ctx.checkpoint(step, metadata={"framework": "torch"}) as path:
                    save_into(state, path)
            if d.stop:
                break

A distributed trial runs this same script as several ranks (processes, on one or more agents):
every rank makes the same calls with the same steps and gets the same directives; only rank 0's
metrics are reported, every rank writes its own files into the checkpoint (`ctx.rank`,
`ctx.world_size`, `ctx.local_rank`, `ctx.is_chief`).

Standard library only. The wire protocol is documented in harness/PROTOCOL.md. Framework
modules, each importing its framework only when imported itself: `baton.torch` (save/load of one
state_dict.pth), `baton.keras` (fit with checkpoints, exact resume) and `baton.tensorflow`
(SavedModel checkpoints with the optimizer's state).
"""

from baton._client import HarnessError
from baton._context import Context, Directive, init

__all__ = ["Context", "Directive", "HarnessError", "init"]
