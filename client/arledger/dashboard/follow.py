"""Keeping a ``LedgerIndex`` up to date from the chain with the one follower
(``arledger.chain.follow``), the way the watcher follows it.

Only blocks ``confirmations`` below the head are read; a range is used only if the hash
of its last block is the same before and after ``eth_getLogs``. The index keeps no state
of its own (``MemoryState``), so on a reorganization it is rebuilt from the deployment
block: the simple, always-correct answer (the watcher, which does keep state, walks
back to the fork point instead). ``version`` grows with every change, which is what the
pages poll for.
"""

from __future__ import annotations

import threading
from typing import Any

from arledger.chain.follow import ChainFollower, MemoryState
from arledger.dashboard.index import LedgerIndex


class IndexFollower:
    def __init__(self, ledger: Any, confirmations: int = 0):
        self.ledger = ledger
        art = ledger.artifact
        self.enums = {name: list(art.enum(name)) for name in ("ClaimState", "DisputeState", "ChallengeKind")}
        self.lock = threading.Lock()
        self.version = 0
        self.reorgs = 0
        self.head = 0
        self.error: str | None = None  # the last poll's failure (the node unreachable, ...), shown on the pages
        self.index = LedgerIndex(self.enums)
        self._follower = ChainFollower(ledger, MemoryState(on_rewind=self._rebuild),
                                       lambda ev: self.index.apply(ev), confirmations=int(confirmations),
                                       start_block=ledger.deploy_block)

    def _rebuild(self) -> None:
        self.index = LedgerIndex(self.enums)
        self.reorgs += 1

    def poll(self) -> bool:
        """Fold in what the chain has past the confirmation depth; True if anything changed."""
        with self.lock:
            before = self.index.last_block
            result = self._follower.poll()
            self.index.last_block = max(self.index.last_block, result.safe)
            self.head = result.safe
            changed = bool(result.handled) or result.rewound_to is not None or self.index.last_block != before
            if changed:
                self.version += 1
        return changed
