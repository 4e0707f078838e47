"""ChainFollower on a scripted chain: confirmation depth, exactly-once handling, restarts, reorgs.

This is the algorithm alone, on an in-memory chain whose forks the test controls;
tests/test_e2e_*.py drive the same code against a real anvil (anvil_reorg).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from arledger.chain.follow import ChainFollower
from arverifier.state import WatcherState


@dataclass
class Ev:
    name: str
    block_number: int
    block_hash: str
    log_index: int
    args: dict = field(default_factory=dict)
    tx_hash: str = "0x"


class ScriptedChain:
    """Blocks are (hash, [event names]); a fork replaces the tail of the list."""

    def __init__(self):
        self.blocks: list[tuple[str, list[str]]] = [("g", [])]

    def mine(self, *names: str, tag: str = "a") -> None:
        self.blocks.append((f"{tag}{len(self.blocks)}", list(names)))

    def reorg(self, depth: int, replacement: list[list[str]], tag: str) -> None:
        del self.blocks[len(self.blocks) - depth:]
        for names in replacement:
            self.mine(*names, tag=tag)

    def block_number(self) -> int:
        return len(self.blocks) - 1

    def block_hash(self, number: int) -> str:
        return self.blocks[number][0]

    def events(self, lo: int, hi: int):
        return [Ev(n, b, self.blocks[b][0], i)
                for b in range(lo, hi + 1) for i, n in enumerate(self.blocks[b][1])]


def _follower(chain, state, seen, depth=2):
    return ChainFollower(chain, state, lambda e: seen.append((e.name, e.block_hash)),
                         confirmations=depth, start_block=0)


def test_reads_only_past_the_confirmation_depth(tmp_path):
    chain, seen = ScriptedChain(), []
    state = WatcherState(tmp_path / "w.sqlite")
    for i in range(5):
        chain.mine(f"e{i}")
    res = _follower(chain, state, seen).poll()
    assert res.safe == 3
    assert [n for n, _ in seen] == ["e0", "e1", "e2"]
    chain.mine()
    chain.mine()
    _follower(chain, state, seen).poll()
    assert [n for n, _ in seen] == ["e0", "e1", "e2", "e3", "e4"]


def test_restart_handles_nothing_twice(tmp_path):
    chain, seen = ScriptedChain(), []
    for i in range(6):
        chain.mine(f"e{i}", f"f{i}")
    path = tmp_path / "w.sqlite"
    _follower(chain, WatcherState(path), seen).poll()
    first = list(seen)
    _follower(chain, WatcherState(path), seen).poll()  # a restarted process
    assert seen == first
    assert len(first) == 8  # blocks 1..4 (head 6, depth 2), two events each


def test_handler_crash_leaves_event_unhandled(tmp_path):
    chain, seen = ScriptedChain(), []
    chain.mine("boom")
    for _ in range(3):
        chain.mine()
    path = tmp_path / "w.sqlite"

    def explode(_):
        raise RuntimeError("killed mid-handler")

    f = ChainFollower(chain, WatcherState(path), explode, confirmations=2)
    try:
        f.poll()
    except RuntimeError:
        pass
    _follower(chain, WatcherState(path), seen).poll()
    assert [n for n, _ in seen] == ["boom"]


def test_reorg_deeper_than_depth_rewinds_and_reads_new_branch(tmp_path):
    chain, seen = ScriptedChain(), []
    state = WatcherState(tmp_path / "w.sqlite")
    for i in range(8):
        chain.mine(f"old{i}")
    _follower(chain, state, seen, depth=1).poll()
    assert [n for n, _ in seen][-1] == "old6"
    # Replace the last 4 blocks (7 handled -> fork at block 4).
    chain.reorg(4, [["new5"], [], ["new7"], [], []], tag="b")
    res = _follower(chain, state, seen, depth=1).poll()
    assert res.rewound_to == 4
    after = [n for n, _ in seen]
    assert after[-2:] == ["new5", "new7"]
    assert state.cursor().hash == chain.block_hash(chain.block_number() - 1)


def test_reorg_to_a_shorter_chain(tmp_path):
    chain, seen = ScriptedChain(), []
    state = WatcherState(tmp_path / "w.sqlite")
    for i in range(6):
        chain.mine(f"e{i}")
    _follower(chain, state, seen, depth=0).poll()
    chain.reorg(3, [["x"]], tag="c")  # head drops from 6 to 4
    res = _follower(chain, state, seen, depth=0).poll()
    assert res.rewound_to == 3
    assert seen[-1][0] == "x"
