"""Honest hardware is never fraud: the task pins the CPU kernel set (arledger.execution.kernels).

Real parts: ``artrain run`` as a real process (it re-executes itself under the task's
kernel switches), the verifier's ClaimChecker with its bwrap-sandboxed zygote pools on
an embedded store. Asserted:

- a charlm run trained under the ``default`` kernels (torch's scalar ATen kernels, MKL's
  compatible branch: a CPU without AVX2) is confirmed by a verifier on this AVX2 /
  AVX-512 machine when the task pins ``default``: its sandbox runs the same set;
- the same run under a task that pins another set, or none, is abstained on, never
  challenged; and replayed without the pin it does not reproduce (the bug the pin
  fixes: an honest claim called a mismatch);
- a verifier whose CPU cannot run the pinned set abstains.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arledger import manifest as mf, taskbuild
from arledger.execution import kernels
from arledger.execution.sandbox import Sandbox
from arledger.protocol.replay import replay, replay_segment, ReplayOptions
from arledger.templates import template_dir
from arstore import EmbeddedStore
from arverifier.check import ClaimChecker
from bench.runs import TASK_ID, TRAINER
from bench.verify_bench import _claim_info

VERIFIER = "0x" + "ab" * 20
SEED = b"\x24" * 32
STEPS, K = 40, 20


def test_pins_name_every_libraries_switch():
    assert kernels.env_for("default") == {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                                          "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    assert kernels.env_for(None) == {} and kernels.pin_of(kernels.env_for("avx512")) == "avx512"
    assert kernels.pin_of({"ATEN_CPU_CAPABILITY": "avx2"}) is None, "a partial pin is no pin"
    with pytest.raises(Exception, match="cpu_kernels: 'sse' is not one of default, avx2, avx512"):
        kernels.env_for("sse")
    # this (test) process runs the default pin, set by the root conftest before any work
    assert kernels.problem(kernels.DEFAULT_PIN) == ""
    assert "the task pins 'default'; this process was started with" in kernels.problem("default")


def test_a_cpu_that_cannot_run_the_pinned_set_abstains():
    spec = type("Spec", (), {"cpu_kernels": "avx512"})()
    why = ClaimChecker.kernel_abstention(spec, {"cpu_capability": "AVX2"})
    assert why.startswith("this CPU cannot run the task's kernel set 'avx512'")
    assert ClaimChecker.kernel_abstention(spec, {"cpu_capability": "AVX512"}) == ""


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return tmp_path_factory.mktemp("kernels-store")


@pytest.fixture(scope="module")
def old_cpu_run(tmp_path_factory, store_path):
    """charlm trained by the real ``artrain`` executable under the ``default`` kernel set."""
    out = tmp_path_factory.mktemp("kernels-runs") / "default"
    artrain = Path(sys.executable).parent / "artrain"
    proc = subprocess.run([str(artrain), "run", str(template_dir("charlm")), "--steps", str(STEPS),
                           "--segment-steps", str(K), "--seed", "3", "--out", str(out), "--store",
                           f"embedded:{store_path}", "--task-id", str(TASK_ID), "--trainer", TRAINER,
                           "--cpu-kernels", "default", "--json"],
                          capture_output=True, text=True, timeout=600, env={**os.environ}, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["cpu_kernels"] == "default"
    m = mf.load(out / "manifest.json")
    assert m.environment["kernels"] == kernels.env_for("default") and m.environment["cpu_capability"] == "DEFAULT"
    return m, summary["manifest_cid"], out


@pytest.fixture(scope="module")
def spec(store_path):
    """A charlm task (measured here, under this process's pin) and its variants by kernel pin."""
    req = taskbuild.SpecRequest(template_dir("charlm"), steps=STEPS, segment_steps=K, baseline_loss=7.0)
    return taskbuild.build_taskspec(req, EmbeddedStore(store_path))


def _pinned(spec, pin):
    return dataclasses.replace(spec, environment={**spec.environment, "cpu_kernels": pin})


def _check(store_path, tmp_path, spec, run):
    m, cid, _ = run
    checker = ClaimChecker(EmbeddedStore(store_path), VERIFIER, workdir=tmp_path / "work")
    try:
        return checker.check(_claim_info(m, cid, 7, SEED), spec)
    finally:
        checker.close()


def test_a_run_on_the_default_kernels_is_confirmed_under_a_task_that_pins_them(store_path, tmp_path, spec,
                                                                              old_cpu_run):
    v = _check(store_path, tmp_path, _pinned(spec, "default"), old_cpu_run)
    assert v.decision == "confirm", v.reason
    assert len(v.replays) == 2 and all(r["status"] == "match" for r in v.replays)


@pytest.mark.parametrize("pin", ["avx2", None])
def test_the_same_run_under_another_pin_is_abstained_on_never_challenged(store_path, tmp_path, spec, old_cpu_run,
                                                                         pin):
    v = _check(store_path, tmp_path, _pinned(spec, pin), old_cpu_run)
    assert v.decision == "abstain", v.reason
    assert "environment differs" in v.reason and "kernels" in v.reason, v.reason


def test_without_the_pin_the_honest_run_would_not_reproduce(tmp_path, old_cpu_run):
    """The bug the pin fixes: the verifier's native kernels compute other bits from honest code."""
    m, _, run_dir = old_cpu_run
    native = kernels.capability_under(None)
    assert native != "DEFAULT", "this test needs a CPU whose native kernels are not the default set"
    with Sandbox(backend="auto", kernel_env={}).pool_executor() as ex:
        job = replay(m, ReplayOptions(run_dir=run_dir, workdir=tmp_path, executor=ex, harness_executor=ex))
        job.environment = dict(m.environment)  # as if nothing told the environments apart
        res = replay_segment(job, 0)
    assert res.status == "mismatch" and res.produced_hash != res.expected_hash, res
