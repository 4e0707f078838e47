"""The digits task harness: scikit-learn's 8x8 digits, validation cross-entropy.

The task's side of the split (``arledger.harness``): a claim's train.py trains a
classifier on the ``train`` split; this file owns the held-out ``val`` split and the
metric. The model's outputs are 10 logits per validation image; labels never leave
this process. Rule: the 1797 images in scikit-learn's order, the last 20% held out,
each split a canonical safetensors file (``x`` uint8 [n, 64] in 0..16, ``y`` uint8 [n]).

Sealed evaluation (docs/sealed-evaluation.md): ``val`` ships with scikit-learn, so a sealed
task judges claims on shards of the sponsor's private images instead, in the same format
(``cut_shards`` splits one such file into rounds). ``sample_private`` makes such images for
a sponsor who has none: ``train`` images, a quarter of them moved by one pixel, their
strokes scaled by 0.85 to 1.15 and noised by one level, with the sponsor's secret as the random seed: labelled digits with the task's
statistics that no public file contains (a memorised ``val`` label matches none of them).
"""

from __future__ import annotations

import hashlib
import random

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


def _split_file(x, y) -> bytes:
    from safetensors.torch import save

    return save({"x": x.contiguous(), "y": y.contiguous()}, {"format": "arledger-digits/1"})


def cut_shards(raw: bytes, rounds: int) -> list[bytes]:
    """One file of the held-out format per round, the examples in equal consecutive parts."""
    from safetensors.torch import load as _load

    t = _load(raw)
    n = len(t["y"]) // rounds
    return [_split_file(t["x"][i * n : (i + 1) * n], t["y"][i * n : (i + 1) * n]) for i in range(rounds)]


def sample_private(secret: bytes, rounds: int) -> bytes:
    """Fresh labelled images from the sponsor's ``secret``: train images, some shifted, all scaled
    and noised; 360 per round, each round from its own stream seeded by sha256(secret, round), all
    256 bits of it (an opened shard tells nothing of the next one; see the module doc)."""
    from safetensors.torch import load as _load

    t = _load(build_data()["train"])
    xs, ys = [], []
    for r in range(rounds):
        rng = random.Random(int.from_bytes(hashlib.sha256(b"digits-private/" + secret + r.to_bytes(4, "big")).digest(),
                                           "big"))
        for _ in range(360):
            k = rng.randrange(len(t["y"]))
            img = t["x"][k].view(8, 8).float()
            if rng.randrange(4) == 0:  # a quarter move by one pixel
                img = torch.roll(img, (rng.randint(-1, 1), rng.randint(-1, 1)), (0, 1))
            noise = torch.tensor([rng.randint(-1, 1) for _ in range(64)], dtype=torch.float32).view(8, 8)
            xs.append((img * (0.85 + 0.3 * rng.random()) + noise).clamp(0, 16).round().to(torch.uint8).view(64))
            ys.append(int(t["y"][k]))
    return _split_file(torch.stack(xs), torch.tensor(ys, dtype=torch.uint8))
