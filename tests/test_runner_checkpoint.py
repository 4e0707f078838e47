"""Checkpoints: canonical bytes, readable by safetensors, exact restore."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load as st_load

from arledger import checkpoint
from arledger.checkpoint import CheckpointError


def _model_opt(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 2))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def _train(model, opt, n: int, start: int = 0):
    model.train()
    for step in range(start, start + n):
        torch.manual_seed(1000 + step)
        g = torch.Generator().manual_seed(step)
        x, y = torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_bytes_are_canonical_and_readable_by_safetensors():
    m, o = _model_opt()
    _train(m, o, 3)
    a, b = checkpoint.capture(m, o, 3), checkpoint.capture(m, o, 3)
    assert a == b
    tensors = st_load(a)
    assert "model.0.weight" in tensors and "optim.state.000000.exp_avg" in tensors
    assert int(tensors["runner.step"]) == 3 and tensors["rng.torch_cpu"].dtype == torch.uint8
    names = list(checkpoint.deserialize(a)[0])
    assert names == sorted(names)  # data laid out in name order
    assert int.from_bytes(a[:8], "little") % 8 == 0  # header padded to 8 bytes


def test_restore_then_continue_equals_uninterrupted_training():
    m, o = _model_opt()
    _train(m, o, 5)
    mid = checkpoint.capture(m, o, 5)
    _train(m, o, 5, start=5)
    straight = checkpoint.capture(m, o, 10)

    m2, o2 = _model_opt(seed=123)  # different init: everything must come from the checkpoint
    assert checkpoint.restore(mid, m2, o2) == 5
    assert checkpoint.capture(m2, o2, 5) == mid
    _train(m2, o2, 5, start=5)
    assert checkpoint.state_hash(checkpoint.capture(m2, o2, 10)) == checkpoint.state_hash(straight)


def test_restore_rejects_a_checkpoint_for_another_model():
    m, o = _model_opt()
    data = checkpoint.capture(m, o, 0)
    other = torch.nn.Linear(3, 3)
    with pytest.raises(CheckpointError, match="ckpt_x: model tensors do not fit"):
        checkpoint.restore(data, other, torch.optim.AdamW(other.parameters()), "ckpt_x")


def test_garbage_is_a_clear_error():
    with pytest.raises(CheckpointError, match="bad.safetensors: not a valid safetensors file"):
        checkpoint.deserialize(b"\xff" * 64, "bad.safetensors")


def test_atomic_write_leaves_no_temp_file(tmp_path):
    p = tmp_path / "x.bin"
    checkpoint.atomic_write(p, b"abc")
    assert p.read_bytes() == b"abc" and [f.name for f in tmp_path.iterdir()] == ["x.bin"]
