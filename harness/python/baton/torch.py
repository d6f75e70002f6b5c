"""PyTorch checkpoints: one `state_dict.pth` that plain `torch.load` reads, and exact resume.

    import baton, baton.torch

    with baton.init() as ctx:
        if ctx.latest_checkpoint:
            baton.torch.load(ctx.latest_checkpoint, models=model, optimizers=opt, lr_schedulers=sched)
        ...
        if d.checkpoint:
            with ctx.checkpoint(step, metadata=baton.torch.metadata()) as path:
                baton.torch.save(path, models=model, optimizers=opt, lr_schedulers=sched, steps_completed=step)

`state_dict.pth` is a dict of plain types and tensors (it loads with `torch.load(path)`, whose
default `weights_only=True` accepts it):

    format            "baton.torch/1"
    steps_completed   int
    models            {name: model.state_dict()}          (no DDP/DataParallel "module." prefix)
    optimizers        {name: optimizer.state_dict()}
    lr_schedulers     {name: scheduler.state_dict()}
    scaler            AMP GradScaler.state_dict() or None
    rng               {"python": random.getstate(), "numpy": {...} or None,
                       "torch": CPU generator state (uint8 tensor), "cuda": [state per device]}
    extra             whatever the trial passed (plain types and tensors)

Objects may be given alone or as a dict of name to object; one object is stored under "default".
"""

from __future__ import annotations

import platform
import random
import sys
from pathlib import Path
from typing import Any, Mapping

import torch

FORMAT = "baton.torch/1"
STATE_FILE = "state_dict.pth"
_DEFAULT = "default"
_PREFIX = "module."


def metadata() -> dict[str, str]:
    """Checkpoint metadata naming the framework, format and versions (for `ctx.checkpoint`)."""
    return {
        "framework": "torch",
        "format": FORMAT,
        "file": STATE_FILE,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }


def save(
    path: str | Path,
    *,
    models: Any = None,
    optimizers: Any = None,
    lr_schedulers: Any = None,
    scaler: Any = None,
    extra: Any = None,
    steps_completed: int,
) -> Path:
    """Write `state_dict.pth` into the checkpoint directory `path`; return the file's path."""
    state = {
        "format": FORMAT,
        "steps_completed": int(steps_completed),
        "models": {name: _unwrapped_state(m) for name, m in _named(models).items()},
        "optimizers": {name: o.state_dict() for name, o in _named(optimizers).items()},
        "lr_schedulers": {name: s.state_dict() for name, s in _named(lr_schedulers).items()},
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": _rng_state(),
        "extra": extra,
    }
    target = Path(path) / STATE_FILE
    torch.save(state, target)
    return target


def load(
    path: str | Path,
    *,
    models: Any = None,
    optimizers: Any = None,
    lr_schedulers: Any = None,
    scaler: Any = None,
    map_location: Any = "cpu",
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore what `save` wrote in the checkpoint directory `path` into the given objects.

    Tensors are first mapped with `map_location` ("cpu" by default, so a checkpoint from a GPU
    host loads anywhere; `load_state_dict` then copies them to each model's own device). The file
    is memory-mapped (`torch.load(..., mmap=True)`): parameters are copied once, from the page
    cache into the model, instead of into fresh tensors first; tensors kept as they are (optimizer
    state on the same device and dtype) stay backed by the file, copy-on-write, so the file must
    not be truncated while the trial runs (Baton never does). Returns
    {"steps_completed": int, "extra": ...}. Raises ValueError naming what is missing.
    """
    file = Path(path) / STATE_FILE
    state = torch.load(file, map_location=map_location, weights_only=True, mmap=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{file} is not a {FORMAT} checkpoint")
    for kind, given in (("models", models), ("optimizers", optimizers), ("lr_schedulers", lr_schedulers)):
        stored = state.get(kind) or {}
        for name, target in _named(given).items():
            if name not in stored:
                raise ValueError(f"{file} holds no {kind} entry {name!r} (it has {sorted(stored)})")
            if kind == "models":
                _unwrapped(target).load_state_dict(_without_prefix(stored[name]))
            else:
                target.load_state_dict(stored[name])
    if scaler is not None:
        if state.get("scaler") is None:
            raise ValueError(f"{file} holds no AMP scaler state")
        scaler.load_state_dict(state["scaler"])
    if restore_rng:
        _set_rng_state(state["rng"])
    return {"steps_completed": int(state["steps_completed"]), "extra": state.get("extra")}


def _named(objects: Any) -> dict[str, Any]:
    """A dict of name to object from None, one object, or a mapping."""
    if objects is None:
        return {}
    if isinstance(objects, Mapping):
        return dict(objects)
    return {_DEFAULT: objects}


def _unwrapped(model: Any) -> Any:
    """The module inside DistributedDataParallel or DataParallel, or the model itself."""
    wrapped = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return model.module if isinstance(model, wrapped) else model


def _unwrapped_state(model: Any) -> dict[str, Any]:
    """The model's state dict, without any "module." prefix."""
    return _without_prefix(_unwrapped(model).state_dict())


def _without_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """A state dict whose keys all start with "module." (saved from a wrapper) without it."""
    if state and all(key.startswith(_PREFIX) for key in state):
        return {key[len(_PREFIX):]: value for key, value in state.items()}
    return dict(state)


def _rng_state() -> dict[str, Any]:
    """Python's, NumPy's (when imported), torch's CPU and every CUDA device's RNG state."""
    numpy_state = None
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        kind, keys, pos, has_gauss, cached = numpy.random.get_state()
        numpy_state = {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype("int64")),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }


def _set_rng_state(rng: Mapping[str, Any]) -> None:
    """Restore what `_rng_state` captured (CUDA states only onto as many devices as there are)."""
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = sys.modules.get("numpy")
    stored = rng.get("numpy")
    if numpy is not None and stored is not None:
        numpy.random.set_state(
            (
                stored["kind"],
                stored["keys"].numpy().astype("uint32"),
                stored["pos"],
                stored["has_gauss"],
                stored["cached_gaussian"],
            )
        )
    torch.set_rng_state(rng["torch"].cpu())
    cuda = rng.get("cuda") or []
    if cuda and torch.cuda.is_available():
        count = min(len(cuda), torch.cuda.device_count())
        for device in range(count):
            torch.cuda.set_rng_state(cuda[device].cpu(), device)
