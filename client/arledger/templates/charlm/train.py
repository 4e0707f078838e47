"""Tiny character-level transformer LM (nanoGPT-like): the charlm template's train.py.

Follows the arledger experiment interface (docs/experiment-interface.md): the runner
owns the loop, the RNGs and the checkpoints; this file says what one step is.
Metric: ``val_bpc``, validation loss in bits per character (lower is better).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 128  # ASCII


class Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = self.drop(att.masked_fill(~mask, float("-inf")).softmax(dim=-1))
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class CharLM(nn.Module):
    def __init__(self, block: int, d: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(block, d)
        self.blocks = nn.Sequential(*[Block(d, heads, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t))
        return self.head(self.ln(self.blocks(x)))


class Data:
    def __init__(self, train: torch.Tensor, val: torch.Tensor, config: dict):
        self.train, self.val, self.config = train, val, config


def _codes(path) -> torch.Tensor:
    raw = bytearray(open(path, "rb").read())
    return torch.frombuffer(raw, dtype=torch.uint8).to(torch.int64).clamp_(max=VOCAB - 1)


def load_data(paths, config):
    return Data(_codes(paths["train"]), _codes(paths["val"]), config)


def build(config, data):
    model = CharLM(config["block"], config["d_model"], config["layers"], config["heads"], config["dropout"])
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    return model, opt


def batch(data, rng, step):
    c = data.config
    starts = torch.randint(0, len(data.train) - c["block"] - 1, (c["batch"],), generator=rng)
    x = torch.stack([data.train[s : s + c["block"]] for s in starts.tolist()])
    y = torch.stack([data.train[s + 1 : s + 1 + c["block"]] for s in starts.tolist()])
    return x, y


def train_step(model, opt, batch):
    x, y = batch
    loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def evaluate(model, data):
    """Mean cross-entropy over the first ``eval_chars`` of val, in non-overlapping windows."""
    c = data.config
    block, n = c["block"], min(c["eval_chars"], len(data.val) - 1)
    windows = n // block
    x = data.val[: windows * block].view(windows, block)
    y = data.val[1 : windows * block + 1].view(windows, block)
    nats = 0.0
    for i in range(0, windows, 64):
        logits = model(x[i : i + 64])
        nats += F.cross_entropy(logits.reshape(-1, VOCAB), y[i : i + 64].reshape(-1), reduction="sum").item()
    nats /= windows * block
    params = sum(p.numel() for p in model.parameters())
    return {"val_bpc": nats / math.log(2), "val_loss_nats": nats, "params": float(params)}


PROBE_CHARS = 2048  # per split: ~20 ms of forward passes per checkpoint (4096: 70 ms)


def _bits_per_char(model, seq: torch.Tensor, chars: int, block: int) -> float:
    windows = min(chars, len(seq) - 1) // block
    x = seq[: windows * block].view(windows, block)
    y = seq[1 : windows * block + 1].view(windows, block)
    return F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1)).item() / math.log(2)


def probe(model, data):
    """Optional interface function: loss (bits/char) on FIXED slices of train and val.

    Verifiers call it on every boundary checkpoint: a segment trained on validation
    data lowers ``val`` far more than ``train`` (arverifier.sampling, probe picks).
    """
    block = data.config["block"]
    return {"train": _bits_per_char(model, data.train, PROBE_CHARS, block),
            "val": _bits_per_char(model, data.val, PROBE_CHARS, block)}
