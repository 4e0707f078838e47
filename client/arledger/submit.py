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
from arledger.chain.ledger import ClaimFields
from arledger.checkpoint import atomic_write
from arledger.errors import ChainError, ContractRevert, SubmitError
from arledger.micro import fmt
from arledger.protocol.artifacts import ckpt_path
from arstore import bytes_cid, cid_to_bytes, cid_to_digest

STATE_FILE = "submission.json"
GAS_MARGIN = 600_000  # gas a commit and a reveal take, with room (docs/gas.md: ~50k + ~160k)
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
               stake: int | None = None, progress: Callable[[str], None] = lambda _: None,
               warn: Callable[[str], None] = lambda _: None) -> Submission:
    """Check, pin, commit, wait a block, reveal. Safe to run again after a crash.

    Everything the contract checks at reveal (the task, the parent, the stake, and the
    budget the verifiers will count) is checked before the commit, so no gas is spent on
    a claim that cannot be revealed. A reveal that still fails leaves ``submission.json``
    as it was: the same command continues once the cause is fixed, and
    ``abandon_submission`` starts over. Flags that disagree with a saved submission are
    an error, never silently replaced by the saved values."""
    run_dir = Path(run_dir)
    state_path = run_dir / STATE_FILE
    m = mf.load(run_dir / "manifest.json")
    task = ledger.task(task_id)
    spec = taskspec.fetch(store, task.spec_digest)
    problems = taskspec.problems_with(m, spec) + taskspec.kernel_problems(m, spec)
    if problems:
        raise SubmitError(f"run {run_dir} does not meet task {task_id}: " + "; ".join(problems))
    trainer = ledger.account_address
    state = _load_state(state_path)
    if state:
        _same_as_saved(state, state_path, task_id, trainer, parent_id, stake)
    else:
        if parent_id is None:
            parent_id = ledger.best_claim(task_id)[0]
        stake = task.min_trainer_stake if stake is None else int(stake)
        _check_before_commit(ledger, task, task_id, parent_id, stake, trainer)
        for line in _warnings(ledger, task, task_id, parent_id, m.evaluation.value_micro):
            warn(line)

    claim_m = claim_manifest(m, task_id, state["parent_id"] if state else parent_id, trainer)
    claim_bytes = mf.dumps(claim_m)
    if state and state.get("manifest_cid") and state["manifest_cid"] != _manifest_cid(claim_bytes):
        raise SubmitError(f"{state_path} belongs to another run than {run_dir / 'manifest.json'} (the run was "
                          f"replaced after it was submitted); `artrain submit {run_dir} --task {task_id} --abandon` "
                          "clears it if it was never revealed")
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
    fields = ClaimFields(task_id, state["parent_id"], code_cid_bytes, digest, merkle_root, m.segments, loss, salt)
    commitment = ledger.compute_commitment(trainer, fields)
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
        try:
            tx = ledger.reveal(fields, value=state["stake"])
        except (ContractRevert, ChainError) as exc:  # a revert, or the node refusing (funds, nonce)
            raise SubmitError(f"reveal failed: {exc}. The commit is saved in {state_path}: fix the cause and run "
                              f"the same command again, or `artrain submit {run_dir} --task {task_id} --abandon` "
                              "to start over") from exc
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


MAX_NOTE_BYTES = 2048  # the contract's MAX_NOTE_BYTES: a longer note reverts


def report_run(ledger: Any, store: Any, run_dir: Path, task_id: int, note: str) -> dict:
    """Publish a finished run as an unstaked experiment report (a failed or non-improving
    experiment belongs in the record too): its manifest and code are pinned, so readers of
    the history can fetch what the report points at."""
    run_dir = Path(run_dir)
    m = mf.load(run_dir / "manifest.json")
    note = note or m.notes or m.hypothesis
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise SubmitError(f"note: {len(note.encode())} bytes, the ledger keeps at most {MAX_NOTE_BYTES}")
    data = mf.dumps(m)
    cid = str(store.add_bytes(data))
    store.pin(cid)
    store.pin(str(store.add_dir(run_dir / "code")))
    digest = hashlib.sha256(data).digest()
    tx = ledger.report(task_id, cid_to_bytes(m.code_cid), digest, m.evaluation.value_micro, note)
    return {"task_id": task_id, "manifest_cid": cid, "manifest_digest": "0x" + digest.hex(),
            "code_cid": m.code_cid, "loss_micro": m.evaluation.value_micro, "note": note, "tx": tx.tx_hash,
            "gas": tx.gas_used, "block": tx.block_number}


def abandon_submission(ledger: Any, run_dir: Path, task_id: int) -> dict:
    """Forget a saved submission that was never revealed (its commitment, if sent, stays on
    chain unrevealed: harmless, nothing is staked until the reveal). The chain is asked, not
    the file: a reveal mined just before a crash is a claim, and is never abandoned."""
    run_dir = Path(run_dir)
    state_path = run_dir / STATE_FILE
    state = _load_state(state_path)
    if not state:
        raise SubmitError(f"{run_dir}: no saved submission to abandon ({STATE_FILE} is absent)")
    if state["task_id"] != task_id:
        raise SubmitError(f"{state_path} is a submission to task {state['task_id']}, not task {task_id}")
    revealed = state.get("stage") == "revealed"
    if not revealed and state.get("commitment"):
        revealed = ledger.commitment_info(bytes.fromhex(state["commitment"][2:])).revealed
    if revealed:
        raise SubmitError(f"{run_dir}: already revealed{' as claim ' + str(state['claim_id']) if 'claim_id' in state else ''}"
                          "; a claim on chain cannot be abandoned (run `artrain submit` again to see it)")
    for name in (STATE_FILE, CLAIM_MANIFEST):
        (run_dir / name).unlink(missing_ok=True)
    return {"abandoned": True, "run_dir": str(run_dir), "task_id": state.get("task_id"),
            "commitment": state.get("commitment"), "committed": state.get("stage") == "committed"}


def _manifest_cid(claim_bytes: bytes) -> str:
    return str(bytes_cid(claim_bytes))


def _same_as_saved(state: dict, path: Path, task_id: int, trainer: str, parent_id: int | None,
                   stake: int | None) -> None:
    where = (f"{path} holds a submission to task {state['task_id']} by {state['trainer']} "
             f"(parent {state['parent_id']}, stake {state['stake']} wei, {state['stage']})")
    if state["task_id"] != task_id or state["trainer"].lower() != trainer.lower():
        raise SubmitError(f"{where}; copy the run dir to submit it elsewhere")
    for flag, given, saved in (("--parent", parent_id, state["parent_id"]), ("--stake", stake, state["stake"])):
        if given is not None and int(given) != int(saved):
            fix = ("it cannot change" if state["stage"] == "revealed" else
                   "run again without the flag to continue it, or with --abandon to start over")
            raise SubmitError(f"{flag} {given} disagrees with the saved submission: {where}; {fix}")


def _check_before_commit(ledger: Any, task: Any, task_id: int, parent_id: int, stake: int, trainer: str) -> None:
    """What the contract's reveal would refuse, refused before the commit costs gas."""
    if parent_id:
        try:
            parent = ledger.claim(parent_id)
        except ContractRevert:
            raise SubmitError(f"parent: claim {parent_id} does not exist (0 means the task's baseline; "
                              f"`artrain claims --task {task_id}` lists its claims)") from None
        if parent.task_id != task_id:
            raise SubmitError(f"parent: claim {parent_id} belongs to task {parent.task_id}, not task {task_id}")
    if stake < task.min_trainer_stake:
        raise SubmitError(f"stake: {stake} wei is below the task's minimum trainer stake {task.min_trainer_stake}")
    balance = ledger.w3.eth.get_balance(trainer)
    gas = ledger.w3.eth.gas_price * GAS_MARGIN
    if balance < stake + gas:
        raise SubmitError(f"stake: {trainer} holds {balance} wei, less than the stake {stake} wei plus gas for the "
                          f"commit and reveal (~{gas} wei at the current gas price)")


def _warnings(ledger: Any, task: Any, task_id: int, parent_id: int, loss: int) -> list[str]:
    out = []
    best_id, best = ledger.best_claim(task_id)
    if loss + task.min_improvement > best:
        out.append(f"loss {fmt(loss)} does not beat the task's best {fmt(best)} by its epsilon "
                   f"{fmt(task.min_improvement)}: if accepted it earns no reward (an unstaked "
                   "`artrain report` records it without a stake)")
    if parent_id == best_id:
        newest = ledger.task_claims(task_id, max(0, task.claim_count - 100), 100)  # the last 100: the live ones
        pending = [c for c in newest if c != parent_id and _pending_child(ledger.claim(c), parent_id)]
        if pending:
            out.append(f"claim(s) {', '.join(map(str, pending))} also build on claim {parent_id} and are "
                       "still pending: if one is accepted first, this claim is compared with it")
    return out


def _pending_child(claim: Any, parent_id: int) -> bool:
    return claim.parent_id == parent_id and claim.state in ("Open", "Disputed", "Finalizable")


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
