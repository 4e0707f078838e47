"""Experiment templates shipped with arledger (each: train.py, experiment.json, harness/harness.py).

``template_dir(name)`` returns the directory to pass to ``artrain run``.
"""

from __future__ import annotations

from pathlib import Path

NAMES = ("charlm", "digits")


def template_dir(name: str) -> Path:
    return Path(__file__).parent / name
