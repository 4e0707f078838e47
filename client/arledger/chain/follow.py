"""Follow a contract's events from a cursor, past a confirmation depth, through reorgs: the one
follower (the verifier's watcher and the dashboard's index both use it).

The follower knows nothing about claims: it hands each new event to a handler once,
in chain order, and keeps the cursor in a ``FollowState`` (the watcher's SQLite
``WatcherState``, or ``MemoryState`` for a reader that keeps nothing). Rules:

- only blocks at least ``confirmations`` below the head are read, so most
  reorganizations never reach the verifier at all;
- a deeper reorganization is detected by block hash: the cursor's stored hash no
  longer matches the chain's. The follower walks back over the stored hashes of the
  blocks it handled until one matches (the fork point), forgets what it handled
  after it (``state.rewind_to``) and reads the new branch (a ``MemoryState`` keeps no
  block hashes: its fork point is the start, and its owner rebuilds from there);
- an event is handled at most once per (block hash, log index), recorded in the same
  SQLite transaction as the handler's own writes, so a kill between the two is
  impossible to observe;
- a range is read only if the hash of its last block is the same before and after
  the ``eth_getLogs`` call (a reorg racing the read makes the follower retry).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Protocol, Sequence

from arledger.chain.ledger import Event

log = logging.getLogger("arledger.follow")


@dataclass(frozen=True)
class Cursor:
    """The last block read (its number and hash)."""

    block: int
    hash: str


class FollowState(Protocol):
    """Where a follower keeps its cursor and what it handled (one transaction per event)."""

    def cursor(self) -> Cursor | None: ...

    def set_cursor(self, block: int, block_hash: str) -> None: ...

    def event_seen(self, block_hash: str, log_index: int) -> bool: ...

    def mark_event(self, block_hash: str, log_index: int, block_number: int, name: str) -> None: ...

    def remember_block(self, number: int, block_hash: str) -> None: ...

    def known_blocks_desc(self) -> Iterable[tuple[int, str]]: ...

    def rewind_to(self, block: int, block_hash: str) -> int: ...

    def tx(self) -> ContextManager: ...


class MemoryState:
    """A ``FollowState`` in memory for a reader that keeps nothing of its own (the dashboard):
    on a reorg it forgets everything and ``on_rewind`` rebuilds whatever was folded."""

    def __init__(self, on_rewind: Callable[[], None] = lambda: None):
        self.on_rewind = on_rewind
        self._cursor: Cursor | None = None
        self._seen: set[tuple[str, int]] = set()

    def cursor(self) -> Cursor | None:
        return self._cursor

    def set_cursor(self, block: int, block_hash: str) -> None:
        self._cursor = Cursor(block, block_hash)

    def event_seen(self, block_hash: str, log_index: int) -> bool:
        return (block_hash, log_index) in self._seen

    def mark_event(self, block_hash: str, log_index: int, block_number: int, name: str) -> None:
        self._seen.add((block_hash, log_index))

    def remember_block(self, number: int, block_hash: str) -> None:
        pass  # no walk-back: a rebuild from the start is always correct for a reader

    def known_blocks_desc(self) -> Iterable[tuple[int, str]]:
        return ()

    def rewind_to(self, block: int, block_hash: str) -> int:
        dropped = len(self._seen)
        self._cursor, self._seen = None, set()
        self.on_rewind()
        return dropped

    def tx(self) -> ContextManager:
        return contextlib.nullcontext()


class EventSource(Protocol):
    def block_number(self) -> int: ...

    def block_hash(self, number: int) -> str: ...

    def events(self, from_block: int, to_block: int) -> Sequence[Event]: ...


@dataclass
class PollResult:
    head: int
    safe: int
    handled: int
    rewound_to: int | None = None


class ChainFollower:
    """Reads new confirmed events and hands each to ``handler(event)`` exactly once."""

    def __init__(self, source: EventSource, state: FollowState,
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
