"""Creating a task: build and pin its TaskSpec, then create it on chain with its terms.

A task request (``artrain task create --spec FILE``) is a small JSON file::

    {
      "experiment": "client/arledger/templates/charlm",   # or "template": "charlm"
      "name": "charlm-pydoc", "description": "...",
      "steps": 400, "segment_steps": 25, "threads": 1,
      "verification": {"mode": "exact"},
      "sampling": {"random_segments": 1, "suspicious_segments": 1, "suspicion": "growth"},
      "min_improvement": 0.01,                            # metric units (bits per char)
      "budget": {"flops_per_step": 2000000000},           # work limits [default: measured on the baseline]
      "cpu_kernels": "avx2",                              # kernel set every party runs (default|avx2|avx512)
      "terms": {"reward": "1eth", "pool": "3eth", "verifier_fee": "0.01eth",
                "min_trainer_stake": "0.1eth", "min_verifier_stake": "0.5eth",
                "challenge_bond": "0.05eth", "quorum": 2,
                "reveal_window": 3600, "challenge_window": 600, "voting_window": 300}
    }

Every field has a default; command-line flags override the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from arledger import taskspec
from arledger.chain.ledger import Ledger, TaskParams, TxResult
from arledger.chain.units import parse_amount
from arledger.errors import ConfigError

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class TaskTerms:
    """The on-chain terms of a task (amounts in wei, windows in seconds)."""

    reward: int = 10**18  # per accepted improvement, capped by the pool
    pool: int = 3 * 10**18  # funded at creation
    verifier_fee: int = 10**16  # per confirming verifier of an accepted claim
    min_trainer_stake: int = 10**17
    min_verifier_stake: int = 5 * 10**17
    challenge_bond: int = 5 * 10**16
    quorum: int = 2
    reveal_window: int = 3600
    challenge_window: int = 600
    voting_window: int = 300

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskTerms":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"terms: unknown field(s) {', '.join(sorted(unknown))}")
        out = {}
        for k, v in d.items():
            if k in ("quorum", "reveal_window", "challenge_window", "voting_window"):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ConfigError(f"terms.{k}: must be a positive integer, got {v!r}")
                out[k] = v
            else:
                out[k] = parse_amount(v, f"terms.{k}")
        return cls(**out)


@dataclass(frozen=True)
class TaskRequest(taskspec.SpecRequest):
    """A task to create: what its spec is built from (``taskspec.SpecRequest``) and its terms."""

    terms: TaskTerms = TaskTerms()


def experiment_dir_of(ref: str) -> Path:
    """A template name (``charlm``) or a path to an experiment dir."""
    p = Path(ref)
    if p.is_dir():
        return p
    if (TEMPLATES / ref).is_dir():
        return TEMPLATES / ref
    raise ConfigError(f"experiment: {ref!r} is neither a directory nor a template "
                      f"({', '.join(sorted(t.name for t in TEMPLATES.iterdir() if (t / 'train.py').exists()))})")


def load_request(path: Path) -> TaskRequest:
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: task request file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    ref = d.pop("experiment", None) or d.pop("template", None)
    if not ref:
        raise ConfigError(f"{path}: needs 'experiment' (a directory) or 'template' (a template name)")
    base = Path(path).parent
    exp = experiment_dir_of(str(base / ref) if (base / ref).is_dir() else ref)
    terms = TaskTerms.from_dict(d.pop("terms", {}) or {})
    allowed = {f.name for f in fields(TaskRequest)} - {"experiment_dir", "terms", "harness_dir"}
    unknown = set(d) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    return TaskRequest(experiment_dir=exp, terms=terms, **d)


def create_task(ledger: Ledger, store: Any, req: TaskRequest) -> tuple[int, taskspec.TaskSpec, str, TxResult]:
    """Pin the data set, the baseline code and the TaskSpec; create the task. Returns (id, spec, spec CID, tx)."""
    spec = taskspec.build_taskspec(req, store)
    spec_cid = taskspec.publish(store, spec)
    t = req.terms
    params = TaskParams(spec_digest=spec.digest(), reward_per_improvement=t.reward, verifier_fee=t.verifier_fee,
                        min_trainer_stake=t.min_trainer_stake, min_verifier_stake=t.min_verifier_stake,
                        challenge_bond=t.challenge_bond, quorum=t.quorum, reveal_window=t.reveal_window,
                        challenge_window=t.challenge_window, voting_window=t.voting_window,
                        min_improvement=spec.min_improvement_micro, baseline_loss=spec.baseline_loss_micro)
    tx = ledger.create_task(params, value=t.pool)
    return int(tx.event("TaskCreated")["taskId"]), spec, spec_cid, tx


def with_overrides(req: TaskRequest, **over: Any) -> TaskRequest:
    terms = {k: v for k, v in over.items() if k in {f.name for f in fields(TaskTerms)} and v is not None}
    rest = {k: v for k, v in over.items() if k not in terms and v is not None}
    return replace(req, terms=replace(req.terms, **terms), **rest)
