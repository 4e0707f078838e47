"""The verifier's persisted state: a SQLite file in its data dir.

Everything the watcher must not lose on a crash lives here, written in short
transactions so that a kill at any instant leaves a consistent file:

- ``cursor``: the last block whose events were handled, with its hash;
- ``blocks``: hashes of the recent handled blocks, to find where a reorganization
  forked off (walk back until the stored hash equals the chain's);
- ``events``: every handled event by (block hash, log index), so a restart or a
  rewind never handles one twice;
- ``claims`` / ``disputes``: the work queue and what was decided and sent. A row
  moves ``pending -> verified -> sent -> done``; a restart resumes from the stored
  step and checks the chain before sending anything again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from arledger.chain.follow import Cursor
from arledger.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1),
    block INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (block_hash TEXT NOT NULL, log_index INTEGER NOT NULL,
    block INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (block_hash, log_index));
CREATE TABLE IF NOT EXISTS claims (claim_id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL,
    block INTEGER NOT NULL, status TEXT NOT NULL, verdict TEXT, action TEXT, tx_hash TEXT,
    finalized INTEGER NOT NULL DEFAULT 0, settled INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS disputes (dispute_id TEXT PRIMARY KEY, claim_id INTEGER NOT NULL,
    block INTEGER NOT NULL, status TEXT NOT NULL, verdict TEXT, tx_hash TEXT,
    resolved INTEGER NOT NULL DEFAULT 0, settled INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL);
"""


class WatcherState:
    """SQLite-backed state; one instance per verifier data dir (one writer)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- transactions ------------------------------------------------------------------

    def tx(self) -> "_Tx":
        return _Tx(self.db)

    # -- identity: a data dir belongs to one chain, ledger and verifier ----------------

    def bind(self, **identity: str) -> None:
        """Remember which chain/ledger/account this state is for; refuse a mismatch."""
        for key, value in identity.items():
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?)", (key, str(value)))
            elif row["value"] != str(value):
                raise ConfigError(
                    f"verifier data dir {self.path.parent} belongs to {key}={row['value']}, "
                    f"not {value}; use another --data-dir")

    # -- cursor and reorganizations ----------------------------------------------------

    def cursor(self) -> Cursor | None:
        row = self.db.execute("SELECT block, hash FROM cursor WHERE id=1").fetchone()
        return Cursor(row["block"], row["hash"]) if row else None

    def set_cursor(self, block: int, block_hash: str, keep_blocks: int = 512) -> None:
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO cursor(id, block, hash) VALUES(1, ?, ?)",
                            (block, block_hash))
            self.db.execute("INSERT OR REPLACE INTO blocks(number, hash) VALUES(?, ?)",
                            (block, block_hash))
            self.db.execute("DELETE FROM blocks WHERE number < ?", (block - keep_blocks,))

    def remember_block(self, number: int, block_hash: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO blocks(number, hash) VALUES(?, ?)",
                        (number, block_hash))

    def known_blocks_desc(self) -> Iterator[tuple[int, str]]:
        for row in self.db.execute("SELECT number, hash FROM blocks ORDER BY number DESC"):
            yield row["number"], row["hash"]

    def rewind_to(self, block: int, block_hash: str) -> int:
        """Forget everything handled after ``block``; returns how many events were dropped.

        Claims and disputes first seen after the fork point are dropped too: the new
        chain's events add them again (a reveal may now carry another claim id). What
        was already sent is never sent twice, because every action is checked against
        the chain's state right before it is sent.
        """
        with self.tx():
            dropped = self.db.execute("DELETE FROM events WHERE block > ?", (block,)).rowcount
            self.db.execute("DELETE FROM blocks WHERE number > ?", (block,))
            self.db.execute("DELETE FROM claims WHERE block > ?", (block,))
            self.db.execute("DELETE FROM disputes WHERE block > ?", (block,))
            self.db.execute("INSERT OR REPLACE INTO cursor(id, block, hash) VALUES(1, ?, ?)",
                            (block, block_hash))
        return dropped

    # -- events ------------------------------------------------------------------------

    def event_seen(self, block_hash: str, log_index: int) -> bool:
        return self.db.execute("SELECT 1 FROM events WHERE block_hash=? AND log_index=?",
                               (block_hash, log_index)).fetchone() is not None

    def mark_event(self, block_hash: str, log_index: int, block: int, name: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO events(block_hash, log_index, block, name) "
                        "VALUES(?, ?, ?, ?)", (block_hash, log_index, block, name))

    # -- claims ------------------------------------------------------------------------

    def add_claim(self, claim_id: int, task_id: int, block: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO claims(claim_id, task_id, block, status, updated) "
                        "VALUES(?, ?, ?, 'pending', ?)", (claim_id, task_id, block, time.time()))

    def claims(self, *statuses: str) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(statuses))
        return self.db.execute(f"SELECT * FROM claims WHERE status IN ({marks}) ORDER BY claim_id",
                               statuses).fetchall()

    def all_claims(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM claims ORDER BY claim_id").fetchall()

    def update_claim(self, claim_id: int, **fields: Any) -> None:
        self._update("claims", "claim_id", claim_id, fields)

    # -- disputes ----------------------------------------------------------------------

    def add_dispute(self, dispute_id: str, claim_id: int, block: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO disputes(dispute_id, claim_id, block, status, updated) "
                        "VALUES(?, ?, ?, 'pending', ?)", (dispute_id, claim_id, block, time.time()))

    def disputes(self, *statuses: str) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(statuses))
        return self.db.execute(f"SELECT * FROM disputes WHERE status IN ({marks})",
                               statuses).fetchall()

    def all_disputes(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM disputes").fetchall()

    def update_dispute(self, dispute_id: str, **fields: Any) -> None:
        self._update("disputes", "dispute_id", dispute_id, fields)

    def _update(self, table: str, key: str, value: Any, fields: dict) -> None:
        fields = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                  for k, v in fields.items()}
        fields["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE {table} SET {cols} WHERE {key}=?", (*fields.values(), value))


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
