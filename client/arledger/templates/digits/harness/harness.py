"""The digits task harness: scikit-learn's 8x8 digits, validation cross-entropy.

The task's side of the split (``arledger.harness``): a claim's train.py trains a
classifier on the ``train`` split; this file owns the held-out ``val`` split and the
metric. The model's outputs are 10 logits per validation image; labels never leave
this process. Rule: the 1797 images in scikit-learn's order, the last 20% held out,
each split a canonical safetensors file (``x`` uint8 [n, 64] in 0..16, ``y`` uint8 [n]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

METRIC = "val_ce"
UNITS = "nats per example"
TRAIN_SPLITS = ("train",)
CAUSAL = False
SOURCES = ("sklearn/datasets/data", "sklearn/datasets/descr", "sklearn/datasets/images")
VAL_FRACTION_DENOM = 5
PROBE_EXAMPLES = 256


def build_data() -> dict[str, bytes]:
    from safetensors.torch import save
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.uint8)
    y = torch.tensor(d.target, dtype=torch.uint8)
    cut = len(y) - len(y) // VAL_FRACTION_DENOM
    meta = {"format": "arledger-digits/1"}
    return {"train": save({"x": x[:cut].contiguous(), "y": y[:cut].contiguous()}, meta),
            "val": save({"x": x[cut:].contiguous(), "y": y[cut:].contiguous()}, meta)}


def load(paths):
    from safetensors.torch import load as _load

    out = {}
    for name, p in paths.items():
        t = _load(open(p, "rb").read())
        out[name] = ((t["x"].float() / 16.0).view(-1, 1, 8, 8), t["y"].long())
    return out


def eval_batch(data):
    return data["val"]


def output_shape(inputs):
    return (inputs.shape[0], 10)


def metrics(outputs, targets):
    return {"val_ce": F.cross_entropy(outputs, targets).item(),
            "val_accuracy": (outputs.argmax(1) == targets).float().mean().item()}


def probe_batches(data):
    (xt, yt), (xv, yv) = data["train"], data["val"]
    return {"train": (xt[:PROBE_EXAMPLES], yt[:PROBE_EXAMPLES]), "val": (xv[:PROBE_EXAMPLES], yv[:PROBE_EXAMPLES])}
