"""The charlm task harness: data, the metric (validation bits per character), the checks.

The task's side of the split (``arledger.harness`` documents the interface): a claim's
train.py trains a character model on the ``train`` split; this file owns the corpus,
the held-out ``val`` split, which 16384 characters are scored and how. The model's
outputs are logits over 128 ASCII codes for every position of 256 windows of 64
characters; targets never leave this process.

Corpus: CPython's bundled pydoc topics (``pydoc_data.topics``), joined in sorted-key
order, non-ASCII replaced by ``?``; the last 10% is validation. The source is listed
in ``SOURCES`` so that verifiers hide it from claim code (it would rebuild ``val``).

Sealed evaluation (docs/sealed-evaluation.md): ``val`` is public (CPython ships it), so a
sealed task judges claims on shards of the sponsor's private text instead, cut into
SHARD_CHARS-character pieces (the default cut: equal byte ranges). ``sample_private``
makes such text for a sponsor who has none: characters drawn from an order-ORDER
character model of the ``train`` split with the sponsor's secret as the random seed. It
has the corpus's statistics (what a model learns from ``train`` carries over) but did
not exist before the sponsor drew it, so no public byte contains it.
"""

from __future__ import annotations

import hashlib
import math
import random

import torch
import torch.nn.functional as F

METRIC = "val_bpc"
UNITS = "bits per character"
TRAIN_SPLITS = ("train",)
CAUSAL = True  # the output at position t may depend on inputs 0..t only
SOURCES = ("pydoc_data",)  # importable data the sandbox must not show to claim code

VOCAB = 128
BLOCK = 64
EVAL_CHARS = 16384  # 256 windows of 64 scored characters each
EVAL_STRIDE = 2 * BLOCK  # a window every 128 characters: 64 unseen characters between windows
PROBE_CHARS = 2048  # per split, for the verifier's suspicion probe (32 windows of 64)
VAL_FRACTION_DENOM = 10
SHARD_CHARS = 40000  # a sealed shard: the 256 scored windows (32832 chars) and the causality filler
ORDER = 5  # context length of sample_private's character model


def build_data() -> dict[str, bytes]:
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    raw = "".join(c if ord(c) < 128 else "?" for c in text).encode("ascii")
    cut = len(raw) - len(raw) // VAL_FRACTION_DENOM
    return {"train": raw[:cut], "val": raw[cut:]}


def _codes(path) -> torch.Tensor:
    raw = bytearray(open(path, "rb").read())
    return torch.frombuffer(raw, dtype=torch.uint8).to(torch.int64).clamp_(max=VOCAB - 1)


def load(paths):
    return {name: _codes(p) for name, p in paths.items()}


def _windows(seq: torch.Tensor, chars: int, stride: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """``chars // BLOCK`` windows of BLOCK inputs and their next-character targets, ``stride`` apart."""
    n = min(chars // BLOCK, (len(seq) - 1 - BLOCK) // stride + 1)
    starts = torch.arange(n) * stride
    idx = starts[:, None] + torch.arange(BLOCK)[None, :]
    return seq[idx], seq[idx + 1]


def eval_batch(data):
    # Windows EVAL_STRIDE apart, not back to back: no row's inputs hold another row's targets
    # (back to back, row r+1 starts with the target of row r's last position).
    return _windows(data["val"], EVAL_CHARS, EVAL_STRIDE)


def output_shape(inputs):
    return (*inputs.shape, VOCAB)


def metrics(outputs, targets):
    nats = 0.0
    for i in range(0, len(targets), 64):  # fixed chunks: the same sum on every machine
        nats += F.cross_entropy(outputs[i : i + 64].reshape(-1, VOCAB), targets[i : i + 64].reshape(-1),
                                reduction="sum").item()
    nats /= targets.numel()
    return {"val_bpc": nats / math.log(2), "val_loss_nats": nats}


def probe_batches(data):
    return {"train": _windows(data["train"], PROBE_CHARS), "val": _windows(data["val"], PROBE_CHARS)}


def filler(data):
    """Held-out text that ``eval_batch`` does not use: the causality check's replacement inputs."""
    return data["val"][(EVAL_CHARS // BLOCK) * EVAL_STRIDE + 1 :]


def sample_private(secret: bytes, rounds: int) -> bytes:
    """``rounds`` shards' worth of fresh text from the sponsor's ``secret`` (see the module doc).
    Each round's text comes from its own stream, seeded by sha256(secret, round): an opened shard
    tells nothing of the next one."""
    train = build_data()["train"].decode("ascii")
    follow: dict[str, list[str]] = {}
    for i in range(len(train) - ORDER):
        follow.setdefault(train[i : i + ORDER], []).append(train[i + ORDER])
    out = []
    for r in range(rounds):
        seed = hashlib.sha256(b"charlm-private/" + secret + r.to_bytes(4, "big")).digest()
        rng = random.Random(int.from_bytes(seed, "big"))  # all 256 bits seed the generator
        text, ctx = [], ""
        while len(text) < SHARD_CHARS:
            nxt = follow.get(ctx)
            if not nxt:  # a fresh start: a random place in the corpus gives the context, not the text
                start = rng.randrange(len(train) - ORDER)
                ctx = train[start : start + ORDER]
                continue
            c = rng.choice(nxt)
            text.append(c)
            ctx = ctx[1:] + c
        out.append("".join(text))
    return "".join(out).encode("ascii")
