"""How fast the command lines answer: whole processes, from start to exit.

    python -m bench.start_bench              # 7 runs of each command, the median
    python -m bench.start_bench --runs 3

A fresh anvil with the ledger and one digits task (``tasks.create_task``, as `artrain task
create` makes it, its store and deployment file in a temporary ``ARLEDGER_HOME``), then each
command started as a user starts it (the installed ``artrain`` / ``arverify``). Target (issue 22): every command that
does not train answers in under 1 s; ``artrain --help`` too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from arledger import tasks
from arledger.devnet import LocalChain
from arstore import EmbeddedStore

TARGET_S = 1.0
BIN = Path(sys.executable).parent
COMMANDS = [
    ["artrain", "--help"], ["artrain", "submit", "--help"], ["artrain", "agent", "--help"],
    ["artrain", "task", "create", "--help"], ["arverify", "--help"], ["arverify", "watch", "--help"],
    ["artrain", "devnet", "status"], ["artrain", "task", "show", "1"], ["artrain", "best", "--task", "1"],
    ["artrain", "claims", "--task", "1"], ["artrain", "withdraw", "--dev-account", "2"],
]


def _task(chain: LocalChain, home: Path) -> None:
    req = tasks.TaskRequest(experiment_dir=tasks.experiment_dir_of("digits"), steps=20, segment_steps=10,
                            time_home=home)
    tasks.create_task(chain.ledger, EmbeddedStore(home / "store"), req)


def _median_wall(cmd: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # the first warms the file cache and is not counted
        t0 = time.perf_counter()
        subprocess.run([str(BIN / cmd[0]), *cmd[1:]], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="arledger-start-bench-"))
    try:
        with LocalChain.start() as chain:
            _task(chain, home)
            dep = replace(chain.deployment(with_keys=True), pid=chain.anvil.proc.pid)  # `devnet status` finds it
            (home / "deployment.json").write_bytes(dep.to_json())
            env = {**os.environ, "ARLEDGER_HOME": str(home)}
            env.pop("ARLEDGER_RPC_URL", None)
            env.pop("ARLEDGER_LEDGER", None)
            missed = 0
            print(f"{'command':40} {'median wall s':>14}   target < {TARGET_S} s")
            for cmd in COMMANDS:
                wall = _median_wall(cmd, env, args.runs)
                missed += wall >= TARGET_S
                print(f"{' '.join(cmd):40} {wall:14.3f}   {'PASS' if wall < TARGET_S else 'MISS'}", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
