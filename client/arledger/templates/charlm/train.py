"""Tiny character-level transformer LM (nanoGPT-like): the charlm template's train.py.

The claim's side of the split (docs/experiment-interface.md): the model, the
optimizer, one training step and how batches are drawn from the training split.
The runner owns the loop, the RNGs and the checkpoints; the task's harness
(``harness/harness.py``) owns the held-out split and the metric (``val_bpc``): it
feeds the model windows of 64 characters and scores the logits it gets back.
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
    def __init__(self, train: torch.Tensor, config: dict):
        self.train, self.config = train, config


def _codes(path) -> torch.Tensor:
    raw = bytearray(open(path, "rb").read())
    return torch.frombuffer(raw, dtype=torch.uint8).to(torch.int64).clamp_(max=VOCAB - 1)


def load_data(paths, config):
    return Data(_codes(paths["train"]), config)  # the training split is all claim code ever gets


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
