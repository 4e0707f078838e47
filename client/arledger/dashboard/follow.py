"""Keeping a ``LedgerIndex`` up to date from the chain, the way the watcher follows it.

Only blocks ``confirmations`` below the head are read. Before reading on, the hash of the
last block read is asked again: if the chain no longer has it, a reorganization replaced
blocks the index has folded, and the index is rebuilt from the deployment block (a
dashboard keeps no state of its own, so a rebuild is the simple, always-correct answer;
the watcher, which does keep state, walks back to the fork point instead). A range is
used only if the hash of its last block is the same before and after ``eth_getLogs``.
``version`` grows with every change, which is what the pages poll for.
"""

from __future__ import annotations

import threading
from typing import Any

from arledger.dashboard.index import LedgerIndex


class IndexFollower:
    def __init__(self, ledger: Any, confirmations: int = 0):
        self.ledger = ledger
        self.confirmations = int(confirmations)
        art = ledger.artifact
        self.enums = {name: list(art.enum(name)) for name in ("ClaimState", "DisputeState", "ChallengeKind")}
        self.lock = threading.Lock()
        self.version = 0
        self.reorgs = 0
        self.head = 0
        self.error: str | None = None  # the last poll's failure (the node unreachable, ...), shown on the pages
        self._reset()

    def _reset(self) -> None:
        self.index = LedgerIndex(self.enums)
        self.cursor = self.ledger.deploy_block - 1  # the last block folded into the index
        self.cursor_hash: str | None = None

    def poll(self) -> bool:
        """Fold in what the chain has past the confirmation depth; True if anything changed."""
        head = self.ledger.block_number() - self.confirmations
        changed = False
        with self.lock:
            if self.cursor_hash is not None and self.ledger.block_hash(self.cursor) != self.cursor_hash:
                self._reset()
                self.reorgs += 1
                changed = True
            if head > self.cursor:
                end_hash = self.ledger.block_hash(head)
                events = self.ledger.events(self.cursor + 1, head)
                if self.ledger.block_hash(head) == end_hash:  # else a reorg raced the read: next poll
                    for ev in events:
                        self.index.apply(ev)
                    self.cursor, self.cursor_hash = head, end_hash
                    self.index.last_block = max(self.index.last_block, head)
                    changed = True
            self.head = head
            if changed:
                self.version += 1
        return changed
