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
from types import SimpleNamespace

import pytest

from arledger.agent import checks
from arledger.agent.proposal import Code, Proposal
from arledger.errors import ArledgerError
from arledger.execution import isolation
from arledger.execution.limits import Limits
from arledger.execution.sandbox import Sandbox
from arledger.protocol import replay, replay_segment, ReplayOptions, run_experiment, RunOptions
from arledger.protocol.replay import ReplayError
from arstore import EmbeddedStore
from tests.test_agent_proposers import context

DIGITS = Path(__file__).resolve().parents[1] / "client" / "arledger" / "templates" / "digits"
# Tight enough that the bombs end soon (an honest 2-step digits replay needs ~3 s of CPU).
LIMITS = Limits(cpu_seconds=10, wall_seconds=20, memory_bytes=3 << 30,
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
    if "runner/worker" in " ".join(sys.argv):  # a worker: a verifier's replay, not the trainer's run
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
                                    seed=1, threads=1, sandbox=False), store=store)  # the trainer: no attack
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
        job = replay(run.manifest, ReplayOptions(store=store, workdir=tmp_path / "replay", executor=ex, limits=LIMITS))
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


# -- a worker's output pointing back at the trainer's files -------------------------------------

# At import, train.py replaces the worker's own checkpoint writer (it shares the worker's process):
# every "checkpoint" it writes is a symlink to a file of the caller's (the trainer's keystore,
# here a secret beside it), which a caller that followed it would read, hash, pin and publish,
# and hand back to the next request as its start checkpoint.
LINK_OUT = '''
import os as _os

import arledger.checkpoint as _ckpt


def _link_instead(path, data):
    _os.symlink({target!r}, path)


_ckpt.atomic_write = _link_instead
'''


def test_a_checkpoint_that_links_to_the_trainers_files_is_refused(tmp_path):

    secret = tmp_path / "home" / "keystore.json"
    secret.parent.mkdir()
    secret.write_text("the trainer's key: not for IPFS")
    exp = tmp_path / "exp"
    shutil.copytree(DIGITS, exp, ignore=shutil.ignore_patterns("__pycache__"))
    (exp / "train.py").write_text((exp / "train.py").read_text() + LINK_OUT.replace("{target!r}", repr(str(secret))))
    store = EmbeddedStore(tmp_path / "store")
    with pytest.raises(ArledgerError, match="not a plain file of its own"):
        run_experiment(RunOptions(experiment_dir=exp, out=tmp_path / "run", steps=2, segment_steps=1, seed=1),
                       store=store)
    assert not list((tmp_path / "run" / "checkpoints").glob("*.safetensors")), "nothing of the secret was kept"
    # the agent's checks (build, one step) run the same code before any training
    code = Code.from_dir(exp)
    budget = SimpleNamespace(work_budget=SimpleNamespace(max_code_bytes=None))
    train = {"train": next((tmp_path / "run" / "data").iterdir())}
    refused = checks.problems(Proposal(code, "h", "test"), context(Code.from_dir(DIGITS)), budget, train, 1,
                              isolation.executor(isolation.Isolation.of()))
    assert refused and "not a plain file of its own" in refused[0], refused
