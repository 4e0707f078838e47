"""Losses in micro-units: the one fixed-point convention of the chain, the manifest and the TaskSpec.

A loss is stored on chain, in the manifest and in the TaskSpec as ``round(loss * 1e6)``;
these are the only conversions, so no module writes the scale again.
"""

from __future__ import annotations

MICRO = 1_000_000


def to_micro(x: float) -> int:
    """Fixed-point micro-units, as on chain: round(x * 1e6)."""
    return int(round(float(x) * MICRO))


def from_micro(micro: int) -> float:
    """The loss a micro-unit integer stands for."""
    return int(micro) / MICRO


def fmt(micro: int | None, digits: int = 6) -> str:
    """A micro-unit loss as a human reads it ("-" for none)."""
    return "-" if micro is None else f"{from_micro(micro):.{digits}f}"
