"""The verifier node: follows the ledger, verifies claims, and acts on chain.

One ``step()``:

1. the follower reads new confirmed events into the SQLite state (claims and
   disputes to look at, finalizations and resolutions to settle);
2. each pending claim is verified (``ClaimChecker``) and the verdict stored before
   anything is sent; then the action (confirm / challenge) is sent, after checking
   on chain that it is still needed — a restart re-reads the chain instead of
   trusting memory, so a kill at any point sends no duplicate transaction;
3. open disputes this verifier may vote on are judged and voted;
4. housekeeping anyone may do: finalize claims past their deadline, resolve disputes
   past their voting window; then settle this verifier's own shares.

Each decision is logged as one line: claim, decision, segments, result, time.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from arledger import taskspec
from arledger.chain.follow import ChainFollower
from arledger.chain.ledger import Evidence
from arledger.chain.units import format_amount, loss_fields
from arledger.errors import ArledgerError, ContractRevert
from arstore.errors import StoreError
from arverifier.check import ClaimChecker, ClaimInfo, SealedInfo, Verdict
from arverifier.state import WatcherState

log = logging.getLogger("arverify")

# Claim states as the contract's ClaimState enum names them.
OPEN, DISPUTED, FINALIZABLE, SEALED = "Open", "Disputed", "Finalizable", "Sealed"


@dataclass
class NodeConfig:
    confirmations: int = 2  # act only on events this many blocks below the head
    start_block: int = 0  # where a fresh data dir starts reading
    finalize: bool = True  # finalize claims / resolve disputes when their windows pass
    settle: bool = True  # pull this verifier's fees and shares
    max_attempts: int = 3  # bounded retries of one claim's verification or action


@dataclass
class StepReport:
    handled_events: int = 0
    decisions: list[dict] = field(default_factory=list)
    transactions: list[dict] = field(default_factory=list)
    rewound_to: int | None = None
    head: int = 0  # the chain head seen by this step
    safe: int = 0  # the deepest block acted on (head - confirmation depth)
    pending_claims: int = 0  # claims still to verify or act on after this step
    pending_disputes: int = 0
    failures: list[str] = field(default_factory=list)  # what this step could not do (retried next step)

    @property
    def idle(self) -> bool:
        return not (self.handled_events or self.decisions or self.transactions)

    def summary(self) -> dict:
        """What ``arverify watch --once --json`` prints last, whether or not anything happened."""
        return {"kind": "result", "head": self.head, "safe_block": self.safe, "handled_events": self.handled_events,
                "decisions": len(self.decisions), "transactions": len(self.transactions),
                "pending_claims": self.pending_claims, "pending_disputes": self.pending_disputes,
                "rewound_to": self.rewound_to}


class VerifierNode:
    """A verifier: one account, one data dir, one ledger, one artifact store."""

    def __init__(self, ledger: Any, store: Any, state: WatcherState, checker: ClaimChecker,
                 config: NodeConfig | None = None, emit: Callable[[dict], None] | None = None):
        self.ledger = ledger
        self.store = store
        self.state = state
        self.checker = checker
        self.config = config or NodeConfig()
        self.me = ledger.account_address
        self.emit = emit or (lambda record: None)
        self.follower = ChainFollower(_LedgerSource(ledger), state, self._on_event,
                                      confirmations=self.config.confirmations,
                                      start_block=self.config.start_block)
        self._specs: dict[int, taskspec.TaskSpec] = {}

    # -- events (inside the follower's SQLite transaction: database writes only) -------

    def _on_event(self, ev) -> None:
        a = ev.args
        if ev.name == "ClaimRevealed":
            self.state.add_claim(int(a["claimId"]), int(a["taskId"]), ev.block_number)
        elif ev.name == "ClaimChallenged":
            self.state.add_dispute(_hex(a["disputeId"]), int(a["claimId"]), ev.block_number)
        elif ev.name == "ClaimFinalized":
            self.state.update_claim(int(a["claimId"]), finalized=1)
        elif ev.name == "DisputeResolved":
            self.state.update_dispute(_hex(a["disputeId"]), resolved=1)

    # -- one pass ----------------------------------------------------------------------

    def step(self) -> StepReport:
        report = StepReport()
        polled = self.follower.poll()
        report.handled_events, report.rewound_to = polled.handled, polled.rewound_to
        report.head, report.safe = polled.head, polled.safe
        for row in self.state.claims("pending", "verified"):
            self._work_claim(row, report)
        for row in self.state.disputes("pending", "judged"):
            self._work_dispute(row, report)
        if self.config.finalize:
            self._housekeeping(report)
        report.pending_claims = len(self.state.claims("pending", "verified"))
        report.pending_disputes = len(self.state.disputes("pending", "judged"))
        return report

    def run(self, *, once: bool = False, poll_interval: float = 2.0, heartbeat: float = 60.0,
            stop: Callable[[], bool] = lambda: False) -> StepReport:
        """Step until ``stop()`` (or once); returns the last step's report. While nothing
        happens, a heartbeat line (head, pending work) every ``heartbeat`` seconds says the
        node is alive and where it is, rather than silence."""
        quiet_since = time.monotonic()
        while True:
            report = self.step()
            if once or stop():
                return report
            if not report.idle:
                quiet_since = time.monotonic()
            elif heartbeat and time.monotonic() - quiet_since >= heartbeat:
                quiet_since = time.monotonic()
                log.info("idle: head %d, acting on blocks <= %d (confirmation depth %d); %d claim(s) and "
                         "%d dispute(s) pending", report.head, report.safe, self.config.confirmations,
                         report.pending_claims, report.pending_disputes)
                self.emit({**report.summary(), "kind": "heartbeat"})
            time.sleep(poll_interval)

    # -- claims ------------------------------------------------------------------------

    def claim_info(self, claim_id: int) -> ClaimInfo:
        return claim_info(self.ledger, claim_id)

    def spec(self, task_id: int) -> taskspec.TaskSpec:
        if task_id not in self._specs:
            self._specs[task_id] = taskspec.fetch(self.store, self.ledger.task(task_id).spec_digest)
        return self._specs[task_id]

    def _work_claim(self, row, report: StepReport) -> None:
        cid = row["claim_id"]
        try:
            if row["status"] == "pending":
                if not self._claim_needs_me(cid, row):
                    return
                t0 = time.perf_counter()
                info = self.claim_info(cid)
                verdict = self.checker.check(info, self.spec(info.task_id))
                self.state.update_claim(cid, status="verified", verdict=verdict.to_dict(),
                                        action=verdict.decision)
                self._decided(verdict, time.perf_counter() - t0, report)
                row = {**dict(row), "status": "verified", "verdict": json.dumps(verdict.to_dict())}
            self._act_on_claim(cid, row, report)
        except (ArledgerError, StoreError) as exc:
            attempts = row["attempts"] + 1
            status = "failed" if attempts >= self.config.max_attempts else row["status"]
            self.state.update_claim(cid, attempts=attempts, status=status)
            report.failures.append(f"claim {cid}: {exc}")
            log.warning("claim %s: %s (attempt %d/%d)", cid, exc, attempts, self.config.max_attempts)

    def _claim_needs_me(self, cid: int, row) -> bool:
        state = self.ledger.claim_state(cid)
        c = self.ledger.claim(cid)
        if c.trainer.lower() == self.me.lower():
            self.state.update_claim(cid, status="done", action="own-claim")
            return False
        if self.ledger.has_confirmed(cid, self.me):
            self.state.update_claim(cid, status="done", action="confirm")
            return False
        if state in (DISPUTED, SEALED):
            # Stay pending: a dismissed dispute reopens the claim, and a sealed claim opens once its
            # loss on the round's shard is revealed; it needs verifying then.
            return False
        if state not in (OPEN,):
            self.state.update_claim(cid, status="done", action=f"skipped:{state}")
            return False
        task = self.ledger.task(c.task_id)
        if c.confirmations >= task.quorum:
            self.state.update_claim(cid, status="done", action="quorum-reached")
            return False
        stake = self.ledger.verifier_info(self.me).stake
        if stake < task.min_verifier_stake:  # it could not confirm: said now, not after a replay
            self.state.update_claim(cid, status="done", action="stake-below-task-minimum")
            reason = (f"this verifier's stake {format_amount(stake)} is below task {c.task_id}'s minimum "
                      f"{format_amount(task.min_verifier_stake)}: not verified (arverify register --stake adds to it)")
            log.warning("claim %d: %s", cid, reason)
            self.emit({"kind": "skip", "claim": cid, "reason": reason})
            return False
        return True

    def _act_on_claim(self, cid: int, row, report: StepReport) -> None:
        verdict = json.loads(row["verdict"])
        decision = verdict["decision"]
        if decision == "abstain":
            self.state.update_claim(cid, status="done")
            return
        # The chain, not memory, says whether the action is still needed.
        state = self.ledger.claim_state(cid)
        if state == DISPUTED:
            return  # keep the verdict: act once the dispute is resolved (dismissed -> Open again)
        if decision == "confirm":
            if self.ledger.has_confirmed(cid, self.me) or state != OPEN:
                self.state.update_claim(cid, status="done")
                return
            if self.ledger.confirmations(cid) >= self.spec_quorum(cid):
                self.state.update_claim(cid, status="done", action="quorum-reached")
                return
            tx = self.ledger.confirm(cid, verdict["segments"], verdict["measured_loss"])
        else:
            ch = verdict["challenge"]
            did = self.ledger.dispute_id(cid, ch["kind"], ch["segment"])
            if self.ledger.dispute_state(did) != "None" or state != OPEN:
                self.state.update_claim(cid, status="done", action="challenge-exists")
                return
            tx = self.ledger.challenge(cid, Evidence(**{f.name: ch[f.name] for f in fields(Evidence)}))
        self.state.update_claim(cid, status="done", tx_hash=tx.tx_hash)
        report.transactions.append({"claim": cid, "action": decision, "tx": tx.tx_hash, "gas": tx.gas_used})

    def spec_quorum(self, cid: int) -> int:
        return self.ledger.task(self.ledger.claim(cid).task_id).quorum

    def _decided(self, v: Verdict, seconds: float, report: StepReport) -> None:
        record = {"kind": "decision", "claim": v.claim_id, "decision": v.decision, "segments": v.segments,
                  "reason": v.reason, "seconds": round(seconds, 2)}
        if v.challenge:
            record["challenge"] = {"kind": v.challenge.kind, "segment": v.challenge.segment,
                                   "claimed": "0x" + v.challenge.claimed_end.hex(),  # the state the claim committed to
                                   "observed": "0x" + v.challenge.observed.hex()}  # the state the replay produced
        if v.measured_loss is not None:  # what the task's harness measured, and its causality check
            record.update(loss_fields("measured_loss", v.measured_loss))
            record["causality"] = v.causality
        report.decisions.append(record)
        log.info("claim %d: %s segments=%s %s (%.1fs)", v.claim_id, v.decision.upper(),
                 v.segments or (record.get("challenge") or {}).get("segment", "-"), v.reason, seconds)
        self.emit(record)

    # -- disputes ----------------------------------------------------------------------

    def _work_dispute(self, row, report: StepReport) -> None:
        did = row["dispute_id"]
        try:
            d = self.ledger.dispute(did)
            if self.ledger.dispute_state(did) != "Voting" or not self._may_vote(d):
                self.state.update_dispute(did, status="done")
                return
            if row["status"] == "pending":
                t0 = time.perf_counter()
                info = self.claim_info(d.claim_id)
                vote, reason = self.checker.judge(info, self.spec(info.task_id), d.kind, d.segment)
                self.state.update_dispute(did, status="judged", verdict={"vote": vote, "reason": reason})
                record = {"kind": "vote", "dispute": did, "claim": d.claim_id, "decision": f"vote-{vote}",
                          "segments": [d.segment], "reason": reason,
                          "seconds": round(time.perf_counter() - t0, 2)}
                report.decisions.append(record)
                log.info("dispute %s… on claim %d (%s segment %d): VOTE %s %s (%.1fs)", did[:10], d.claim_id,
                         d.kind, d.segment, vote.upper(), reason, record["seconds"])
                self.emit(record)
            else:
                vote = json.loads(row["verdict"])["vote"]
            if vote == "abstain" or self.ledger.has_voted(did, self.me):
                self.state.update_dispute(did, status="done")
                return
            tx = self.ledger.vote(did, vote == "uphold")
            self.state.update_dispute(did, status="done", tx_hash=tx.tx_hash)
            report.transactions.append({"dispute": did, "action": f"vote-{vote}", "tx": tx.tx_hash,
                                        "gas": tx.gas_used})
        except (ArledgerError, StoreError) as exc:
            attempts = row["attempts"] + 1
            self.state.update_dispute(did, attempts=attempts,
                                      status="failed" if attempts >= self.config.max_attempts else row["status"])
            report.failures.append(f"dispute {did}: {exc}")
            log.warning("dispute %s: %s (attempt %d/%d)", did, exc, attempts, self.config.max_attempts)

    def _may_vote(self, d) -> bool:
        me = self.me.lower()
        c = self.ledger.claim(d.claim_id)
        if me in (c.trainer.lower(), d.challenger.lower()):
            return False
        if self.ledger.has_confirmed(d.claim_id, self.me) or self.ledger.has_voted(d.dispute_id, self.me):
            return False
        info = self.ledger.verifier_info(self.me)
        return info.registered and info.stake >= self.ledger.task(c.task_id).min_verifier_stake

    # -- housekeeping ------------------------------------------------------------------

    def _housekeeping(self, report: StepReport) -> None:
        for row in self.state.all_disputes():
            did = row["dispute_id"]
            if not row["resolved"] and self.ledger.dispute_state(did) == "Resolvable":
                self._send(report, {"dispute": did, "action": "resolve"},
                           lambda: self.ledger.resolve_dispute(did))
            if self.config.settle and not row["settled"] and self.ledger.dispute_state(did) in (
                    "Upheld", "Dismissed", "Inconclusive"):
                if self.ledger.has_voted(did, self.me):
                    self._send(report, {"dispute": did, "action": "settle-vote"},
                               lambda: self.ledger.settle_vote(did))
                self.state.update_dispute(did, settled=1, resolved=1)
        for row in self.state.all_claims():
            cid = row["claim_id"]
            if row["settled"]:
                continue
            state = self.ledger.claim_state(cid)
            if state == FINALIZABLE:
                self._send(report, {"claim": cid, "action": "finalize"}, lambda: self.ledger.finalize(cid))
                state = self.ledger.claim_state(cid)
            if state in ("Accepted", "Rejected", "Expired"):
                if self.config.settle and self.ledger.has_confirmed(cid, self.me):
                    self._send(report, {"claim": cid, "action": "settle"}, lambda: self.ledger.settle(cid))
                self.state.update_claim(cid, finalized=1, settled=1)

    def _send(self, report: StepReport, what: dict, fn: Callable[[], Any]) -> None:
        try:
            tx = fn()
        except ContractRevert as exc:
            # Someone else got there first (finalize/resolve are open to anyone).
            log.info("%s: not needed (%s)", what, type(exc).__name__)
            return
        report.transactions.append({**what, "tx": tx.tx_hash, "gas": tx.gas_used})
        log.info("%s tx %s", " ".join(f"{k}={v}" for k, v in what.items()), tx.tx_hash)


def claim_info(ledger: Any, claim_id: int) -> ClaimInfo:
    """What the chain says about a claim: its stored fields plus its ClaimRevealed event."""
    c = ledger.claim(claim_id)
    ev = ledger.claim_revealed_event(claim_id)
    return ClaimInfo(claim_id=claim_id, task_id=c.task_id, trainer=c.trainer, parent_id=c.parent_id,
                     code_cid=ev.code_cid, manifest_digest=ev.manifest_digest, merkle_root=c.merkle_root,
                     num_segments=c.num_segments, claimed_loss=c.claimed_loss, seed=c.seed,
                     covered=ledger.confirmed_segments(claim_id), sealed=sealed_info(ledger, c.task_id, claim_id))


def sealed_info(ledger: Any, task_id: int, claim_id: int) -> SealedInfo | None:
    """A scored sealed claim's round, shard and incumbent (None: an open task, or not scored yet)."""
    if not ledger.seal(task_id).sealed:
        return None
    cs = ledger.claim_seal(claim_id)
    shard = ledger.shard(task_id, cs.round)
    if not cs.scored or shard is None:
        return None
    digest = ledger.claim_revealed_event(cs.incumbent_id).manifest_digest if cs.incumbent_id else None
    return SealedInfo(cs.round, shard.cid, shard.digest, cs.incumbent_id, cs.incumbent_loss, digest)


class _LedgerSource:
    """The follower's view of the chain, through the Ledger."""

    def __init__(self, ledger):
        self.ledger = ledger

    def block_number(self) -> int:
        return self.ledger.block_number()

    def block_hash(self, number: int) -> str:
        return self.ledger.block_hash(number)

    def events(self, from_block: int, to_block: int):
        return self.ledger.events(from_block, to_block)


def _hex(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value)


__all__ = ["VerifierNode", "NodeConfig", "StepReport", "claim_info"]
