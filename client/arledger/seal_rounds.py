"""A sealed task's rounds as the chain has them: when each closes, its opening deadline, and
whether its shard was opened (``RoundStatus``). Read by every command that shows a task;
light on purpose (no torch): the shards and the judging on them are ``arledger.sealed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arledger.chain.ledger import SealView, ShardInfo
from arledger.errors import SealedError


@dataclass(frozen=True)
class RoundStatus:
    """Where a sealed task's round stands at ``now`` (chain time)."""

    round: int
    end: int
    open_deadline: int
    shard: ShardInfo | None

    @property
    def state(self) -> str:
        return "opened" if self.shard else "sealed"

    def to_dict(self, now: int) -> dict[str, Any]:
        d = {"round": self.round, "ends_at": self.end, "open_deadline": self.open_deadline, "state": self.state}
        if self.shard:
            d.update(shard_cid=self.shard.cid, shard_digest="0x" + self.shard.digest.hex(),
                     opened_at=self.shard.opened_at)
        elif now > self.open_deadline:
            d["state"] = "missed"
        elif now >= self.end:
            d["state"] = "due"
        else:
            d["state"] = "running"
        return d


def rounds(ledger: Any, task_id: int) -> tuple[SealView, list[RoundStatus]]:
    """The task's schedule and every round's status (SealedError for an open task)."""
    seal = ledger.seal(task_id)
    if not seal.sealed:
        raise SealedError(f"task {task_id} is not sealed: its claims are judged on its public held-out split")
    out = [RoundStatus(r, seal.round_end(r), seal.open_deadline(r), ledger.shard(task_id, r))
           for r in range(seal.rounds)]
    return seal, out


def all_settled(ledger: Any, task_id: int) -> bool:
    """Whether every round's shard is open, or past its opening deadline with its bond share settled
    (a watch has no more to do)."""
    _, status = rounds(ledger, task_id)
    now = ledger.block_timestamp()
    return all(s.shard is not None or (now > s.open_deadline and (lambda r: r.claims or r.released)(
        ledger.sealed_round(task_id, s.round))) for s in status)
