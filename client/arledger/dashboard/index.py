"""The event-to-view layer: the ledger's events folded into what the dashboard shows.

``LedgerIndex.apply(event)`` takes the contract's events in chain order and keeps tasks,
claims, disputes and votes, reports, verifiers and the best-claim history; the ``*_view``
methods turn that into plain dicts for the pages and the JSON API. Nothing here talks to
the chain or the store (``arledger.dashboard.follow`` feeds it, ``content`` adds what the
store holds), so it is tested with events written by hand.

Claim states come from events: ``Open`` after the reveal, ``Disputed`` while a dispute is
unresolved, the outcome of ``ClaimFinalized`` after it (Accepted, Rejected, Expired). A
claim whose challenge window has passed without finalization is shown as ``Open`` with
its deadline: the contract's derived states need the clock, which the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arstore import cid_from_bytes, digest_to_cid

PENDING = ("Open", "Disputed", "Sealed")


@dataclass
class TaskRow:
    task_id: int
    sponsor: str
    block: int
    funded: int = 0
    best_history: list[dict] = field(default_factory=list)  # BestClaimChanged, in order
    claim_ids: list[int] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    sealed: dict | None = None  # a sealed task's schedule (SealedTaskCreated); None: an open task
    shards: dict[int, dict] = field(default_factory=dict)  # round -> the opened shard (ShardOpened)

    def rounds(self) -> list[dict]:
        """Every round of a sealed task: its end, its opening deadline and its shard once opened."""
        if not self.sealed:
            return []
        s = self.sealed
        return [{"round": r, "ends_at": s["start"] + (r + 1) * s["round_length"],
                 "open_deadline": s["start"] + (r + 1) * s["round_length"] + s["open_grace"],
                 "shard": self.shards.get(r)} for r in range(s["rounds"])]


@dataclass
class ClaimRow:
    claim_id: int
    task_id: int
    trainer: str
    parent_id: int
    code_cid: str
    manifest_cid: str
    merkle_root: str
    segments: int
    claimed_loss: int
    stake: int
    challenge_deadline: int
    block: int
    tx: str
    state: str = "Open"
    improved: bool | None = None
    reward: int = 0
    trainer_paid: int = 0
    confirmations: list[dict] = field(default_factory=list)
    dispute_ids: list[str] = field(default_factory=list)
    settlements: list[dict] = field(default_factory=list)
    round: int | None = None  # sealed tasks, once scored (ClaimScored)
    incumbent_id: int | None = None
    incumbent_loss: int | None = None


@dataclass
class VerifierRow:
    address: str
    stake: int = 0
    registered: bool = False
    confirmations: int = 0
    challenges_won: int = 0
    challenges_lost: int = 0
    votes: int = 0
    earned: int = 0  # settlements, vote shares, challenger payouts
    slashed: int = 0


class LedgerIndex:
    def __init__(self, enums: dict[str, list[str]]):
        self.enums = enums  # ClaimState, DisputeState, ChallengeKind: member names by value
        self.tasks: dict[int, TaskRow] = {}
        self.claims: dict[int, ClaimRow] = {}
        self.disputes: dict[str, dict] = {}
        self.verifiers: dict[str, VerifierRow] = {}
        self.events = 0
        self.last_block = 0

    # -- folding events ------------------------------------------------------------------

    def apply(self, ev: Any) -> None:
        handler = getattr(self, f"_on_{ev.name}", None)
        if handler is not None:
            handler(ev.args, ev)
        self.events += 1
        self.last_block = max(self.last_block, ev.block_number)

    def _enum(self, name: str, value: int) -> str:
        members = self.enums.get(name) or []
        return members[value] if 0 <= value < len(members) else str(value)

    def _verifier(self, address: str) -> VerifierRow:
        key = address.lower()
        if key not in self.verifiers:
            self.verifiers[key] = VerifierRow(address)
        return self.verifiers[key]

    def _on_TaskCreated(self, a, ev) -> None:
        self.tasks[a["taskId"]] = TaskRow(a["taskId"], a["sponsor"], ev.block_number, funded=a["pool"])

    def _on_SealedTaskCreated(self, a, ev) -> None:
        t = self.tasks.get(a["taskId"])
        if t is not None:
            seal = a["seal"]
            t.sealed = {"rounds": seal["rounds"], "round_length": seal["roundLength"], "open_grace": seal["openGrace"],
                        "bond": seal["sponsorBond"], "start": a["start"]}

    def _on_ShardOpened(self, a, ev) -> None:
        t = self.tasks.get(a["taskId"])
        if t is not None:
            t.shards[a["round"]] = {"cid": cid_from_bytes(a["shardCid"]), "digest": "0x" + bytes(a["shardDigest"]).hex(),
                                    "block": ev.block_number, "tx": ev.tx_hash}

    def _on_ClaimScored(self, a, ev) -> None:
        c = self.claims.get(a["claimId"])
        if c is not None:
            c.round, c.incumbent_id, c.incumbent_loss = a["round"], a["incumbentId"], a["incumbentLoss"]
            c.claimed_loss, c.challenge_deadline = a["claimedLoss"], a["challengeDeadline"]
            if c.state == "Sealed":
                c.state = "Open"

    def _on_TaskFunded(self, a, ev) -> None:
        if a["taskId"] in self.tasks:
            self.tasks[a["taskId"]].funded += a["amount"]

    def _on_ClaimRevealed(self, a, ev) -> None:
        c = ClaimRow(a["claimId"], a["taskId"], a["trainer"], a["parentId"], cid_from_bytes(a["codeCid"]),
                     digest_to_cid(a["manifestDigest"]), "0x" + bytes(a["merkleRoot"]).hex(), a["numSegments"],
                     a["claimedLoss"], a["stake"], a["challengeDeadline"], ev.block_number, ev.tx_hash)
        self.claims[c.claim_id] = c
        if c.task_id in self.tasks:
            self.tasks[c.task_id].claim_ids.append(c.claim_id)
            if self.tasks[c.task_id].sealed:  # no loss until its round's shard is open
                c.state = "Sealed"

    def _on_ClaimConfirmed(self, a, ev) -> None:
        c = self.claims.get(a["claimId"])
        if c is None:
            return
        c.confirmations.append({"verifier": a["verifier"], "segments": list(a["segments"]),
                                "measured_loss": a["measuredLoss"], "block": ev.block_number, "tx": ev.tx_hash})
        self._verifier(a["verifier"]).confirmations += 1

    def _on_ClaimChallenged(self, a, ev) -> None:
        did = "0x" + bytes(a["disputeId"]).hex()
        self.disputes[did] = {"dispute_id": did, "claim_id": a["claimId"], "challenger": a["challenger"],
                              "kind": self._enum("ChallengeKind", a["kind"]), "segment": a["segment"],
                              "voting_deadline": a["votingDeadline"], "block": ev.block_number, "votes": [],
                              "outcome": None, "payouts": {}}
        c = self.claims.get(a["claimId"])
        if c is not None:
            c.dispute_ids.append(did)
            if c.state in PENDING:
                c.state = "Disputed"

    def _on_DisputeVoted(self, a, ev) -> None:
        d = self.disputes.get("0x" + bytes(a["disputeId"]).hex())
        if d is not None:
            d["votes"].append({"voter": a["voter"], "uphold": a["uphold"], "block": ev.block_number})
        self._verifier(a["voter"]).votes += 1

    def _on_DisputeResolved(self, a, ev) -> None:
        d = self.disputes.get("0x" + bytes(a["disputeId"]).hex())
        if d is None:
            return
        d["outcome"] = self._enum("DisputeState", a["outcome"])
        claim = self.claims.get(d["claim_id"])
        # what moved: an upheld dispute takes the trainer's whole stake (the event's ``slashed`` is
        # only what the claim's confirmers lost on top of it)
        d["payouts"] = {"challenger": a["challengerPaid"], "trainer": a["trainerPaid"],
                        "per_voter": a["perVoterShare"], "slashed": a["slashed"],
                        "trainer_stake_lost": claim.stake if claim is not None and d["outcome"] == "Upheld" else 0}
        v = self._verifier(d["challenger"])
        if a["challengerPaid"]:
            v.earned += a["challengerPaid"]
        if d["outcome"] == "Upheld":
            v.challenges_won += 1
        elif d["outcome"] == "Dismissed":
            v.challenges_lost += 1
        c = self.claims.get(d["claim_id"])
        if c is not None and c.state == "Disputed":
            c.state = "Open"
            c.challenge_deadline = a["newChallengeDeadline"] or c.challenge_deadline

    def _on_VerifierSlashed(self, a, ev) -> None:
        self._verifier(a["verifier"]).slashed += a["amount"]

    def _on_ClaimFinalized(self, a, ev) -> None:
        c = self.claims.get(a["claimId"])
        if c is not None:
            c.state = self._enum("ClaimState", a["outcome"])
            c.improved, c.reward, c.trainer_paid = a["improved"], a["reward"], a["trainerPaid"]

    def _on_BestClaimChanged(self, a, ev) -> None:
        t = self.tasks.get(a["taskId"])
        if t is not None:
            t.best_history.append({"claim_id": a["claimId"], "loss": a["loss"], "block": ev.block_number,
                                   "previous_claim_id": a["previousClaimId"], "previous_loss": a["previousLoss"]})

    def _on_VerifierRegistered(self, a, ev) -> None:
        v = self._verifier(a["verifier"])
        v.stake, v.registered = a["stake"], True

    def _on_VerifierUnregistered(self, a, ev) -> None:
        v = self._verifier(a["verifier"])
        v.stake, v.registered = 0, False

    def _on_Settled(self, a, ev) -> None:
        c = self.claims.get(a["claimId"])
        if c is not None:
            c.settlements.append({"verifier": a["verifier"], "amount": a["amount"]})
        self._verifier(a["verifier"]).earned += a["amount"]

    def _on_VoteSettled(self, a, ev) -> None:
        self._verifier(a["voter"]).earned += a["amount"]

    def _on_ExperimentReported(self, a, ev) -> None:
        t = self.tasks.get(a["taskId"])
        if t is not None:
            t.reports.append({"reporter": a["reporter"], "loss": a["loss"], "note": a["note"], "block": ev.block_number,
                              "code_cid": cid_from_bytes(a["codeCid"]) if a["codeCid"] else None,
                              "manifest_cid": digest_to_cid(a["manifestDigest"]), "tx": ev.tx_hash})

    # -- views -------------------------------------------------------------------------

    def task_ids(self) -> list[int]:
        return sorted(self.tasks)

    def best_of(self, task_id: int) -> dict | None:
        t = self.tasks.get(task_id)
        return t.best_history[-1] if t and t.best_history else None

    def claims_of(self, task_id: int) -> list[ClaimRow]:
        t = self.tasks.get(task_id)
        return [self.claims[i] for i in t.claim_ids] if t else []

    def curve(self, task_id: int, baseline_loss: int) -> dict:
        """The best-loss chart: the verified best as steps over block height, every claim and
        report a point by outcome (losses in micro-units, as on chain)."""
        t = self.tasks[task_id]
        steps = [{"x": t.block, "y": baseline_loss}]
        for b in t.best_history:
            steps.append({"x": b["block"], "y": b["loss"]})
        points = [{"x": c.block, "y": c.claimed_loss, "outcome": outcome_of(c), "claim_id": c.claim_id}
                  for c in self.claims_of(task_id) if c.state != "Sealed"]  # a sealed claim has no loss yet
        points += [{"x": r["block"], "y": r["loss"], "outcome": "report", "claim_id": None} for r in t.reports]
        last = max([p["x"] for p in points] + [s["x"] for s in steps] + [self.last_block])
        steps.append({"x": last, "y": steps[-1]["y"]})
        return {"best": steps, "points": sorted(points, key=lambda p: p["x"])}

    def verifier_rows(self) -> list[VerifierRow]:
        return sorted(self.verifiers.values(), key=lambda v: (-v.stake, v.address.lower()))

    def disputes_of(self, claim_id: int) -> list[dict]:
        c = self.claims.get(claim_id)
        return [self.disputes[d] for d in c.dispute_ids] if c else []


def outcome_of(c: ClaimRow) -> str:
    """accepted | rejected | expired | pending: the chart's classes."""
    return {"Accepted": "accepted", "Rejected": "rejected", "Expired": "expired"}.get(c.state, "pending")
