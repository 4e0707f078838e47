"""Replays through the zygote pool: same bits as a fresh process, hostile code dies alone.

Real parts only: real training runs of the templates, the real zygote, real bubblewrap
and the rlimit fallback. Asserted:

- a pooled replay produces the trainer's h_{i+1}, and so does the fresh-process path
  (digits and charlm), and the final evaluation (the claim's predictions in the pool,
  the harness in this process) gives the manifest's metrics, causal check included;
- each attack of tests/test_hostile_code.py, replayed through a sandboxed pool, is
  contained and reported (a ReplayError naming the limit), and the SAME zygote then
  serves an honest replay that matches;
- what a child leaves behind (a setsid daemon) is killed; a child past its wall clock
  (the pool's or the request's) is killed and reported; the worker's word about its
  state hash is never what counts (the file it wrote is hashed);
- a crash of the zygote is reported and the pool restarts it once; a zygote that cannot
  come back breaks the pool with a clear error.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from arledger.errors import ReplayError
from arledger.execution import PoolExecutor, SubprocessExecutor
from arledger.execution.limits import Limits
from arledger.execution.pool import ReplayPool
from arledger.execution.sandbox import Sandbox
from arledger.protocol import evaluate_final, replay, replay_segment, ReplayOptions, run_experiment, RunOptions
from arledger.templates import template_dir
from arstore import EmbeddedStore
from tests.test_hostile_code import _hostile_experiment, ATTACKS, listener  # noqa: F401 - fixture

LIMITS = Limits(cpu_seconds=5, wall_seconds=20, memory_bytes=3 << 29, file_size_bytes=64 << 20,
                       max_processes=32)


def _train(exp: Path, out: Path, store, steps: int = 2, segment_steps: int = 2):
    """A run trained in this process (the attacks fire only in a worker, as a verifier's replay)."""
    return run_experiment(RunOptions(experiment_dir=exp, out=out, steps=steps, segment_steps=segment_steps,
                                     seed=1, threads=1, sandbox=False), store=store).manifest


def _with_attack(tmp: Path, code: str) -> Path:
    """The digits template with ``code`` run inside a replay's train_step (not the trainer's)."""
    return _hostile_experiment(tmp, code)


def _job(m, store, executor, run_dir: Path | None = None, workdir: Path | None = None, **kw):
    """A replay of claim ``m`` whose claim code runs through ``executor`` (the harness: in process)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="pool-test-", dir=_WORK))
    return replay(m, ReplayOptions(run_dir=run_dir, store=store, workdir=workdir, executor=executor, **kw))


_WORK = None  # set by the module fixture below: where replays keep fetched files


@pytest.fixture(scope="module", autouse=True)
def _workdirs(tmp_path_factory):
    global _WORK
    _WORK = tmp_path_factory.mktemp("replay-work")
    yield
    _WORK = None


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def honest(tmp_path_factory, store):
    """A 2-segment digits run: the honest request every pool must still serve."""
    base = tmp_path_factory.mktemp("honest")
    return _train(template_dir("digits"), base / "run", store, steps=4, segment_steps=2), base / "run"


@pytest.fixture(scope="module")
def pool():
    with ReplayPool() as p:
        yield p


def _assert_serves(pool: ReplayPool, honest, store, **kw) -> None:
    m, run_dir = honest
    r = replay_segment(_job(m, store, PoolExecutor(pool), run_dir, **kw), 1)
    assert r.status == "match", r
    assert r.produced_hash == m.boundaries[2].state_hash


# -- same bits ---------------------------------------------------------------------------


@pytest.mark.parametrize("template,steps,seg", [("digits", 4, 2), ("charlm", 6, 3)])
def test_pooled_replay_equals_fresh_process_and_trainer(template, steps, seg, tmp_path, store, pool):
    m = _train(template_dir(template), tmp_path / "run", store, steps, seg)
    job = _job(m, store, PoolExecutor(pool), tmp_path / "run")
    pooled = replay_segment(job, 1)
    fresh = replay_segment(replay(m, ReplayOptions(run_dir=tmp_path / "run", store=store, workdir=tmp_path / "fresh",
                                  executor=SubprocessExecutor())), 1)
    assert pooled.status == fresh.status == "match"
    assert pooled.produced_hash == fresh.produced_hash == m.boundaries[2].state_hash
    # segment 0 too, through the same zygote: nothing carries over between children
    assert replay_segment(job, 0).status == "match"
    ev = evaluate_final(job)
    assert ev.ok and round(ev.metrics[m.evaluation.metric] * 1e6) == m.evaluation.value_micro
    if template == "charlm":  # a causal task: the seed-drawn splice changes no output before its cut
        checked = evaluate_final(job, check_seed=bytes(range(32)))
        assert checked.ok and checked.metrics == ev.metrics
        assert checked.causality["checked"] > 0 and checked.causality["violations"] == 0
    assert pool.startup_s is not None  # the interpreter + torch start-up, paid once by the zygote
    assert pooled.wall_s + 1.0 < fresh.wall_s, "a forked child must not pay the interpreter + torch start-up"
    assert list(pool.scratch.iterdir()) == [], "request dirs are removed"


# -- hostile code in a sandboxed pool ----------------------------------------------------


REFUSED = "attack-refused"  # where an attack notes what stopped it, in its request dir


class WitnessExecutor(PoolExecutor):
    """``Sandbox.pool_executor()`` that reads the attack's notes before the request dir is wiped."""

    refusals: list[str] = []

    def _discard(self, directory: Path) -> None:
        note = directory / REFUSED
        self.refusals = note.read_text().split() if note.is_file() else []
        super()._discard(directory)


@pytest.fixture(scope="module", params=["bwrap", "rlimit"])
def box_pool(request, tmp_path_factory):
    """A sandboxed, started pool (inputs are copied into its scratch root) and the verifier's work dir."""
    work = tmp_path_factory.mktemp(f"verifier-work-{request.param}")
    with WitnessExecutor(Sandbox(LIMITS, backend=request.param).replay_pool()) as ex:
        assert ex.copy_inputs and ex.pool.sandboxed
        ex.pool.start()
        yield ex, work


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory, store):
    """One trained run per attack (the attack fires only in replays), shared by both backends."""
    cache: dict[str, object] = {}

    def get(name: str, port: int, outside: Path):
        if name not in cache:
            base = tmp_path_factory.mktemp(f"hostile-{name}")
            code = ATTACKS[name].replace("{port}", str(port)).replace("{outside!r}", repr(str(outside)))
            # tests/test_hostile_code.py notes refusals in the one-process sandbox's scratch root
            # (".."); a pooled child may write only its own request dir (the rlimit guard's root)
            code = code.replace(f'"../{REFUSED}"', f'"{REFUSED}"')
            cache[name] = _train(_hostile_experiment(base, code), base / "run", store)
        return cache[name]

    return get


EXPECTED_LIMIT = {"fork_bomb": "process-count", "memory_bomb": "memory", "endless_loop": "cpu-time"}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_hostile_request_dies_alone_and_zygote_serves_on(name, box_pool, hostile_runs, listener, store, honest,
                                                         tmp_path):
    ex, work = box_pool
    pool = ex.pool
    port, received = listener
    outside_dir = Path(tempfile.mkdtemp(dir="/var/tmp"))
    outside = outside_dir / "pwned.txt"
    m = hostile_runs(name, port, outside)
    zygote = pool.pid
    t0 = time.monotonic()
    try:
        try:
            outcome = replay_segment(_job(m, store, ex, workdir=work / f"claim-{name}"), 0).status
        except ReplayError as exc:
            outcome = f"failed: {exc}"
        took = time.monotonic() - t0
        if name in EXPECTED_LIMIT:
            assert outcome.startswith("failed") and EXPECTED_LIMIT[name] in outcome, outcome
            assert took < LIMITS.wall_seconds, f"{name} took {took:.1f}s"
        elif name == "network":
            assert outcome == "match" and received == [], (outcome, received)
            assert ex.refusals, "the attack never ran in the replay"
        else:
            assert outcome == "match" and not outside.exists(), outcome
            assert ex.refusals, "the attack never ran in the replay"
    finally:
        shutil.rmtree(outside_dir, ignore_errors=True)
    assert pool.pid == zygote and pool.restarts == 0, "the zygote itself must survive its child"
    honest_m, honest_dir = honest
    mine = work / f"honest-after-{name}"
    r = replay_segment(_job(honest_m, store, ex, workdir=mine), 1)
    assert r.status == "match", r


# -- what children leave behind ----------------------------------------------------------


def test_orphans_of_a_child_are_killed(tmp_path, store, pool):
    pidfile = tmp_path / "daemon.pid"
    m = _train(_with_attack(tmp_path, f"""
        import os, time
        if os.fork() == 0:
            os.setsid()  # leave the child's process group
            open({str(pidfile)!r}, "w").write(str(os.getpid()))
            time.sleep(600)
            os._exit(0)
        time.sleep(0.3)
    """), tmp_path / "run", store)
    r = replay_segment(_job(m, store, PoolExecutor(pool), tmp_path / "run"), 0)
    assert r.status == "match"
    daemon = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(daemon), f"pid {daemon} outlived its request"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_wall_clock_kills_a_sleeping_child(tmp_path, store, honest):
    m = _train(_with_attack(tmp_path, "import time; time.sleep(60)"), tmp_path / "run", store)
    with ReplayPool(limits=Limits(wall_seconds=2)) as p:
        t0 = time.monotonic()
        with pytest.raises(ReplayError, match="wall-time limit") as err:
            replay_segment(_job(m, store, PoolExecutor(p), tmp_path / "run"), 0)
        assert err.value.violation == "wall-time"
        assert time.monotonic() - t0 < 6
        _assert_serves(p, honest, store, limits=Limits())  # a request's own limits replace the pool's


def test_a_request_wall_clock_overrides_the_pools(tmp_path, store, pool):
    m = _train(_with_attack(tmp_path, "import time; time.sleep(60)"), tmp_path / "run", store)
    t0 = time.monotonic()
    with pytest.raises(ReplayError, match="wall-time limit"):
        replay_segment(_job(m, store, PoolExecutor(pool), tmp_path / "run", limits=Limits(wall_seconds=2)), 0)
    assert time.monotonic() - t0 < 6 and pool.restarts == 0


def test_the_worker_s_word_about_its_state_hash_does_not_count(tmp_path, store, pool):
    # a lie about the hash of an honest file: the file is hashed, the replay matches
    m = _train(_with_attack(tmp_path / "a", """
        import arledger.checkpoint as c
        c.state_hash = lambda data: "0x" + "0" * 64
    """), tmp_path / "a" / "run", store)
    r = replay_segment(_job(m, store, PoolExecutor(pool), tmp_path / "a" / "run"), 0)
    assert r.status == "match" and r.produced_hash == m.boundaries[1].state_hash
    # the honest hash reported for a file that is not what training produced: a mismatch
    m = _train(_with_attack(tmp_path / "b", """
        import arledger.checkpoint as c
        if not getattr(c, "_forged", False):
            c._forged, _write = True, c.atomic_write
            def _flip_last_byte(path, data):
                _write(path, data[:-1] + bytes([data[-1] ^ 1]))
            c.atomic_write = _flip_last_byte
    """), tmp_path / "b" / "run", store)
    r = replay_segment(_job(m, store, PoolExecutor(pool), tmp_path / "b" / "run"), 0)
    assert r.status == "mismatch" and r.produced_hash != r.expected_hash == m.boundaries[1].state_hash


# -- the zygote itself -------------------------------------------------------------------


def test_zygote_crash_is_reported_and_restarted_once_per_crash(tmp_path, store, honest):
    m = _train(_with_attack(tmp_path, "import os, signal; os.kill(os.getppid(), signal.SIGKILL)"),
               tmp_path / "run", store)
    with ReplayPool() as p:
        first = p.pid
        # killed by the child it was serving: that request fails, naming the crash
        with pytest.raises(ReplayError, match=r"crashed \(killed by signal 9\).*zygote restarted"):
            replay_segment(_job(m, store, PoolExecutor(p), tmp_path / "run"), 0)
        assert p.restarts == 1 and p.pid != first
        _assert_serves(p, honest, store)
        # killed while idle: noticed before the next request, which is then served
        second = p.pid
        os.kill(second, signal.SIGKILL)
        p._proc.wait()
        _assert_serves(p, honest, store)
        assert p.restarts == 2 and p.pid not in (first, second)


def test_zygote_that_cannot_come_back_breaks_the_pool(tmp_path, store, honest):
    calls = []

    def launch(argv, scratch, log_path):
        calls.append(argv)
        assert log_path.parent == scratch.parent, "the zygote's log lies outside the scratch root"
        if len(calls) > 1:  # the restart: a "zygote" that dies before it is ready
            argv = [sys.executable, "-c", "import sys; print('no torch today', file=sys.stderr); sys.exit(3)"]
        with open(log_path, "ab") as log:
            return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=scratch)

    with ReplayPool(launch=launch) as p:
        os.kill(p.pid, signal.SIGKILL)
        p._proc.wait()
        with pytest.raises(ReplayError, match="restart failed: replay zygote: did not start \\(no torch today\\)"):
            _assert_serves(p, honest, store)
        with pytest.raises(ReplayError, match="pool unusable"):
            _assert_serves(p, honest, store)
    assert len(calls) == 2, "one restart per crash, not a loop"
