"""Tolerance mode: honest replays with another thread count stay far under the threshold."""

from __future__ import annotations

import torch

from arledger.protocol.tolerance import calibrate
from arledger.runner import determinism

THRESHOLD = 0.01  # docs/tolerance.md: honest max ~3e-4, forged segments ~0.7


def test_honest_cross_thread_replays_are_within_tolerance(tmp_path):
    res = calibrate("digits", steps=8, segment_steps=4, seed=2, train_threads=2, replay_threads=1, workdir=tmp_path)
    assert [s["status"] for s in res["segments"]] == ["within_tolerance"] * 2
    assert 0 <= res["max_distance"] < THRESHOLD


def test_runner_switches_on_determinism_and_derives_seeds_from_seed_and_step():
    determinism.configure(1)
    assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
    assert torch.backends.cudnn.deterministic and not torch.backends.cuda.matmul.allow_tf32
    assert determinism.derive_seed(1, "batch", 5) == determinism.derive_seed(1, "batch", 5)
    assert len({determinism.derive_seed(s, p, k) for s in (1, 2) for p in ("batch", "step") for k in (0, 1)}) == 8
    a = torch.randint(0, 1000, (4,), generator=determinism.step_generator(7, 3))
    b = torch.randint(0, 1000, (4,), generator=determinism.step_generator(7, 3))
    assert torch.equal(a, b)


def test_environment_differences_name_the_fields():
    env = determinism.environment(1)
    assert determinism.differences(env, dict(env, threads=2, torch="x")) == ["torch", "threads"]
