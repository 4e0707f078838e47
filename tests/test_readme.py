"""The README works as written: its session blocks run, in order, as a new user runs them.

Every ```bash block under "## Usage" after the demo, then every ```python block, is run
line by line in a fresh working directory and a fresh ``ARLEDGER_HOME`` against the
devnet its first line starts (on a free port, through ``ARLEDGER_DEVNET_PORT``: the
commands stay literal). A command that fails fails the test with its output; at the end
the outputs must fit together: the claim the README submits is accepted and is the best,
the report is on record, the verifiers were paid. Only the demo (`make demo`, tested by
test_demo.py) and the configuration examples are left out.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from arledger.devnet import free_port

pytestmark = [pytest.mark.chain, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def session_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block from "### A trainer" up to "### Configuration"."""
    body = text[text.index("### A trainer"):text.index("### Configuration")]
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(bash|python)\n(.*?)```", body, re.S)]


def commands(code: str) -> list[str]:
    out = []
    for line in code.splitlines():
        line = line.split(" # ", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def test_the_readme_blocks_are_found():
    blocks = session_blocks(README.read_text())
    langs = [lang for lang, _ in blocks]
    assert langs.count("bash") == 4 and langs.count("python") == 1
    assert commands(blocks[0][1])[0] == "artrain devnet up"


def test_the_readme_session_works_as_written(tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    os.symlink(ROOT / "client", cwd / "client")  # the README's paths are relative to a checkout
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARLEDGER_")}
    env.update(ARLEDGER_HOME=str(tmp_path / "home"), ARLEDGER_DEVNET_PORT=str(free_port()),
               PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}")
    transcript = []

    def run(line: str, lang: str = "bash") -> str:
        argv = ["bash", "-c", line] if lang == "bash" else [sys.executable, "-c", line]
        res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        transcript.append(f"$ {line}\n{res.stdout}{res.stderr}")
        assert res.returncode == 0, "\n".join(transcript)[-6000:]
        return res.stdout

    try:
        for lang, code in session_blocks(README.read_text()):
            if lang == "bash":
                for line in commands(code):
                    run(line)
            else:
                out = run(code, "python")
                assert re.search(r"^\d+ parameters loaded$", out, re.M), out
        # The outputs fit together: steps and budget (the submit passed), quorum and
        # verifiers (it was accepted), time (the window passed and it was finalized).
        status = json.loads(run("artrain status 1 --json"))
        best = json.loads(run("artrain best --task 1 --json"))
        history = json.loads(run("artrain claims --task 1 --json"))
        assert (status["state"], status["confirmations"], status["quorum"]) == ("Accepted", 2, 2), status
        assert best["claim_id"] == 1 and best["loss"] < best["baseline_loss"], best
        assert [r["kind"] for r in history] == ["claim", "report"], history
        assert history[1]["note"] == "100 steps are not enough" and history[1]["loss"] > best["loss"]
        assert (cwd / "best" / "weights.safetensors").is_file()
        # The sealed task: claim 2 was revealed without a loss, scored on round 0's shard against
        # the baseline, and confirmed by a verifier on that shard (the task's quorum is 1).
        sealed = json.loads(run("artrain status 2 --json"))
        assert (sealed["task_id"], sealed["state"], sealed["confirmations"]) == (2, "Open", 1), sealed
        assert sealed["sealed"]["scored"] and sealed["sealed"]["round_state"] == "opened", sealed
        assert sealed["claimed_loss_micro"] < sealed["sealed"]["incumbent_loss_micro"], sealed
    finally:
        subprocess.run(["bash", "-c", "artrain devnet down"], cwd=cwd, env=env, capture_output=True, timeout=60)


def test_commands_split_like_a_shell():
    assert commands("a --x 1   # note\n# comment\n\nb 'c d'\n") == ["a --x 1", "b 'c d'"]
    assert shlex.split(commands("artrain report r --note \"x y\"  # n")[0])[-1] == "x y"
