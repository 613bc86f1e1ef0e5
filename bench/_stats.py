"""Percentiles and a one-line summary for benchmark samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of the samples."""
    if not samples:
        return math.nan
    s = sorted(samples)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summary(samples: Sequence[float], scale: float = 1000.0, unit: str = "ms") -> str:
    return " ".join(f"p{p}={percentile(samples, p) * scale:.2f}{unit}" for p in (50, 95, 99)) + f" (n={len(samples)})"
