"""The compute budget (arledger.runner.budget): counted by the verifier, not claimed by the run.

Real parts: charlm training runs on an embedded store, replays and rebuilds in the
bwrap-sandboxed zygote pool (the verifier's executor), the task's budget as
``build_taskspec`` measures it. Asserted, each attack with an honest control:

- the FLOP counter gives torch FlopCounterMode's numbers;
- an honest segment replays within budget, and counts exactly steps x its step's FLOPs;
- four updates per counted step replay bit-exactly but over the FLOP budget;
- extra updates hidden from the counter (dispatch modes switched off) count as honest,
  and the kernel-measured CPU backstop catches them;
- build() that trains before step 0 rebuilds to the claimed checkpoint 0 but over the
  start-up budget; a checkpoint 0 that is not the seed's does not rebuild at all;
- the run's own work report (manifest.work) is checked against the task before gas.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from arledger import attacks, taskspec
from arledger.execution.sandbox import Sandbox
from arledger.protocol import run_experiment, RunOptions
from arledger.protocol.replay import rebuild_start, replay, replay_segment, ReplayOptions
from arledger.runner.budget import Budget, flop_counter
from arledger.templates import template_dir
from arstore import EmbeddedStore

STEPS, K = 20, 10


def test_flop_counter_agrees_with_flopcountermode():
    from torch.utils.flop_counter import FlopCounterMode

    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 8))
    x = torch.randn(16, 32)

    def work():
        model(x).square().sum().backward()
        torch.bmm(torch.randn(2, 3, 4), torch.randn(2, 4, 5))

    with FlopCounterMode(display=False) as ref:
        work()
    with flop_counter() as mine:
        work()
    assert mine.total == ref.get_total_flops() > 0


def test_a_counter_in_the_process_is_claim_codes_to_escape():
    """Why the CPU backstop exists: code in the counted process can switch the counter off."""
    from torch.utils._python_dispatch import _disable_current_modes

    a = torch.randn(64, 64)
    with flop_counter() as c:
        a @ a
        seen = c.total
        with _disable_current_modes():
            a @ a
    assert seen == c.total == 2 * 64 ** 3


def test_budget_problems_name_the_count_and_the_limit():
    b = Budget(steps=50, segment_steps=25, flops_per_step=100, startup_flops=10, cpu_seconds_per_segment=5.0,
               max_params=1000, max_code_bytes=2000)
    assert b.segment_flops == 2500
    assert b.segment_problem(2500, 4.9) == ""
    assert "counted 2501 FLOPs, the task allows 2500" in b.segment_problem(2501, 1.0)
    assert "reported no FLOP count (None)" in b.segment_problem(None, 1.0)
    assert "reported no FLOP count (True)" in b.segment_problem(True, 1.0)
    assert "used 5.1 s of CPU, the task's backstop is 5.0 s" in b.segment_problem(10, 5.1)
    assert "build() counted 11 FLOPs" in b.startup_problem(11, 0.1)
    assert b.static_problems(1000, 2000) == []
    assert [p.split(":")[0] for p in b.static_problems(1001, 2001)] == ["budget.max_params", "budget.max_code_bytes"]
    legacy = Budget.from_dict({"steps": 50, "segment_steps": 25})  # an older spec: steps only
    assert legacy.segment_problem(None, None) == "" and legacy.to_dict() == {"steps": 50, "segment_steps": 25}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("budget-store"))


@pytest.fixture(scope="module")
def spec(store):
    req = taskspec.SpecRequest(template_dir("charlm"), steps=STEPS, segment_steps=K, baseline_loss=7.0)
    return taskspec.build_taskspec(req, store)


@pytest.fixture(scope="module")
def pool():
    with Sandbox(backend="auto").pool_executor() as ex:
        yield ex


def _variant(root: Path, name: str, edit) -> Path:
    d = root / name
    shutil.copytree(template_dir("charlm"), d, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    (d / "train.py").write_text(edit((d / "train.py").read_text()))
    return d


def _run(exp: Path, out: Path, store, force: bool = False):
    """A cheater trains its own code in its own process (attacks may read its files: sandbox=False)."""
    return run_experiment(RunOptions(exp, out, STEPS, K, 1, 1, force=force, sandbox=False), store=store)


def _replay(res, pool, budget, work: Path):
    return replay(res.manifest, ReplayOptions(run_dir=res.manifest_path.parent, workdir=work, executor=pool,
                  harness_executor=pool, budget=budget))


@pytest.fixture(scope="module")
def honest(tmp_path_factory, store):
    return _run(template_dir("charlm"), tmp_path_factory.mktemp("budget-runs") / "honest", store)


def test_the_task_budget_is_measured_on_the_baseline(spec, honest):
    b = spec.work_budget
    step = honest.manifest.work["step_flops_max"]
    assert b.flops_per_step == -(-3 * step // 2), "1.5x the baseline's step"
    assert b.startup_flops == b.flops_per_step, "charlm's build() counts no FLOPs: one step's worth"
    assert b.max_params == 4 * honest.manifest.work["params"]
    assert b.cpu_seconds_per_segment > 4.0
    w = honest.manifest.work
    assert w["counted_steps"] == STEPS // K and w["startup_flops"] == 0 and w["code_bytes"] > 1000
    assert taskspec.manifest_budget_problems(honest.manifest, spec) == []


def test_honest_segment_counts_its_steps_and_stays_in_budget(honest, spec, pool, tmp_path):
    res = replay_segment(_replay(honest, pool, spec.work_budget, tmp_path), 1)
    assert res.status == "match", res
    assert res.flops == K * honest.manifest.work["step_flops_max"], "every step counted, each the same"
    assert res.cpu_s is not None and 0 < res.cpu_s < spec.work_budget.cpu_seconds_per_segment
    start = rebuild_start(_replay(honest, pool, spec.work_budget, tmp_path / "start"))
    assert start.status == "match" and start.flops == 0, start


def test_four_updates_per_step_reproduce_but_break_the_flop_budget(tmp_path, store, spec, pool):
    res = _run(_variant(tmp_path, "x4", attacks.extra_updates_per_step), tmp_path / "x4-run", store)
    assert res.manifest.work["step_flops_max"] > spec.work_budget.flops_per_step
    problems = taskspec.manifest_budget_problems(res.manifest, spec)
    assert len(problems) == 1 and problems[0].startswith("budget.flops_per_step"), problems
    r = replay_segment(_replay(res, pool, spec.work_budget, tmp_path / "w"), 0)
    assert r.status == "over_budget" and r.produced_hash == r.expected_hash, r
    assert "compute budget: the segment counted" in r.detail


def test_updates_hidden_from_the_counter_meet_the_cpu_backstop(tmp_path, store, spec, pool, honest):
    res = _run(_variant(tmp_path, "hidden", lambda s: attacks.hidden_from_the_counter(s, 24)),
               tmp_path / "hidden-run", store)
    assert taskspec.manifest_budget_problems(res.manifest, spec) == [], "the run's own count looks honest"
    # a backstop of 3x the honest replay's CPU (the task's is calibrated the same way, with a floor)
    honest_cpu = replay_segment(_replay(honest, pool, spec.work_budget, tmp_path / "h"), 0).cpu_s
    tight = dataclasses.replace(spec.work_budget, cpu_seconds_per_segment=round(3 * honest_cpu + 0.5, 1))
    control = replay_segment(_replay(honest, pool, tight, tmp_path / "c"), 0)
    assert control.status == "match", control
    r = replay_segment(_replay(res, pool, tight, tmp_path / "w"), 0)
    assert r.flops == control.flops, "the counter saw an honest step"
    assert r.status == "over_budget" and "s of CPU" in r.detail, r


def test_training_inside_build_is_over_the_startup_budget(tmp_path, store, spec, pool):
    res = _run(_variant(tmp_path, "build", lambda s: attacks.train_inside_build(s, 20)), tmp_path / "b-run", store)
    assert res.manifest.work["startup_flops"] > spec.work_budget.startup_flops
    start = rebuild_start(_replay(res, pool, spec.work_budget, tmp_path / "w"))
    assert start.status == "over_budget" and start.produced_hash == start.expected_hash, start
    assert "build() counted" in start.detail


def test_a_start_that_is_not_the_seeds_does_not_rebuild(tmp_path, store, spec, pool, honest):
    from safetensors.torch import load_file

    exp = _variant(tmp_path, "pre", attacks.pretrained_start)
    out = tmp_path / "pre-run"
    out.mkdir()  # the cheater's file, next to the run's code: the honest run's trained weights
    torch.save(load_file(str(honest.manifest_path.parent / "final.safetensors")), out / "pretrained.pt")
    res = _run(exp, out, store, force=True)  # --force: the cheater's own dir, not made by a run
    assert res.manifest.evaluation.value < honest.manifest.evaluation.value, "the head start pays"
    start = rebuild_start(_replay(res, pool, spec.work_budget, tmp_path / "w"))
    assert start.status == "mismatch" and "not what build() makes from seed 1" in start.detail, start


def test_no_claim_computed_number_reaches_the_sample(honest, spec, store, tmp_path):
    """The claim's code runs only to rebuild the start, to replay segments and to predict on the
    final weights: never on the checkpoints the sample is drawn from (the loss probe that did is
    gone), so nothing it returns can rank a segment."""
    from arverifier.check import ClaimChecker
    from bench.runs import TASK_ID, TRAINER
    from bench.verify_bench import _claim_info

    seen = []

    class Recording(ClaimChecker):
        def executor(self, spec, role="claim"):
            inner = super().executor(spec, role)

            class Proxy:
                def run(self_, req):
                    seen.append((role, req.label, req.body.get("mode"), req.body.get("kind"), req.body.get("op")))
                    return inner.run(req)

                def close(self_):
                    inner.close()

            return Proxy()

    m = dataclasses.replace(honest.manifest, task_id=TASK_ID, trainer=TRAINER)
    from arledger import manifest as mf

    cid = str(store.add_bytes(mf.dumps(m)))
    checker = Recording(store, "0x" + "cd" * 20, workdir=tmp_path / "work")
    try:
        v = checker.check(_claim_info(m, cid, 3, b"\x05" * 32), spec)
    finally:
        checker.close()
    assert v.decision == "confirm", v.reason
    claim_side = [s for s in seen if s[0] == "claim"]
    assert {s[2] for s in claim_side} == {"build", "predict", "segment"}, seen
    assert all(s[3] == "weights" for s in claim_side if s[2] == "predict"), "no prediction on a checkpoint"
    assert len([s for s in claim_side if s[2] == "segment"]) == 2 and v.segments == [0, 1]
