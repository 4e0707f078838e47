"""Hostile train.py variants, replayed through the verifier's sandbox, are contained and reported.

Each variant is the digits template with an attack in ``train_step`` that fires only
inside a replay worker (so the trainer's own run completes and publishes a normal
manifest). The verifier's replay of segment 0 then runs the attack inside the
sandbox. Asserted: what the attack could not do, and that the replay is reported as
a failed replay (ReplayError naming the limit) or a normal verdict, never a crash
or a hang of the verifier.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from arledger.runner import RunOptions, replay, replay_segment, run_experiment
from arledger.runner.replay import ReplayError
from arstore import EmbeddedStore
from arverifier.sandbox import Sandbox, SandboxLimits

DIGITS = Path(__file__).resolve().parents[1] / "client" / "arledger" / "templates" / "digits"
# Tight enough that the bombs end soon (an honest 2-step digits replay needs ~3 s of CPU).
LIMITS = SandboxLimits(cpu_seconds=10, wall_seconds=20, memory_bytes=3 << 30,
                       file_size_bytes=64 << 20, max_processes=32)

ATTACKS = {
    "network": """
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"stolen")
        except OSError as exc:
            open("attack-refused", "a").write(type(exc).__name__ + " ")  # its request dir
    """,
    "write_outside": """
        try:
            open({outside!r}, "w").write("pwned")
        except OSError as exc:
            open("attack-refused", "a").write(type(exc).__name__ + " ")  # its request dir
    """,
    "fork_bomb": """
        import os
        while True:
            os.fork()
    """,
    "memory_bomb": """
        hog = []
        while True:
            hog.append(bytearray(256 << 20))
    """,
    "endless_loop": """
        while True:
            pass
    """,
}


def _hostile_experiment(tmp: Path, attack: str) -> Path:
    exp = tmp / "exp"
    shutil.copytree(DIGITS, exp, ignore=shutil.ignore_patterns("__pycache__"))
    train = exp / "train.py"
    body = "\n".join("        " + line for line in attack.strip("\n").splitlines())
    train.write_text(train.read_text() + f'''

_honest_train_step = train_step


def train_step(model, optimizer, batch):
    import sys
    if "replay_worker" in " ".join(sys.argv):
{body}
    return _honest_train_step(model, optimizer, batch)
''')
    return exp


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    got: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                got.append(conn.recv(100) or b"connected")
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield server.getsockname()[1], got
    stop.set()
    t.join(2)
    server.close()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_hostile_train_py_is_contained(name, tmp_path, listener):
    port, received = listener
    outside_dir = Path(tempfile.mkdtemp(dir="/var/tmp"))
    outside = outside_dir / "pwned.txt"
    attack = ATTACKS[name].replace("{port}", str(port)).replace("{outside!r}", repr(str(outside)))
    exp = _hostile_experiment(tmp_path, attack)
    store = EmbeddedStore(tmp_path / "store")
    run = run_experiment(RunOptions(experiment_dir=exp, out=tmp_path / "run", steps=4, segment_steps=2,
                                    seed=1, threads=1), store=store)
    box = Sandbox(LIMITS, backend="bwrap")
    # The verifier's files come from the store (no run_dir), claim code runs in the sandbox.
    kept = tmp_path / "kept-attack-refused"
    with box.executor() as ex:
        discard = ex._discard

        def keep_note(directory: Path) -> None:  # the request dir goes; what the attack noted stays
            if (directory / "attack-refused").is_file():
                shutil.copyfile(directory / "attack-refused", kept)
            discard(directory)

        ex._discard = keep_note
        job = replay(run.manifest, store=store, workdir=tmp_path / "replay", executor=ex, limits=LIMITS)
        try:
            result = replay_segment(job, 0)
            outcome = result.status
        except ReplayError as exc:
            outcome = f"failed: {exc}"
        refusals = kept.read_text().split() if kept.is_file() else []
    try:
        if name == "network":
            assert received == [], "the sandboxed code reached a host socket"
            assert refusals, "the attack never ran in the replay"
            assert outcome == "match"  # attack failed, honest step ran, replay still agrees
        elif name == "write_outside":
            assert not outside.exists()
            assert refusals, "the attack never ran in the replay"
            assert outcome == "match"
        elif name == "fork_bomb":
            # the pids cgroup caps the bomb; forks that keep failing end in the process-count
            # word or, while surviving children hold the worker's stdout, on the wall clock
            assert outcome.startswith("failed") and ("process-count" in outcome or "wall-time" in outcome), outcome
        elif name == "memory_bomb":
            assert outcome.startswith("failed") and "memory" in outcome.lower(), outcome
        elif name == "endless_loop":
            assert outcome.startswith("failed") and ("cpu-time" in outcome or "wall-time" in outcome), outcome
    finally:
        shutil.rmtree(outside_dir, ignore_errors=True)
