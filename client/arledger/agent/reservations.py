"""Experiments being trained right now by agents on this machine: one file per code CID.

The history shows what was published; it cannot show what another agent started ten
seconds ago, and agents that start together from one base tend to pick the same move.
So before training, an agent *reserves* the code CID by creating a file with
``O_CREAT | O_EXCL`` (atomic: exactly one process wins) in a directory every agent of
this user shares (``$ARLEDGER_HOME/agents/reservations/<chain>-<ledger>-task-N/``). A
reservation held by another agent refuses the proposal; the agent's own (a resumed
iteration) does not. Reservations are kept: once trained, the experiment is on record
anyway. Agents on other machines are covered by the history only (docs/agent.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Reservations:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def take(self, code_cid: str, agent: str, iteration: int) -> dict | None:
        """Reserve ``code_cid`` for ``agent``; returns the other holder's record if someone else has it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / code_cid
        record = {"agent": agent.lower(), "iteration": iteration, "time": int(time.time()), "pid": os.getpid()}
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = self.holder(code_cid) or {"agent": "?"}
            return None if holder.get("agent") == agent.lower() else holder
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        return None

    def holder(self, code_cid: str) -> dict | None:
        try:
            return json.loads((self.directory / code_cid).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
