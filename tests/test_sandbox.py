"""The verifier's sandbox contains hostile code: network, files, fork bomb, memory, endless loop.

Each hostile program runs under both backends (bwrap and the rlimit fallback) with
small limits; the test asserts what the program could NOT do and how the result is
reported. A backend that cannot run on this machine fails the test (CI installs
bubblewrap through `make setup`); nothing is skipped silently.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from arledger.execution import kernels
from arledger.execution.limits import Limits
from arledger.execution.sandbox import available_backend, Sandbox

LIMITS = Limits(cpu_seconds=5, wall_seconds=15, memory_bytes=1 << 30,
                       file_size_bytes=8 << 20, max_processes=32)


@pytest.fixture(params=["bwrap", "rlimit"])
def sandbox(request) -> Sandbox:
    return Sandbox(LIMITS, backend=request.param)


def _run(sandbox: Sandbox, tmp_path: Path, code: str):
    script = tmp_path / "hostile.py"
    script.write_text(textwrap.dedent(code))
    scratch = tmp_path / "scratch"
    return sandbox.run([sys.executable, str(script)], scratch=scratch, readable=[script]), scratch


def test_auto_backend_prefers_bwrap_here():
    assert available_backend() == "bwrap", "make setup installs bubblewrap; it should work here"


def test_honest_program_runs_and_writes_scratch(sandbox, tmp_path):
    res, scratch = _run(sandbox, tmp_path, """
        import os
        open(os.path.join(os.getcwd(), "out.txt"), "w").write("fine")
        print("done")
    """)
    assert res.ok, res.describe() + res.stderr
    assert res.stdout.strip() == "done"
    assert (scratch / "out.txt").read_text() == "fine"


def test_network_is_unreachable(sandbox, tmp_path):
    # A real listener on the host's loopback: the sandbox must not reach it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(8)
    t = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    t.start()
    res, _ = _run(sandbox, tmp_path, f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3)
            print("CONNECTED")
        except Exception as exc:
            print("blocked", type(exc).__name__)
    """)
    t.join(10)
    server.close()
    assert "CONNECTED" not in res.stdout
    assert "blocked" in res.stdout, res.stderr
    assert accepted == [False]


def _accept(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
        conn.close()
        return True
    except OSError:
        return False


def test_writing_outside_scratch_is_refused(sandbox, tmp_path):
    # Not under /tmp: bwrap gives the sandbox a private /tmp, so a write there would
    # land in the sandbox's own tmpfs rather than be refused.
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))
    target = outside / "outside.txt"
    res, _ = _run(sandbox, tmp_path, f"""
        try:
            open({str(target)!r}, "w").write("pwned")
            print("WROTE")
        except OSError as exc:
            print("refused", type(exc).__name__)
    """)
    exists = target.exists()
    shutil.rmtree(outside)
    assert not exists
    assert "refused" in res.stdout, res.stdout + res.stderr


def test_secrets_are_not_visible(monkeypatch, tmp_path):
    home = tmp_path / "arhome"
    home.mkdir()
    (home / "key.json").write_text("secret")
    monkeypatch.setenv("ARLEDGER_HOME", str(home))
    monkeypatch.setenv("ARLEDGER_KEY", "0x" + "11" * 32)
    box = Sandbox(LIMITS, backend="bwrap")
    res, _ = _run(box, tmp_path, f"""
        import os
        print("key" if "ARLEDGER_KEY" in os.environ else "nokey")
        print("file" if os.path.exists({str(home / 'key.json')!r}) else "nofile")
    """)
    assert res.stdout.split() == ["nokey", "nofile"], res.stderr


def test_fork_bomb_is_contained(sandbox, tmp_path):
    res, _ = _run(sandbox, tmp_path, """
        import os, time
        children = 0
        try:
            for _ in range(10000):
                if os.fork() == 0:
                    time.sleep(5)
                    os._exit(0)
                children += 1
        except Exception as exc:
            print("stopped", children, type(exc).__name__)
    """)
    words = res.stdout.split()
    assert words and words[0] == "stopped", res.stdout + res.stderr
    assert int(words[1]) < LIMITS.max_processes


def test_memory_bomb_is_contained(sandbox, tmp_path):
    res, _ = _run(sandbox, tmp_path, """
        hog = []
        while True:
            hog.append(bytearray(64 << 20))
    """)
    assert not res.ok
    assert res.violation == "memory", res.describe()


def test_endless_loop_hits_cpu_limit(sandbox, tmp_path):
    res, _ = _run(sandbox, tmp_path, """
        while True:
            pass
    """)
    assert not res.ok
    assert res.violation in ("cpu-time", "wall-time"), res.describe()
    assert res.wall_seconds < LIMITS.wall_seconds + 5


def test_sleeping_program_hits_wall_clock(tmp_path):
    box = Sandbox(Limits(wall_seconds=2), backend="bwrap")
    res, _ = _run(box, tmp_path, "import time; time.sleep(60)")
    assert res.violation == "wall-time"
    assert res.wall_seconds < 10


def test_big_file_hits_file_size_limit(sandbox, tmp_path):
    res, scratch = _run(sandbox, tmp_path, """
        with open("big.bin", "wb") as f:
            for _ in range(64):
                f.write(b"x" * (1 << 20))
                f.flush()
    """)
    assert not res.ok
    assert res.violation == "file-size", res.describe()
    assert (scratch / "big.bin").stat().st_size <= LIMITS.file_size_bytes


def test_held_out_sources_are_hidden_and_only_scratch_is_writable(tmp_path):
    # The host interpreter ships pydoc_data (the charlm corpus): the sandbox must not.
    import pydoc_data.topics

    host_topics = Path(pydoc_data.topics.__file__)
    assert host_topics.is_file()
    box = Sandbox(LIMITS, backend="bwrap")
    res, scratch = _run(box, tmp_path, """
        import os, sys
        try:
            from pydoc_data.topics import topics
            print("imported", len(topics))
        except ImportError as exc:
            print("import-refused", type(exc).__name__)
        stdlib = os.path.dirname(os.__file__)
        visible = os.path.join(stdlib, "pydoc_data", "topics.py")
        print("file-visible" if os.path.exists(visible) else "file-hidden", stdlib)
        for d in ("/", "/tmp", "/dev", "/opt", "/opt/python", "/opt/site", "/opt/src", "/scratch"):
            try:
                with open(os.path.join(d, "probe.txt"), "w") as f:
                    f.write("x")
                print("writable", d)
            except OSError as exc:
                print("readonly", d, type(exc).__name__)
    """)
    assert res.ok, res.describe() + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("import-refused"), res.stdout
    assert lines[1].split() == ["file-hidden", f"/opt/python/lib/python{sys.version_info[0]}.{sys.version_info[1]}"]
    verdicts = dict(reversed(ln.split()[:2]) for ln in lines[2:])
    assert verdicts == {"/": "readonly", "/tmp": "readonly", "/dev": "readonly", "/opt": "readonly",
                        "/opt/python": "readonly", "/opt/site": "readonly", "/opt/src": "readonly",
                        "/scratch": "writable"}, res.stdout
    assert (scratch / "probe.txt").read_text() == "x", "/scratch is the host's scratch dir"
    assert host_topics.is_file(), "hiding binds over the sandbox's view, never the host's file"


def test_identity_is_the_same_on_every_verifier(tmp_path):
    box = Sandbox(LIMITS, backend="bwrap", cpus=1)
    res, _ = _run(box, tmp_path, """
        import json, os, socket
        print(json.dumps({"host": socket.gethostname(), "uid": os.getuid(), "gid": os.getgid(),
                          "cwd": os.getcwd(), "env": dict(os.environ), "proc": sorted(os.listdir("/proc")),
                          "cpus": len(os.sched_getaffinity(0)), "exe": os.path.realpath(__import__("sys").executable),
                          "cpuinfo": open("/proc/cpuinfo").read().count("processor")}))
    """)
    assert res.ok, res.describe() + res.stderr
    seen = json.loads(res.stdout)
    assert seen["host"] == "arledger" and seen["uid"] == seen["gid"] == 65534
    assert seen["cwd"] == "/scratch" and seen["exe"].startswith("/opt/python/")
    assert seen["proc"] == ["cpuinfo"], "no /proc/self, no mountinfo: nothing names a host path"
    assert seen["cpus"] == seen["cpuinfo"] == 1
    from arledger.execution.sandbox import _inner_env

    # a fixed environment, nothing of the verifier's: the sandbox's own, and the CPU kernel pin
    # (by default this process's: the root conftest's avx2 pin; a checker passes the task's)
    assert box.kernel_env == kernels.env_for(kernels.DEFAULT_PIN)
    assert seen["env"] == {**_inner_env("/scratch"), **box.kernel_env, "PWD": "/scratch"}
    assert not any(str(Path.home()) in v or sys.prefix in v for v in seen["env"].values())


def test_every_command_that_runs_claim_code_says_when_it_is_less_than_the_sandbox():
    from arledger.execution.isolation import Isolation, notice

    assert "--no-sandbox" in notice(Isolation.of(sandboxed=False))
    assert "NOT hermetic" in notice(Isolation.of(backend="rlimit"))
    assert notice(Isolation.of(backend="bwrap")) == ""


def test_one_warm_pool_per_policy_and_a_bounded_number_of_them():
    from arledger.execution import isolation

    isolation.close_all()
    a = isolation.Isolation.of(sandboxed=False, limits=Limits(wall_seconds=11))
    first = isolation.executor(a)
    assert isolation.executor(isolation.Isolation.of(sandboxed=False, limits=Limits(wall_seconds=11))) is first
    assert isolation.executor(a, "harness") is not first  # a harness never shares claim code's pool
    others = [isolation.executor(isolation.Isolation.of(sandboxed=False, limits=Limits(wall_seconds=20 + i)))
              for i in range(isolation.MAX_POOLS)]
    assert isolation.executor(a) is not first, "the least recently used pool was stopped"
    assert len(set(map(id, others))) == isolation.MAX_POOLS
    isolation.close_all()


def test_what_a_run_leaves_is_removed_whatever_modes_it_set(tmp_path):
    from arledger.execution.executors import remove_tree

    left = tmp_path / "segment-0001"
    (left / "deep" / "deeper").mkdir(parents=True)
    (left / "deep" / "deeper" / "carried").write_text("for the next request")
    os.chmod(left / "deep" / "deeper", 0)
    os.chmod(left / "deep", 0)
    os.chmod(left, 0)
    remove_tree(left)
    assert not left.exists()


def test_a_workers_answer_is_safe_to_compute_with():
    from arledger.errors import ReplayError
    from arledger.execution.executors import checked_answer

    a = checked_answer({"ok": True, "losses": [10 ** 400, 1.5], "work_ms": 10 ** 400, "flops": 7})
    assert a == {"ok": True, "losses": [None, 1.5], "work_ms": None, "flops": 7}
    with pytest.raises(ReplayError):
        checked_answer([1, 2])


def test_a_request_dir_swapped_for_a_link_is_refused(tmp_path):
    from arledger.errors import ReplayError
    from arledger.execution.executors import InProcessExecutor, WorkRequest

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "out.safetensors").write_bytes(b"the caller's secret")

    def swap(body, directory):  # what code in the worker could do: move its dir away, link another in
        directory.rename(directory.with_name("moved"))
        directory.symlink_to(elsewhere)
        return {"ok": True}

    with InProcessExecutor(swap, root=tmp_path / "root") as ex, ex.run(WorkRequest("segment-0000", {})) as done:
        with pytest.raises(ReplayError, match="replaced"):
            done.read("out.safetensors")
