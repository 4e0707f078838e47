"""Small convolutional classifier on scikit-learn's 8x8 digits: the digits template's train.py.

The claim's side of the split (docs/experiment-interface.md): model, optimizer, one
step, batches from the training split. The task's harness (``harness/harness.py``)
holds the validation split and scores the 10 logits per image the model returns
(``val_ce``, cross-entropy in nats; also accuracy).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors.torch import load as _load_safetensors


class Net(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.c1 = nn.Conv2d(1, width, 3, padding=1)
        self.c2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * width * 16, 10)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c1(x))
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(self.drop(x.flatten(1)))

    def flops(self) -> int:
        """Multiply-adds x2 for one 8x8 image, forward pass (convs and the linear layer)."""
        w = self.width
        return 2 * (64 * w * 9 * 1 + 64 * 2 * w * 9 * w + 2 * w * 16 * 10)


class Data:
    def __init__(self, paths, config):
        self.config = config
        tr = _load_safetensors(open(paths["train"], "rb").read())  # the only split claim code gets
        self.x_train = (tr["x"].float() / 16.0).view(-1, 1, 8, 8)
        self.y_train = tr["y"].long()


def load_data(paths, config):
    return Data(paths, config)


def build(config, data):
    model = Net(config["width"], config["dropout"])
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    return model, opt


def batch(data, rng, step):
    idx = torch.randint(0, len(data.y_train), (data.config["batch"],), generator=rng)
    return data.x_train[idx], data.y_train[idx]


def train_step(model, opt, batch):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()
