"""The harness's own checks, without a sandbox: which characters are scored, and what the
causality check's perturbation compares."""

from __future__ import annotations

import pytest
import torch

from arledger.errors import HarnessError
from arledger.harness import load_harness
from arledger.scoring import causality, perturb, validate
from arledger.templates import template_dir


def _charlm(tmp_path):
    h = load_harness(template_dir("charlm") / "harness")
    paths = {}
    for name, blob in h.build_data().items():
        (tmp_path / name).write_bytes(blob)
        paths[name] = tmp_path / name
    return h, h.module.load(paths)


def test_no_eval_row_holds_another_rows_targets(tmp_path):
    """Back-to-back windows would put row r's last target at row r+1's first input."""
    h, data = _charlm(tmp_path)
    x, y = h.module.eval_batch(data)
    assert x.shape == (256, 64) and torch.equal(x[:, 1:], y[:, :-1])
    block, stride = h.module.BLOCK, h.module.EVAL_STRIDE
    inputs = {r * stride + t for r in range(len(x)) for t in range(block)}
    targets = {r * stride + t + 1 for r in range(len(x)) for t in range(block)}
    leaked = {i for i in targets - {r * stride + t for r in range(len(x)) for t in range(1, block)}}
    assert not (leaked & inputs), "a target that is not its own row's next input is some row's input"
    filler_start = (len(x)) * stride + 1
    assert max(targets) < filler_start, "the causality check's filler is not scored text"


def test_perturbation_is_seeded_and_covers_whole_rows(tmp_path):
    h, data = _charlm(tmp_path)
    x, _ = h.module.eval_batch(data)
    fill = h.module.filler(data)
    xp, cuts = perturb(x, fill, seed=1)
    xq, cuts_again = perturb(x, fill, seed=1)
    assert torch.equal(xp, xq) and cuts == cuts_again
    assert perturb(x, fill, seed=2)[1] != cuts
    whole = [r for r, c in cuts if c == x.shape[1] - 1]
    assert whole and all(torch.equal(xp[r], x[r]) for r in whole)
    for r, c in cuts:
        assert torch.equal(xp[r, : c + 1], x[r, : c + 1])
        if c < x.shape[1] - 1:
            assert not torch.equal(xp[r, c + 1], x[r, c + 1])


def _logits(x: torch.Tensor, look) -> torch.Tensor:
    """A 'model' whose logits at (r, t) are a one-hot of look(x, r, t)."""
    out = torch.zeros(*x.shape, 128)
    for r in range(x.shape[0]):
        for t in range(x.shape[1]):
            out[r, t, look(x, r, t)] = 5.0
    return out


def test_causality_check_flags_reading_ahead_and_reading_other_rows(tmp_path):
    h, data = _charlm(tmp_path)
    x, y = h.module.eval_batch(data)
    xp, cuts = perturb(x, h.module.filler(data), seed=7)

    def check(look):
        return causality(_logits(x, look), _logits(xp, look), cuts)

    causal = check(lambda s, r, t: int(s[r, t]))
    assert causal["violations"] == 0 and causal["checked"] == 256
    ahead = check(lambda s, r, t: int(s[r, t + 1]) if t + 1 < s.shape[1] else 0)
    assert ahead["violations"] > 0
    one_position = check(lambda s, r, t: int(s[r, t + 1]) if t == 40 else int(s[r, t]))
    other_row = check(lambda s, r, t: int(s[(r + 1) % s.shape[0], 10]) if t == 63 else int(s[r, t]))
    assert other_row["violations"] > 0, "a row compared whole sees that another row's inputs moved its output"
    # reading one position ahead at one place is caught only where a cut lands there
    assert one_position["violations"] == sum(1 for _, c in cuts if c == 40)
    del y


def test_a_model_that_returns_only_the_last_position_is_told_so(tmp_path):
    """nanoGPT's forward without targets returns x[:, [-1], :] logits (issue 22): one line says why."""
    h, data = _charlm(tmp_path)
    x, _ = h.module.eval_batch(data)
    last_only = torch.zeros(x.shape[0], 1, h.module.VOCAB)
    with pytest.raises(HarnessError, match=r"shape \(256, 1, 128\), the task requires \(256, 64, 128\): the model "
                                           r"returned only the last position's outputs"):
        validate(h, last_only, x, "outputs[eval]")
    with pytest.raises(HarnessError) as other:  # any other wrong shape: no hint
        validate(h, torch.zeros(x.shape[0], 64, 7), x, "outputs[eval]")
    assert "last position" not in str(other.value)
