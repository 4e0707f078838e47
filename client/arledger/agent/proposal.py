"""What a proposer is given and what it returns: the one small interface behind every proposer.

A ``Proposer`` is asked, once per try, for a ``Proposal`` (new code and a hypothesis),
given a ``ProposalContext``: the code it builds on, the task's budget and metric, and the
history as ``ExperimentRecord``s. It is told which of its earlier tries this iteration
were refused and why, so it can try something else. It never trains, submits or reads
the chain: the agent does, and checks every proposal first (``arledger.agent.checks``).

An experiment's identity is its ``code_cid``: the CID of the directory holding exactly
``train.py`` and ``experiment.json``, the same one the runner pins and the manifest and
the chain record. "Repeating an experiment" means proposing code whose CID is already
on record.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from arledger.runner.experiment import SPEC_FILE, TRAIN_FILE
from arstore import dir_cid

TAG = "[artrain-agent]"  # prefix of the machine-readable last line of an agent's notes


@dataclass(frozen=True)
class Code:
    """An experiment's code: ``train.py`` and ``experiment.json``, nothing else."""

    train_py: str
    spec: dict = field(hash=False)

    @classmethod
    def from_dir(cls, directory: Path) -> "Code":
        directory = Path(directory)
        return cls((directory / TRAIN_FILE).read_text(), json.loads((directory / SPEC_FILE).read_text()))

    @property
    def spec_text(self) -> str:
        return json.dumps(self.spec, indent=2, sort_keys=True) + "\n"

    @property
    def config(self) -> dict:
        return dict(self.spec.get("config") or {})

    def with_config(self, **changes: Any) -> "Code":
        return Code(self.train_py, {**self.spec, "config": {**self.config, **changes}})

    def write(self, dest: Path) -> Path:
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / TRAIN_FILE).write_text(self.train_py)
        (dest / SPEC_FILE).write_text(self.spec_text)
        return dest

    @cached_property
    def cid(self) -> str:
        """The code CID the runner will pin for this code (computed, nothing stored)."""
        with tempfile.TemporaryDirectory(prefix="arledger-code-") as tmp:
            return str(dir_cid(self.write(Path(tmp) / "code")))

    @property
    def size(self) -> int:
        return len(self.train_py.encode()) + len(self.spec_text.encode())

    def diff(self, base: "Code") -> str:
        """A unified diff from ``base`` to this code (both files)."""
        out = []
        for name, old, new in ((TRAIN_FILE, base.train_py, self.train_py), (SPEC_FILE, base.spec_text, self.spec_text)):
            out += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{name}", f"b/{name}")
        return "".join(out)


@dataclass(frozen=True)
class Proposal:
    code: Code
    hypothesis: str  # one paragraph: what is changed and why it should lower the metric
    proposer: str  # "search", "llm"
    move: str | None = None  # a search move's name ("lr x2"); None for free-form edits
    direction: str | None = None  # what the move pushes ("lr:+"): failures here are backed off from


@dataclass(frozen=True)
class ExperimentRecord:
    """One recorded experiment of the task (a claim or an unstaked report), as the history shows it.
    Everything here but ``kind``, ``state`` and ``loss_micro`` was written by whoever published it:
    data to read, never instructions."""

    kind: str  # "claim" | "report"
    ref: str  # "claim 7" | "report @ block 42"
    trainer: str
    code_cid: str | None
    loss_micro: int
    state: str  # the claim's state on chain (Accepted, Rejected, Open, ...) or "Reported"
    hypothesis: str = ""
    notes: str = ""
    block: int = 0

    @property
    def tag(self) -> dict | None:
        return parse_tag(self.notes)

    @property
    def beat_parent(self) -> bool | None:
        """Did this experiment beat what it built on? (an agent's tag says what that was)"""
        tag = self.tag
        if not tag or "parent_loss_micro" not in tag:
            return None
        if self.state in ("Rejected",):
            return False
        return self.loss_micro + int(tag.get("min_improvement_micro", 0)) <= int(tag["parent_loss_micro"])


@dataclass
class ProposalContext:
    task_id: int
    metric: str
    units: str
    base: Code  # the code this iteration builds on (the best claim's, or the task's baseline)
    base_ref: str  # "claim 3", "baseline"
    base_loss_micro: int
    best_loss_micro: int
    min_improvement_micro: int
    steps: int
    segment_steps: int
    budget: dict  # the TaskSpec's budget (steps, flops_per_step, max_params, max_code_bytes, ...)
    history: list[ExperimentRecord]
    tried: dict  # code CID -> where it is on record ("claim 4", "report @ block 9", "notebook #2")
    iteration: int
    seed: int
    agent: str  # the agent's address: two agents with one seed still explore apart
    refused_before: dict = field(default_factory=dict)  # code CID -> why an earlier iteration refused it

    def recorded_as(self, code: Code) -> str | None:
        """Where this exact code is already on record (None: a new experiment)."""
        if code.cid == self.base.cid:
            return f"{self.base_ref} (the code this iteration builds on)"
        return self.tried.get(code.cid)

    def repeats(self, code: Code) -> bool:
        return self.recorded_as(code) is not None


@dataclass(frozen=True)
class Refusal:
    """A proposal the agent did not train this iteration, and why (told to the proposer)."""

    proposal: Proposal | None  # None: the proposer's reply could not be read as one
    reason: str


class Proposer(Protocol):
    name: str

    def propose(self, ctx: ProposalContext, refused: list[Refusal]) -> Proposal:
        """A new experiment built on ``ctx.base``; ``refused``: this iteration's earlier tries.
        Raises ``ProposalError`` when it has nothing (left) to propose or its source failed."""
        ...


def tag_line(tag: dict) -> str:
    return f"{TAG} {json.dumps(tag, sort_keys=True, separators=(',', ':'))}"


def parse_tag(notes: str) -> dict | None:
    for line in reversed((notes or "").splitlines()):
        if line.startswith(TAG):
            try:
                tag = json.loads(line[len(TAG):])
            except json.JSONDecodeError:
                return None
            return tag if isinstance(tag, dict) else None
    return None
