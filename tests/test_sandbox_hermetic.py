"""Inside the verifier's sandbox claim code sees the same world under every verifier identity,
and nothing of the held-out split, in every mode it runs in.

An observing train.py (the digits template plus ``_observe``) records, at start-up
(``load_data``), in training (``train_step``) and in evaluation (the model's forward in
a ``predict`` request: the final evaluation and the loss probe), everything it can see:
working directory and its files, environment, hostname, user, CPU count, interpreter
paths, the filesystem it can list, fixed files (/etc, /proc/cpuinfo), pids. It also hunts
for the held-out split: by import (scikit-learn's bundled digits, CPython's pydoc topics)
and by content (any readable file holding bytes of the held-out file).

Two verifiers with different addresses, work dirs, ``ARLEDGER_HOME`` and process cwd
replay the same claim through ``ClaimChecker`` (pooled and one process per request);
the observations are compared byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from arledger import taskbuild
from arledger.execution import isolation
from arledger.execution.executors import PoolExecutor
from arledger.execution.sandbox import SandboxExecutor
from arledger.protocol import (
    evaluate_final,
    probe_checkpoints,
    replay,
    replay_segment,
    ReplayOptions,
    run_experiment,
    RunOptions,
)
from arledger.protocol.replay import ArtifactSource
from arstore import open_store
from arverifier.check import ClaimChecker

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "client" / "arledger" / "templates" / "digits"
LIMITS = {"cpu_seconds": 60, "wall_seconds": 120, "memory_bytes": 3 << 30, "file_size_bytes": 64 << 20,
          "max_processes": 32}

OBSERVER = r'''

_SEEN = set()


def _observe(tag):
    """Everything this process can see of its world, written to obs-<tag>.json in its cwd."""
    import grp, hashlib, json, os, platform, pwd, socket, stat, sys
    if os.environ.get("OBSERVER_OFF") or tag in _SEEN:  # the test's own training run, on the host
        return
    _SEEN.add(tag)
    needle = bytes.fromhex(os.environ.get("NEEDLE", "") or NEEDLE)
    found = []
    for mod in ("pydoc_data.topics", "sklearn.datasets"):
        try:
            m = __import__(mod, fromlist=["x"])
            if mod == "sklearn.datasets":
                m.load_digits()
            found.append(f"import {mod}")
        except Exception:
            pass
    listing, contents = [], {}
    for top, dirs, files in os.walk("/", onerror=lambda e: None):
        dirs.sort()
        deep = top.startswith(("/opt/site/", "/opt/python/lib/", "/usr/lib/"))
        if not deep:
            listing.append([top, sorted(dirs), sorted(files)])
        data_tree = top.startswith(("/opt/site/sklearn/datasets", "/opt/python/lib/python3"))
        if deep and not data_tree:
            continue
        for f in files:
            p = os.path.join(top, f)
            try:
                st = os.lstat(p)
                if not stat.S_ISREG(st.st_mode) or st.st_size > (4 << 20) or p.endswith((".so", ".pyc")) or "/so." in p:
                    continue
                with open(p, "rb") as fh:
                    blob = fh.read()
            except OSError:
                continue
            if needle in blob:
                found.append(f"content {p}")
            if not deep and not p.startswith(os.getcwd()):
                contents[p] = hashlib.sha256(blob).hexdigest()
    here = {}
    for top, dirs, files in os.walk(os.getcwd()):
        for f in sorted(files):
            if not f.startswith("obs-"):
                here[os.path.relpath(os.path.join(top, f))] = os.path.getsize(os.path.join(top, f))
    obs = {
        "cwd": os.getcwd(), "cwd_files": here, "env": dict(sorted(os.environ.items())),
        "hostname": socket.gethostname(), "node": platform.node(), "uid": os.getuid(), "gid": os.getgid(),
        "groups": os.getgroups(), "user": list(pwd.getpwuid(os.getuid())), "group": grp.getgrgid(os.getgid()).gr_name,
        "cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "executable": sys.executable,
        "prefix": sys.prefix, "path": sys.path, "argv": sys.argv, "file": __file__, "pid": os.getpid(),
        "ppid": os.getppid(), "listing": listing, "contents": contents, "heldout_found": found,
    }
    with open(f"obs-{tag}.json", "w") as fh:
        json.dump(obs, fh, sort_keys=True)
'''


@pytest.fixture(scope="module")
def claim(tmp_path_factory):
    """An honest digits claim whose train.py observes its world; its TaskSpec and store."""
    mp = pytest.MonkeyPatch()
    mp.setenv("OBSERVER_OFF", "1")  # the host side: nothing to observe (the sandbox's env is fixed)
    tmp = tmp_path_factory.mktemp("hermetic")
    store = open_store(f"embedded:{tmp / 'store'}")
    exp = tmp / "observer"
    shutil.copytree(DIGITS, exp, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    from arledger.harness import load_harness

    heldout = load_harness(exp / "harness").build_data()["val"]
    needle = heldout[len(heldout) // 2 : len(heldout) // 2 + 48].hex()  # 48 bytes of held-out images
    src = (exp / "train.py").read_text()
    src = src.replace("def load_data(paths, config):\n", "def load_data(paths, config):\n    _observe('startup')\n")
    src = src.replace("def train_step(model, opt, batch):\n", "def train_step(model, opt, batch):\n    _observe('train')\n")
    src = src.replace("    def forward(self, x: torch.Tensor) -> torch.Tensor:\n",
                      "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        if not self.training:\n"
                      "            _observe('forward')\n")
    (exp / "train.py").write_text(src + f"\nNEEDLE = {needle!r}\n" + OBSERVER)
    run = run_experiment(RunOptions(exp, tmp / "run", steps=2, segment_steps=1, seed=1, sandbox=False), store=store)
    # the observer spends CPU looking around (it scans for the held-out bytes): a time budget that
    # leaves it room, as this test is about what it sees, not what it spends (tests/test_budget.py)
    req = taskbuild.SpecRequest(exp, steps=2, segment_steps=1, limits=LIMITS, baseline_loss=2.3,
                                budget={"time_ratio": 1000.0})
    spec = taskbuild.build_taskspec(req, store)
    mp.undo()
    return {"m": run.manifest, "spec": spec, "store": store, "tmp": tmp}


class _Keeping:
    """Wraps an executor's discard: the obs-*.json files of each request are kept, by request label."""

    def __init__(self, executor, into: Path):
        self.inner, self.into = executor, into
        original = executor._discard

        def discard(directory: Path) -> None:
            for f in sorted(directory.glob("obs-*.json")):
                dest = into / f"{directory.name}-{f.name}"
                n = 0
                while dest.exists():
                    n += 1
                    dest = into / f"{directory.name}-{n}-{f.name}"
                shutil.copyfile(f, dest)
            original(directory)

        executor._discard = discard


def _observe_as(claim, tmp: Path, verifier: str, use_pool: bool, monkeypatch) -> dict[str, dict]:
    """Replay segment 1, evaluate, probe, as ``verifier``; returns {request-file: observation}."""
    isolation.close_all()  # two verifiers are two processes: neither starts with the other's warm pools
    home = tmp / f"home-{verifier[-4:]}"
    home.mkdir(parents=True)
    monkeypatch.setenv("ARLEDGER_HOME", str(home))
    monkeypatch.chdir(home)
    checker = ClaimChecker(claim["store"], verifier, workdir=home / "verifier" / verifier / "work", use_pool=use_pool)
    # what claim code sees, not what it spends: the task's baseline is not timed here (the timing
    # runs the same code through the same executor; tests/test_budget.py times it)
    monkeypatch.setattr(checker, "time_base", lambda spec: None)
    out = tmp / f"obs-{verifier[-4:]}"
    out.mkdir()
    try:
        ex = checker.executor(claim["spec"])
        assert isinstance(ex, PoolExecutor if use_pool else SandboxExecutor)
        _Keeping(ex, out)
        src = ArtifactSource(claim["m"], checker.workdir / "claim", store=claim["store"])
        r = checker.replay_of(claim["m"], claim["spec"], src)
        assert replay_segment(r, 1).status == "match"
        ev = evaluate_final(r, check_seed=b"same seed for both")
        assert ev.ok, ev.problem
        assert probe_checkpoints(r) is not None
    finally:
        checker.close()
    return {f.name: json.loads(f.read_text()) for f in sorted(out.iterdir())}


@pytest.mark.parametrize("use_pool", [True, False], ids=["pool", "process-per-request"])
def test_two_verifiers_see_the_same_world_and_no_held_out_data(claim, tmp_path, monkeypatch, use_pool):
    a = _observe_as(claim, tmp_path, "0x" + "a1" * 20, use_pool, monkeypatch)
    b = _observe_as(claim, tmp_path, "0x" + "b2" * 20, use_pool, monkeypatch)
    # start-up, training and prediction were all observed: segment, predict (eval), predict (probe)
    tags = {name.rsplit("-", 1)[-1] for name in a}
    assert {"startup.json", "train.json", "forward.json"} <= tags, sorted(a)
    assert sorted(a) == sorted(b)
    for name in a:
        assert json.dumps(a[name], sort_keys=True) == json.dumps(b[name], sort_keys=True), (
            name, _diff(a[name], b[name]))
    for name, obs in a.items():
        assert obs["heldout_found"] == [], (name, obs["heldout_found"])
        assert set(obs["cwd_files"]) <= {"request.json", "start.safetensors", "inputs.safetensors", "worker.log",
                                         "m0.safetensors", "m1.safetensors", "m2.safetensors", "data/train",
                                         "code/train.py", "code/experiment.json", "out.safetensors",
                                         "outputs-0.safetensors", "outputs-1.safetensors"}, obs["cwd_files"]
        text = json.dumps(obs)
        # the host's paths (this checkout's root among them: "/work/..." here, not the worker's "/worker.py")
        for host_thing in (str(tmp_path), "0x" + "a1" * 20, "/root", str(ROOT) + "/", os.uname().nodename):
            assert host_thing not in text, (name, host_thing)
        assert obs["hostname"] == "arledger" and obs["uid"] == 65534 and obs["cpu_count"] == 1


def _diff(x, y):
    return {k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)}


# -- no channel from one request to the next ------------------------------------------------

SYSV_CARRIER = r'''

def _carry():
    """Leave data in a System V shared-memory segment; diverge if an earlier request left some."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    key, marker = 0x41524C47, b"left by an earlier request"
    ident = libc.shmget(key, 4096, 0)
    if ident >= 0:
        addr = libc.shmat(ident, None, 0)
        if addr not in (None, ctypes.c_void_p(-1).value) and ctypes.string_at(addr, len(marker)) == marker:
            return True
    libc.mq_open.restype = ctypes.c_int
    if libc.mq_open(b"/arledger-carrier", 0o2, 0o600, None) >= 0:  # O_RDWR: one left by an earlier request
        return True
    libc.mq_open(b"/arledger-carrier", 0o100 | 0o2, 0o600, None)  # O_CREAT: refused in the sandbox
    ident = libc.shmget(key, 4096, 0o1000 | 0o600)  # IPC_CREAT
    addr = libc.shmat(ident, None, 0)
    ctypes.memmove(addr, marker, len(marker))
    return False

'''


def _remove_host_segment():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ident = libc.shmget(0x41524C47, 0, 0)
    if ident >= 0:
        libc.shmctl(ident, 0, None)
    libc.mq_unlink(b"/arledger-carrier")


DIVERGE = r'''

_SEEN_IT = None


def train_step(model, opt, batch, _honest=train_step):
    """Honest, unless {probe}() saw what it looks for: then the replay cannot reproduce."""
    global _SEEN_IT
    if _SEEN_IT is None and {when}:
        _SEEN_IT = {probe}()
    if _SEEN_IT:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1e-2)
    return _honest(model, opt, batch)
'''


def _digits_with(tmp_path: Path, name: str, code: str, probe: str, when: str = "True") -> Path:
    """The digits template whose train_step diverges once ``probe()`` (defined in ``code``) is true."""
    exp = tmp_path / name
    shutil.copytree(DIGITS, exp, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    (exp / "train.py").write_text((exp / "train.py").read_text() + code
                                  + DIVERGE.replace("{probe}", probe).replace("{when}", when))
    return exp


def test_shared_memory_left_by_one_request_is_gone_for_the_next(tmp_path):
    from arledger.execution.pool import ReplayPool
    from arledger.execution.sandbox import Sandbox
    from arledger.protocol import replay, ReplayOptions

    store = open_store(f"embedded:{tmp_path / 'store'}")
    exp = _digits_with(tmp_path, "carrier", SYSV_CARRIER, "_carry")
    _remove_host_segment()
    try:
        # trained in one process: the first step leaves the segment, later ones see only their own
        run = run_experiment(RunOptions(exp, tmp_path / "run", steps=2, segment_steps=1, seed=1, sandbox=False),
                             store=store)
        _remove_host_segment()
        m = run.manifest
        box = Sandbox(Limits_for_test(), backend="bwrap")
        with box.pool_executor() as ex:
            job = replay(m, ReplayOptions(store=store, workdir=tmp_path / "sandboxed", executor=ex,
                                          harness_executor=ex))
            assert [replay_segment(job, i).status for i in (0, 1)] == ["match", "match"]
        # control: a plain pool shares the host's IPC namespace, and the second request finds the segment
        with PoolExecutor(ReplayPool()) as ex:
            job = replay(m, ReplayOptions(store=store, workdir=tmp_path / "plain", executor=ex))
            assert [replay_segment(job, i).status for i in (0, 1)] == ["match", "mismatch"]
    finally:
        _remove_host_segment()


def Limits_for_test():
    from arledger.execution.limits import Limits

    return Limits.from_dict(LIMITS)


PTRACER = r'''

def _attach_to_parent():
    """PTRACE_ATTACH to the process that forked us (the zygote); detach at once if it worked."""
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    parent = os.getppid()
    if libc.ptrace(16, parent, None, None) != 0:  # PTRACE_ATTACH
        return False
    os.waitpid(parent, 0x40000000)  # __WALL
    libc.ptrace(17, parent, None, None)  # PTRACE_DETACH
    return True

'''


def test_claim_code_cannot_ptrace_the_zygote_it_was_forked_from(tmp_path):
    """The zygote is not dumpable and claim code has no capability in the sandbox: attaching
    fails, so a child cannot rewrite what later children (or the scores) come from. Control:
    in a plain pool, as root on the host, the same attach succeeds."""
    from arledger.execution.pool import ReplayPool
    from arledger.execution.sandbox import Sandbox

    store = open_store(f"embedded:{tmp_path / 'store'}")
    # trained in-process, where its parent is pytest's own: only a worker tries to attach
    exp = _digits_with(tmp_path, "ptracer", PTRACER, "_attach_to_parent",
                       when="'runner/worker' in ' '.join(__import__('sys').argv)")
    run = run_experiment(RunOptions(exp, tmp_path / "run", steps=1, segment_steps=1, seed=1, sandbox=False),
                         store=store)
    box = Sandbox(Limits_for_test(), backend="bwrap")
    with box.pool_executor() as ex:
        job = replay(run.manifest, ReplayOptions(store=store, workdir=tmp_path / "sandboxed", executor=ex,
                                                 harness_executor=ex))
        assert replay_segment(job, 0).status == "match"
    if os.geteuid() == 0:
        with PoolExecutor(ReplayPool()) as ex:
            job = replay(run.manifest, ReplayOptions(store=store, workdir=tmp_path / "plain", executor=ex))
            assert replay_segment(job, 0).status == "mismatch", "the control: root on the host may attach"
