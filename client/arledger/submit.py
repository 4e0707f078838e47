"""Submitting a finished run as a claim: check, pin, commit, reveal — resumable.

The order is chosen so that nothing is spent on a run that cannot pass:

1. the run's manifest is loaded (validated) and checked against the task's TaskSpec
   (budget, segment length, data, metric, environment) and the chain's task state;
2. the claim manifest is the run's manifest with ``task_id``, ``parent`` and
   ``trainer`` filled in (copy protection: it names its trainer); its digest is what
   goes on chain;
3. code, every checkpoint, the final weights and the manifest are added to the store
   and pinned, each CID re-checked against the manifest;
4. ``submission.json`` in the run dir records salt, commitment and progress BEFORE
   each transaction is sent, so a crash between commit and reveal is finished by
   running the same command again: the chain (``commitmentInfo``) says whether the
   commit or the reveal already happened, and nothing is committed twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from arledger import manifest as mf, taskspec
from arledger.checkpoint import atomic_write
from arledger.errors import SubmitError

STATE_FILE = "submission.json"
CLAIM_MANIFEST = "claim-manifest.json"


@dataclass
class Submission:
    claim_id: int
    task_id: int
    parent_id: int
    manifest_cid: str
    code_cid: str
    weights_cid: str
    claimed_loss: int
    stake: int
    commitment: str
    commit_tx: str | None
    reveal_tx: str | None
    gas: dict[str, int] = field(default_factory=dict)
    resumed: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def claim_manifest(m: mf.Manifest, task_id: int, parent_id: int, trainer: str) -> mf.Manifest:
    return replace(m, task_id=task_id, parent=parent_id or None, trainer=trainer)


def pin_run(store: Any, run_dir: Path, m: mf.Manifest, claim_bytes: bytes,
            progress: Callable[[str], None] = lambda _: None) -> str:
    """Add code, checkpoints, weights and the claim manifest; returns the manifest CID."""
    from arledger.runner.loop import ckpt_path

    code = str(store.add_dir(run_dir / "code"))
    if code != m.code_cid:
        raise SubmitError(f"{run_dir / 'code'}: CID {code} differs from the manifest's code_cid {m.code_cid}")
    progress(f"code {code}")
    for b in m.boundaries:
        path = ckpt_path(run_dir, b.index)
        if not path.is_file():
            raise SubmitError(f"{path}: missing (checkpoint {b.index} of the manifest)")
        cid = str(store.add_file(path))
        if cid != b.checkpoint_cid:
            raise SubmitError(f"{path}: CID {cid} differs from the manifest's {b.checkpoint_cid}")
        store.pin(cid)
        progress(f"checkpoint {b.index} {cid}")
    weights = str(store.add_file(run_dir / "final.safetensors"))
    if weights != m.final_weights_cid:
        raise SubmitError(f"{run_dir / 'final.safetensors'}: CID {weights} differs from the manifest's")
    store.pin(weights)
    progress(f"weights {weights}")
    cid = str(store.add_bytes(claim_bytes))
    store.pin(cid)
    progress(f"manifest {cid}")
    return cid


def submit_run(ledger: Any, store: Any, run_dir: Path, task_id: int, *, parent_id: int | None = None,
               stake: int | None = None, progress: Callable[[str], None] = lambda _: None) -> Submission:
    """Check, pin, commit, wait a block, reveal. Safe to run again after a crash."""
    from arstore import cid_to_bytes, cid_to_digest

    run_dir = Path(run_dir)
    state_path = run_dir / STATE_FILE
    m = mf.load(run_dir / "manifest.json")
    task = ledger.task(task_id)
    spec = taskspec.fetch(store, task.spec_digest)
    problems = taskspec.problems_with(m, spec) + taskspec.kernel_problems(m, spec)
    if problems:
        raise SubmitError(f"run {run_dir} does not meet task {task_id}: " + "; ".join(problems))
    if parent_id is None:
        parent_id = ledger.best_claim(task_id)[0]
    stake = task.min_trainer_stake if stake is None else int(stake)
    if stake < task.min_trainer_stake:
        raise SubmitError(f"stake: {stake} wei is below the task's minimum trainer stake {task.min_trainer_stake}")
    trainer = ledger.account_address

    state = _load_state(state_path)
    if state and (state["task_id"] != task_id or state["trainer"].lower() != trainer.lower()):
        raise SubmitError(f"{state_path}: this run was already submitted to task {state['task_id']} by "
                          f"{state['trainer']}; copy the run dir to submit it elsewhere")
    claim_m = claim_manifest(m, task_id, state["parent_id"] if state else parent_id, trainer)
    claim_bytes = mf.dumps(claim_m)
    atomic_write(run_dir / CLAIM_MANIFEST, claim_bytes)
    manifest_cid = pin_run(store, run_dir, m, claim_bytes, progress)
    digest = hashlib.sha256(claim_bytes).digest()
    assert cid_to_digest(manifest_cid) == digest
    code_cid_bytes = cid_to_bytes(m.code_cid)
    merkle_root = bytes.fromhex(m.merkle_root[2:])
    loss = m.evaluation.value_micro

    if not state:
        state = {"task_id": task_id, "parent_id": parent_id, "trainer": trainer, "stake": stake,
                 "salt": "0x" + os.urandom(32).hex(), "manifest_cid": manifest_cid, "stage": "new"}
    salt = bytes.fromhex(state["salt"][2:])
    commitment = ledger.compute_commitment(trainer, task_id, state["parent_id"], code_cid_bytes, digest,
                                           merkle_root, m.segments, loss, salt)
    state["commitment"] = "0x" + commitment.hex()
    _save_state(state_path, state)

    gas: dict[str, int] = dict(state.get("gas", {}))
    resumed = state["stage"] != "new"
    info = ledger.commitment_info(commitment)
    if info.block_number == 0:
        progress("commit")
        tx = ledger.commit(commitment)
        state.update(stage="committed", commit_tx=tx.tx_hash)
        gas["commit"] = tx.gas_used
        state["gas"] = gas
        _save_state(state_path, state)
        info = ledger.commitment_info(commitment)
    if not info.revealed:
        ledger.wait_for_block(info.block_number + 1)
        progress("reveal")
        tx = ledger.reveal(task_id, state["parent_id"], code_cid_bytes, digest, merkle_root, m.segments, loss,
                           salt, value=state["stake"])
        claim_id = int(tx.event("ClaimRevealed")["claimId"])
        state.update(stage="revealed", reveal_tx=tx.tx_hash, claim_id=claim_id)
        gas["reveal"] = tx.gas_used
        state["gas"] = gas
        _save_state(state_path, state)
    elif "claim_id" not in state:
        # Revealed by an earlier run that died before writing it down: ask the chain.
        ev = ledger.find_reveal(commitment, trainer)
        state.update(stage="revealed", claim_id=int(ev.args["claimId"]), reveal_tx=ev.tx_hash)
        _save_state(state_path, state)
    return Submission(claim_id=state["claim_id"], task_id=task_id, parent_id=state["parent_id"],
                      manifest_cid=manifest_cid, code_cid=m.code_cid, weights_cid=m.final_weights_cid,
                      claimed_loss=loss, stake=state["stake"], commitment=state["commitment"],
                      commit_tx=state.get("commit_tx"), reveal_tx=state.get("reveal_tx"), gas=gas,
                      resumed=resumed)


def _load_state(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SubmitError(f"{path}: unreadable ({exc}); move it away only if nothing was committed") from exc


def _save_state(path: Path, state: dict) -> None:
    state["updated"] = int(time.time())
    atomic_write(path, json.dumps(state, sort_keys=True, indent=1).encode())
