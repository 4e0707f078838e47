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
                "reveal_window": 3600, "challenge_window": 600, "voting_window": 300,
                "rounds": 3, "round_length": 86400, "open_grace": 3600, "sponsor_bond": "1eth"},
      "heldout": "private/heldout.txt"                    # sealed evaluation (docs/sealed-evaluation.md)
    }

Every field has a default; command-line flags override the file.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from arledger import sealed, taskbuild, taskspec
from arledger.chain.ledger import Ledger, SealParams, TaskParams, TxResult
from arledger.chain.units import format_amount, parse_amount
from arledger.errors import ConfigError
from arledger.harness import load_harness
from arledger.protocol import artifacts
from arledger.protocol.shard import heldout_split

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
    # sealed evaluation (with TaskRequest.heldout): one shard per round, opened after it
    rounds: int = 3
    round_length: int = 86400
    open_grace: int = 3600  # seconds after a round closes within which its shard must be opened
    sponsor_bond: int = 10**18  # held against missed openings, apart from the pool

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskTerms":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"terms: unknown field(s) {', '.join(sorted(unknown))}")
        out = {}
        for k, v in d.items():
            if k in ("quorum", "reveal_window", "challenge_window", "voting_window", "rounds", "round_length",
                     "open_grace"):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ConfigError(f"terms.{k}: must be a positive integer, got {v!r}")
                out[k] = v
            else:
                out[k] = parse_amount(v, f"terms.{k}")
        return cls(**out)


@dataclass(frozen=True)
class TaskRequest(taskbuild.SpecRequest):
    """A task to create: what its spec is built from (``taskbuild.SpecRequest``) and its terms;
    ``heldout``: the sponsor's private data, which makes the task sealed (``arledger.sealed``)."""

    terms: TaskTerms = TaskTerms()
    heldout: Path | None = None
    sealed_dir: Path | None = None  # where the shards are kept [default: $ARLEDGER_HOME/sealed]


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
    if d.get("heldout"):
        d["heldout"] = base / d["heldout"]
    allowed = {f.name for f in fields(TaskRequest)} - {"experiment_dir", "terms", "harness_dir", "sealed_dir",
                                                       "time_home"}
    unknown = set(d) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    return TaskRequest(experiment_dir=exp, terms=terms, **d)


TASK_GAS = 400_000  # gas createTask / createSealedTask take, with room (docs/gas.md: 187k / 243k)


def check_funds(ledger: Ledger, req: TaskRequest) -> list[str]:
    """The sponsor's funds against what the task will lock (the pool, a sealed task's bond, gas),
    refused before any slow work (the data set, the baseline); returns warnings about the terms."""
    t = req.terms
    value = t.pool + (t.sponsor_bond if req.heldout else 0)
    gas = ledger.rpc.gas_price() * TASK_GAS
    balance = ledger.rpc.balance(ledger.account_address)
    if balance < value + gas:
        what = f"the pool {format_amount(t.pool)}" + (f" and the sponsor bond {format_amount(t.sponsor_bond)}"
                                                      if req.heldout else "")
        raise ConfigError(f"funds: the sponsor {ledger.account_address} holds {format_amount(balance)}, less than "
                          f"{what} plus gas (about {format_amount(gas)})")
    if t.reward > t.pool:
        return [f"warning: the reward {format_amount(t.reward)} is more than the pool {format_amount(t.pool)}: the "
                "first improvement is paid what the pool holds and the next ones nothing (raise --pool)"]
    return []


def create_task(ledger: Ledger, store: Any, req: TaskRequest) -> tuple[int, taskspec.TaskSpec, str, TxResult]:
    """Pin the data set, the baseline code and the TaskSpec; with ``req.heldout``, cut and keep the
    sealed shards (nothing of them leaves this machine); create the task. Returns (id, spec, spec
    CID, tx). Everything that can fail off chain fails before the one transaction, and funds
    before any slow work."""
    check_funds(ledger, req)
    spec = taskbuild.build_taskspec(req, store)
    sealed_set = seal_heldout(spec, store, req.heldout, req.terms.rounds, req.sealed_dir) if req.heldout else None
    spec_cid = taskspec.publish(store, spec)
    t = req.terms
    params = TaskParams(spec_digest=spec.digest(), reward_per_improvement=t.reward, verifier_fee=t.verifier_fee,
                        min_trainer_stake=t.min_trainer_stake, min_verifier_stake=t.min_verifier_stake,
                        challenge_bond=t.challenge_bond, quorum=t.quorum, reveal_window=t.reveal_window,
                        challenge_window=t.challenge_window, voting_window=t.voting_window,
                        min_improvement=spec.min_improvement_micro, baseline_loss=spec.baseline_loss_micro)
    if sealed_set is None:
        tx = ledger.create_task(params, value=t.pool)
    else:
        seal = SealParams(shard_root=sealed_set.root, rounds=t.rounds, round_length=t.round_length,
                          open_grace=t.open_grace, sponsor_bond=t.sponsor_bond)
        tx = ledger.create_sealed_task(params, seal, value=t.pool + t.sponsor_bond)
    return int(tx.event("TaskCreated")["taskId"]), spec, spec_cid, tx


def seal_heldout(spec: taskspec.TaskSpec, store: Any, heldout: Path, rounds: int,
                 home: Path | None = None) -> sealed.SealedSet:
    """The sponsor's sealed set for ``spec``: ``heldout`` cut into ``rounds`` shards in the format of
    the task's held-out split, each loaded and batched by the task's harness (the sponsor's own
    code, pinned in the spec) before anything goes on chain."""
    split = heldout_split(spec.datasets, spec.train_splits)
    with tempfile.TemporaryDirectory(prefix="arledger-seal-") as tmp:
        h = load_harness(artifacts.fetch_dir(store, spec.harness_cid, Path(tmp) / "harness"))

        def check(data: bytes) -> None:
            path = Path(tmp) / "shard"
            path.write_bytes(data)
            loaded = h.module.load({split: path})
            h.module.eval_batch(loaded)
            if h.causal:
                filler = h.module.filler(loaded)
                if len(filler) <= h.module.eval_batch(loaded)[0].shape[1]:
                    raise ValueError("too short: no held-out text is left for the causality check")

        return sealed.create_set(h, split, heldout, rounds, check, home)


def with_overrides(req: TaskRequest, **over: Any) -> TaskRequest:
    terms = {k: v for k, v in over.items() if k in {f.name for f in fields(TaskTerms)} and v is not None}
    rest = {k: v for k, v in over.items() if k not in terms and v is not None}
    return replace(req, terms=replace(req.terms, **terms), **rest)
