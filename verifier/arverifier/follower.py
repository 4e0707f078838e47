"""Follow a contract's events from a persisted cursor, past a confirmation depth, through reorgs.

The follower knows nothing about claims: it hands each new event to a handler once,
in chain order, and keeps the cursor. Rules:

- only blocks at least ``confirmations`` below the head are read, so most
  reorganizations never reach the verifier at all;
- a deeper reorganization is detected by block hash: the cursor's stored hash no
  longer matches the chain's. The follower walks back over the stored hashes of the
  blocks it handled until one matches (the fork point), forgets what it handled
  after it (``WatcherState.rewind_to``) and reads the new branch;
- an event is handled at most once per (block hash, log index), recorded in the same
  SQLite transaction as the handler's own writes, so a kill between the two is
  impossible to observe;
- a range is read only if the hash of its last block is the same before and after
  the ``eth_getLogs`` call (a reorg racing the read makes the follower retry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from arverifier.state import Cursor, WatcherState

log = logging.getLogger("arverify.follower")


class ChainEvent(Protocol):
    name: str
    args: dict
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


class EventSource(Protocol):
    def block_number(self) -> int: ...

    def block_hash(self, number: int) -> str: ...

    def events(self, from_block: int, to_block: int) -> Sequence[ChainEvent]: ...


@dataclass
class PollResult:
    head: int
    safe: int
    handled: int
    rewound_to: int | None = None


class ChainFollower:
    """Reads new confirmed events and hands each to ``handler(event)`` exactly once."""

    def __init__(self, source: EventSource, state: WatcherState,
                 handler: Callable[[Any], None], *, confirmations: int = 2,
                 start_block: int = 0, batch: int = 2000):
        self.source = source
        self.state = state
        self.handler = handler
        self.confirmations = confirmations
        self.start_block = start_block
        self.batch = batch

    def poll(self) -> PollResult:
        head = self.source.block_number()
        safe = head - self.confirmations
        rewound = self._check_reorg(head)
        cursor = self.state.cursor() or Cursor(self.start_block - 1, "")
        handled = 0
        while cursor.block < safe:
            to = min(safe, cursor.block + self.batch)
            before = self.source.block_hash(to)
            events = self.source.events(cursor.block + 1, to)
            if self.source.block_hash(to) != before:
                log.warning("chain reorganized while reading blocks %d..%d; retrying",
                            cursor.block + 1, to)
                continue
            for event in sorted(events, key=lambda e: (e.block_number, e.log_index)):
                if self.state.event_seen(event.block_hash, event.log_index):
                    continue
                with self.state.tx():
                    self.handler(event)
                    self.state.mark_event(event.block_hash, event.log_index,
                                          event.block_number, event.name)
                    self.state.remember_block(event.block_number, event.block_hash)
                handled += 1
            self.state.set_cursor(to, before)
            cursor = Cursor(to, before)
        return PollResult(head=head, safe=safe, handled=handled, rewound_to=rewound)

    def _check_reorg(self, head: int) -> int | None:
        cursor = self.state.cursor()
        if cursor is None or cursor.block < 0:
            return None
        if cursor.block <= head and self.source.block_hash(cursor.block) == cursor.hash:
            return None
        fork_block, fork_hash = self.start_block - 1, ""
        for number, stored in self.state.known_blocks_desc():
            if number <= head and self.source.block_hash(number) == stored:
                fork_block, fork_hash = number, stored
                break
        dropped = self.state.rewind_to(fork_block, fork_hash)
        log.warning("reorganization: cursor block %d changed hash; rewound to block %d "
                    "(%d handled events forgotten)", cursor.block, fork_block, dropped)
        return fork_block
