"""The digits dataset, built deterministically from scikit-learn's bundled copy.

Rule: the 1797 images in scikit-learn's order; the last 20% is validation. Each split
is one canonical safetensors file (``x``: uint8 [n, 64], values 0..16; ``y``: uint8
[n]) written by arledger.checkpoint.serialize, so the bytes (and the CID) are
reproducible.

    python -m arledger.templates.digits.data OUT_DIR   # writes train.safetensors, val.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

VAL_FRACTION_DENOM = 5  # last 1/5 is validation


def build() -> dict[str, bytes]:
    from sklearn.datasets import load_digits

    from arledger.checkpoint import serialize

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.uint8)
    y = torch.tensor(d.target, dtype=torch.uint8)
    cut = len(y) - len(y) // VAL_FRACTION_DENOM
    return {
        "train": serialize({"x": x[:cut], "y": y[:cut]}, {"format": "arledger-digits/1"}),
        "val": serialize({"x": x[cut:], "y": y[cut:]}, {"format": "arledger-digits/1"}),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ".")
    out.mkdir(parents=True, exist_ok=True)
    for name, blob in build().items():
        (out / f"{name}.safetensors").write_bytes(blob)
        print(f"{out / f'{name}.safetensors'}: {len(blob)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
