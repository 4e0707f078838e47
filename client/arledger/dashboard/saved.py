"""A chain `artrain demo` saved in its --out (``chain-state.json``, ``deployment.json``, ``store/``),
brought back on a fresh anvil so the dashboard (or a test) can read it afterwards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from arledger.chain.ledger import Ledger
from arledger.devnet import AnvilProcess
from arledger.errors import ConfigError
from arstore import EmbeddedStore


def open_saved_demo(demo_dir: Path, state_copy: Path | None = None):
    """(ledger, store, anvil) for a finished demo's directory; stop ``anvil`` when done. The anvil
    dumps its state on exit: pass ``state_copy`` to leave the demo's own file as it was."""
    demo_dir = Path(demo_dir)
    dep_path, state = demo_dir / "deployment.json", demo_dir / "chain-state.json"
    for p in (dep_path, state):
        if not p.is_file():
            raise ConfigError(f"{p}: missing; is {demo_dir} the --out of a finished `artrain demo`?")
    if state_copy is not None:
        shutil.copyfile(state, state_copy)
        state = state_copy
    dep = json.loads(dep_path.read_text())
    anvil = AnvilProcess(state_file=state, log_file=state.with_name("dashboard-anvil.log")).start()
    try:
        ledger = Ledger(Ledger.connect_rpc(anvil.rpc_url), dep["ledger"], deploy_block=int(dep.get("deploy_block", 0)))
    except Exception:
        anvil.stop()
        raise
    return ledger, EmbeddedStore(demo_dir / "store"), anvil
