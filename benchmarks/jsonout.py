"""JSON output shared by the benchmark scripts."""

from __future__ import annotations

import math

import numpy as np


def clean_json(value: object) -> object:
    """JSON-ready copy (NaN -> None, numpy scalars -> Python, tuples -> lists, keys -> str)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
