"""Python's and NumPy's RNG states as JSON, for checkpoints of the framework modules."""

from __future__ import annotations

import random
from typing import Any

import numpy


def json_state() -> dict[str, Any]:
    """The Python and NumPy global RNG states, as JSON-serializable lists."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = numpy.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [str(kind), keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def restore_json_state(state: dict[str, Any]) -> None:
    """Restore what `json_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    numpy.random.set_state((kind, numpy.array(keys, dtype=numpy.uint32), pos, has_gauss, cached))
