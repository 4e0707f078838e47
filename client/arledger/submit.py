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

On a sealed task (docs/sealed-evaluation.md) the reveal states no loss and names the
round it was committed in; once the round's shard is open, the same command (``--wait``
to stay until then) evaluates the run's weights and the incumbent's on the shard, in the
sandbox, and reveals both losses (``score``). The run's own number on the public split
is the trainer's estimate only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from arledger import manifest as mf, sealed, taskspec
from arledger.chain.deployment import arledger_home
from arledger.chain.ledger import ClaimFields
from arledger.chain.units import format_amount, loss_fields
from arledger.errors import (
    ChainError,
    ContractRevert,
    IncumbentUnavailable,
    SealedError,
    SubmitError,
    TimeBaseUnavailable,
)
from arledger.execution import isolation
from arledger.files import atomic_write
from arledger.micro import fmt
from arledger.protocol import timebase
from arledger.protocol.artifacts import ckpt_path
from arledger.protocol.replay import rebuild_start, replay, replay_segment, task_options
from arstore import bytes_cid, cid_to_bytes, cid_to_digest

STATE_FILE = "submission.json"
GAS_MARGIN = 600_000  # gas a commit and a reveal take, with room (docs/gas.md: ~50k + ~160k)
CLAIM_MANIFEST = "claim-manifest.json"
ROUND_MARGIN = 30  # seconds a sealed round must still run for a commit and its reveal to land in it


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
    sealed: dict[str, Any] | None = None  # a sealed task's round, shard and losses (None: an open task)

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
               warn: Callable[[str], None] = lambda _: None, wait: bool = False,
               time_home: Path | None = None) -> Submission:
    """Check, pin, commit, wait a block, reveal. Safe to run again after a crash.
    ``time_home``: where this machine's timing of the task's baseline is kept [default: $ARLEDGER_HOME].

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
    seal = ledger.seal(task_id)
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
        _check_time(_TimeCheck(spec, store, run_dir, Path(time_home) if time_home else arledger_home()), m, warn)
        if seal.sealed:
            _round_now(ledger, seal, task_id)
        for line in _warnings(ledger, task, task_id, parent_id, m.evaluation.value_micro, seal.sealed):
            warn(line)

    claim_m = claim_manifest(m, task_id, state["parent_id"] if state else parent_id, trainer)
    claim_bytes = mf.dumps(claim_m)
    if state and state.get("manifest_cid") and state["manifest_cid"] != _manifest_cid(claim_bytes):
        raise SubmitError(f"{state_path} belongs to another run than {run_dir / 'manifest.json'} (the run was "
                          f"replaced after it was submitted); `artrain submit {run_dir} --task {task_id} --abandon` "
                          "clears it if it was never revealed")
    fresh = not state  # nothing of this submission is on chain or on disk yet
    atomic_write(run_dir / CLAIM_MANIFEST, claim_bytes)
    try:
        manifest_cid = pin_run(store, run_dir, m, claim_bytes, progress)
    except BaseException:
        if fresh:  # a failed first try leaves the run dir as it found it
            (run_dir / CLAIM_MANIFEST).unlink(missing_ok=True)
        raise
    digest = hashlib.sha256(claim_bytes).digest()
    assert cid_to_digest(manifest_cid) == digest
    code_cid_bytes = cid_to_bytes(m.code_cid)
    merkle_root = bytes.fromhex(m.merkle_root[2:])
    loss = 0 if seal.sealed else m.evaluation.value_micro  # a sealed claim's loss comes after its shard

    if not state:
        state = {"task_id": task_id, "parent_id": parent_id, "trainer": trainer, "stake": stake,
                 "salt": "0x" + os.urandom(32).hex(), "manifest_cid": manifest_cid, "stage": "new"}
        if seal.sealed:
            state["round"] = _round_now(ledger, seal, task_id)
    salt = bytes.fromhex(state["salt"][2:])
    fields = ClaimFields(task_id, state["parent_id"], code_cid_bytes, digest, merkle_root, m.segments, loss, salt,
                         state.get("round", 0))
    commitment = ledger.compute_commitment(trainer, fields)
    state["commitment"] = "0x" + commitment.hex()
    _save_state(state_path, state)

    gas: dict[str, int] = dict(state.get("gas", {}))
    resumed = state["stage"] != "new"
    info = ledger.commitment_info(commitment)
    if info.block_number == 0:
        progress("commit")
        try:
            tx = ledger.commit(commitment)
        except (ContractRevert, ChainError):
            if fresh:  # nothing was committed: nothing to resume, so nothing is left behind
                for name in (STATE_FILE, CLAIM_MANIFEST):
                    (run_dir / name).unlink(missing_ok=True)
            raise
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
    done = None
    if seal.sealed:
        done = score_sealed(ledger, store, ScoreRequest(run_dir, m, spec, state, wait, progress))
        loss = done.get("claimed_loss_micro", 0)
        gas.update(state.get("gas", {}))
    return Submission(claim_id=state["claim_id"], task_id=task_id, parent_id=state["parent_id"],
                      manifest_cid=manifest_cid, code_cid=m.code_cid, weights_cid=m.final_weights_cid,
                      claimed_loss=loss, stake=state["stake"], commitment=state["commitment"],
                      commit_tx=state.get("commit_tx"), reveal_tx=state.get("reveal_tx"), gas=gas,
                      resumed=resumed, sealed=done)


# -- sealed tasks --------------------------------------------------------------------------------


def _round_now(ledger: Any, seal: Any, task_id: int) -> int:
    """The round a commit sent now lands in, with time left for its reveal; else a SubmitError."""
    now = ledger.block_timestamp()
    r = seal.round_at(now)
    if r is None:
        raise SubmitError(f"task {task_id} takes no more claims: its {seal.rounds} sealed round(s) are over")
    left = seal.round_end(r) - now
    if left < ROUND_MARGIN:
        raise SubmitError(f"round {r} of task {task_id} closes in {left}s, too soon to commit and reveal in it; "
                          f"submit again when round {r + 1} starts")
    return r


@dataclass(frozen=True)
class ScoreRequest:
    """A revealed sealed claim to score: its run, the task's spec, the saved submission state."""

    run_dir: Path
    manifest: mf.Manifest
    spec: Any
    state: dict
    wait: bool = False
    progress: Callable[[str], None] = lambda _: None


def score_sealed(ledger: Any, store: Any, req: ScoreRequest, poll: float = 2.0) -> dict[str, Any]:
    """Score a revealed claim of a sealed task: once its round's shard is open (``req.wait``: wait
    for it), evaluate the run's weights and the incumbent's on the shard, sandboxed, and reveal
    both losses. Returns where the claim stands (``stage``: waiting | scored | expired)."""
    state, claim_id = req.state, int(req.state["claim_id"])
    task_id, round_ = int(state["task_id"]), int(state["round"])
    seal = ledger.seal(task_id)
    out: dict[str, Any] = {"round": round_, "round_ends_at": seal.round_end(round_),
                           "open_deadline": seal.open_deadline(round_),
                           **loss_fields("dev_loss", req.manifest.evaluation.value_micro)}
    cs = ledger.claim_seal(claim_id)
    if cs.scored:
        c = ledger.claim(claim_id)
        return {**out, "stage": "scored", **loss_fields("claimed_loss", c.claimed_loss),
                "incumbent_id": cs.incumbent_id, **loss_fields("incumbent_loss", cs.incumbent_loss)}
    shard = ledger.shard(task_id, round_)
    while shard is None and req.wait and ledger.block_timestamp() <= seal.open_deadline(round_):
        req.progress(f"waiting for round {round_}'s shard")
        time.sleep(poll)
        shard = ledger.shard(task_id, round_)
    if ledger.claim_state(claim_id) != "Sealed":
        return {**out, "stage": "expired", "state": ledger.claim_state(claim_id)}
    if shard is None:
        return {**out, "stage": "waiting"}
    req.progress(f"evaluating on shard {round_}")
    spec = req.spec
    iso = isolation.for_task(spec)
    work = req.run_dir / "sealed"
    shard_file = sealed.fetch_shard(ledger, store, task_id, round_, work / f"shard-{round_:04d}.bin")
    judge = sealed.ShardJudge(spec, shard_file, isolation.executor(iso), isolation.executor(iso, "harness"), store,
                              work)
    try:
        own = judge.loss(judge.claim(req.manifest, req.run_dir))
    except SealedError as exc:
        raise SubmitError(f"claim {claim_id}: the run's weights cannot be scored on the shard ({exc}); the claim "
                          "cannot improve on anything, and its stake goes to the pool if no loss is revealed") from None
    incumbent_id = ledger.best_claim(task_id)[0]
    try:  # the causality check with a seed of this trainer's own: any honest model passes any seed
        incumbent = judge.incumbent_loss(sealed.incumbent_manifest(ledger, store, incumbent_id), os.urandom(32))
    except IncumbentUnavailable as exc:
        raise SubmitError(f"claim {claim_id}: {exc}; run the same command again before the loss window closes "
                          f"(chain time {shard.opened_at + ledger.task(task_id).reveal_window})") from None
    req.progress("score")
    try:
        tx = ledger.score(claim_id, own, incumbent_id, incumbent)
    except ContractRevert as exc:
        raise SubmitError(f"score failed: {exc}; run the same command again (a new best is evaluated anew)") from exc
    state.update(stage="scored", score_tx=tx.tx_hash)
    state.setdefault("gas", {})["score"] = tx.gas_used
    _save_state(req.run_dir / STATE_FILE, state)
    return {**out, "stage": "scored", **loss_fields("claimed_loss", own), "incumbent_id": incumbent_id,
            **loss_fields("incumbent_loss", incumbent), "score_tx": tx.tx_hash, "shard_cid": shard.cid}


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
             f"(parent {state['parent_id']}, stake {format_amount(int(state['stake']))}, {state['stage']})")
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
        raise SubmitError(f"stake: {format_amount(stake)} is below the task's minimum trainer stake "
                          f"{format_amount(task.min_trainer_stake)}")
    balance = ledger.rpc.balance(trainer)
    gas = ledger.rpc.gas_price() * GAS_MARGIN
    if balance < stake + gas:
        raise SubmitError(f"stake: {trainer} holds {format_amount(balance)}, less than the stake {format_amount(stake)} "
                          f"plus gas for the commit and reveal (about {format_amount(gas)} at the current gas price)")


@dataclass(frozen=True)
class _TimeCheck:
    """What `submit` checks a run's time with: the task, the store its baseline comes from, the
    run, and where this machine's timing of the baseline is kept."""

    spec: Any
    store: Any
    run_dir: Path
    home: Path


def _check_time(t: _TimeCheck, m: mf.Manifest, warn: Callable) -> None:
    """The run's own timings against the task's time budget on this machine, before any gas
    (the task's baseline timed here once, in the task's sandbox: ``protocol.timebase``). Timings
    over the line are looked at again the way a verifier would: segment 0 replayed now, between
    timings of the baseline made now; only that refuses (a machine busier during training than when
    the baseline was timed is not the run's fault)."""
    if t.spec.work_budget.time_ratio is None or not (m.timings or {}).get("segment_cpu_ms_median"):
        return  # an older task, or a run trained outside the sandbox (nothing timed)
    executor = isolation.executor(isolation.for_task(t.spec))
    timing = timebase.TimeBaseRequest(t.spec, t.store, executor, t.home)
    try:
        base = timebase.local_time_base(timing)
    except TimeBaseUnavailable as exc:
        warn(f"the time budget was not checked here: {exc}")
        return
    if not taskspec.time_problems(m, t.spec, base):
        return
    work = t.run_dir / "time-check"
    opts = task_options(t.spec, t.store, work, t.run_dir, time_base=base, base_now=lambda: timebase.time_now(timing))
    try:
        r = replay(m, opts)
        problems = [res.detail for res in (rebuild_start(r), replay_segment(r, 0)) if res.status == "over_budget"]
    except TimeBaseUnavailable as exc:  # the baseline timed again around a try (its code or data went away)
        warn(f"the time budget was not checked here: {exc}")
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        raise SubmitError(f"run {t.run_dir} is over the task's time budget (replayed here as a verifier would): "
                          + "; ".join(problems))
    warn("the run's recorded timings were over the time budget, but a replay now, held to the baseline timed "
         "now, is within it (the machine was busier while it trained)")


def _warnings(ledger: Any, task: Any, task_id: int, parent_id: int, loss: int, is_sealed: bool = False) -> list[str]:
    out = []
    best_id, best = ledger.best_claim(task_id)
    if is_sealed:
        out.append(f"task {task_id} is sealed: your loss {fmt(loss)} on the public split is your own estimate; the "
                   "claim is judged on its round's shard, head to head with the best, once the shard is open")
    elif loss + task.min_improvement > best:
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
