"""Shared world for the end-to-end tests (no tests here): a real anvil, a task, runs, CLI drivers.

Each e2e module builds ONE world (module-scoped: one task, a few trained runs reused
by several claims) on the session's anvil, inside an ``evm_snapshot`` that is reverted
when the module ends, so the ``chain`` tests of other modules see a clean ledger.

Every actor is a devnet account driven through the public commands (``artrain`` /
``arverify`` via click's CliRunner, in-process, ``--json``) with ``ARLEDGER_HOME`` in a
tmp dir whose ``deployment.json`` points at the session's anvil. Accounts:
0 sponsor, 1/2/6/7/9 trainers, 3/4/5 verifiers, 8 a lying verifier.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from arledger.chain.deployment import Deployment
from arledger.cli import main as artrain_main
from arledger.protocol import run_experiment, RunOptions
from arstore import open_store
from arverifier.cli import main as arverify_main

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "client" / "arledger" / "templates" / "digits"
E = 10**18
STEPS, SEGMENT_STEPS = 20, 10  # 2 segments of 10 steps: the smallest budget that still has a "middle"
VERIFIERS = (3, 4, 5)
# Small sandbox limits: an honest digits replay needs ~3 s of CPU (mostly importing torch).
LIMITS = {"cpu_seconds": 12, "wall_seconds": 45, "memory_bytes": 3 << 30, "file_size_bytes": 256 << 20,
          "max_processes": 32}
TERMS = {"reward": "1eth", "pool": "3eth", "verifier_fee": "0.01eth", "min_trainer_stake": "0.1eth",
         "min_verifier_stake": "0.5eth", "challenge_bond": "0.05eth", "quorum": 2, "reveal_window": 3600,
         "challenge_window": 600, "voting_window": 300}


class CliFailed(AssertionError):
    pass


@dataclass
class World:
    chain: Any  # tests.fixtures.chain.Chain
    home: Path
    store_spec: str
    tmp: Path
    task_id: int = 0
    runs: dict[str, Path] = field(default_factory=dict)
    _copies: int = 0

    # -- the public commands ---------------------------------------------------------

    def cli(self, main, *args: str, ok: bool = True) -> Any:
        """Invoke a command in-process with ``--json`` output; returns parsed stdout lines (one or a list)."""
        res = CliRunner().invoke(main, [str(a) for a in args], env={"ARLEDGER_HOME": str(self.home)},
                                 catch_exceptions=False)
        if ok and res.exit_code != 0:
            raise CliFailed(f"{main.name} {' '.join(map(str, args))} -> exit {res.exit_code}: {res.output[-2000:]}")
        if not ok:
            return res
        lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith(("{", "["))]
        return lines[0] if len(lines) == 1 else lines

    def artrain(self, *args: str, ok: bool = True) -> Any:
        return self.cli(artrain_main, *args, ok=ok)

    def arverify(self, *args: str, ok: bool = True) -> Any:
        return self.cli(arverify_main, *args, ok=ok)

    # -- scenario steps --------------------------------------------------------------

    def create_task(self, **request: Any) -> int:
        req = {"template": "digits", "name": "digits-e2e", "steps": STEPS, "segment_steps": SEGMENT_STEPS,
               # 2 random picks on a 2-segment claim: every verifier replays EVERY segment, so a
               # forgery in any one segment is caught deterministically (not by sampling luck).
               "sampling": {"random_segments": 2, "suspicious_segments": 1},
               "limits": LIMITS, "min_improvement": 0.001, "terms": TERMS}
        req.update(request)
        path = self.tmp / f"task-{len(list(self.tmp.glob('task-*.json')))}.json"
        path.write_text(json.dumps(req))
        out = self.artrain("task", "create", "--spec", path, "--store", self.store_spec, "--dev-account", 0,
                           "--json")
        self.task_id = out["task_id"]
        return self.task_id

    def train(self, name: str, seed: int = 1, train_segment: Callable | None = None,
              experiment_dir: Path = DIGITS, store_spec: str | None = None, sandbox: bool = True) -> Path:
        """A finished run, cached by name, trained in the sandbox as ``artrain run`` does; in this
        process with an attack's ``train_segment`` hook, or ``sandbox=False`` (code whose attack
        fires only in a worker: a verifier's replay)."""
        if name not in self.runs:
            out = self.tmp / "runs" / name
            run_experiment(RunOptions(experiment_dir, out, steps=STEPS, segment_steps=SEGMENT_STEPS, seed=seed,
                                      sandbox=sandbox and train_segment is None),
                           store=open_store(store_spec or self.store_spec), train_segment=train_segment)
            self.runs[name] = out
        return self.runs[name]

    def submit(self, run: Path, trainer: int, store_spec: str | None = None, fresh: bool = True) -> dict:
        """``artrain submit`` of a fresh copy of ``run`` (a run dir is one claim; copies are new claims)."""
        if fresh:
            self._copies += 1
            copy = self.tmp / "claims" / f"{run.name}-{self._copies}"
            shutil.copytree(run, copy, ignore=shutil.ignore_patterns("submission.json", "claim-manifest.json"))
            run = copy
        out = self.artrain("submit", run, "--task", self.task_id, "--store", store_spec or self.store_spec,
                           "--dev-account", trainer, "--json")
        return {**out, "run_dir": str(run)}

    def watch(self, *verifiers: int, store_spec: str | None = None) -> dict[int, list[dict]]:
        """One ``arverify watch --once`` pass per verifier, in order; returns each one's decision records
        (without the start and result objects every pass prints)."""
        out = {}
        for v in verifiers or VERIFIERS:
            recs = self.arverify("watch", "--once", "--confirmations", 0, "--store", store_spec or self.store_spec,
                                 "--dev-account", v, "--json")
            recs = recs if isinstance(recs, list) else [recs]
            out[v] = [r for r in recs if r.get("kind") not in ("start", "result", "heartbeat")]  # decisions only
        return out

    def close_windows(self, *verifiers: int, store_spec: str | None = None) -> dict[int, list[dict]]:
        """Let every challenge/voting window pass, then let the verifiers resolve, finalize and settle."""
        self.chain.advance(TERMS["challenge_window"] + TERMS["voting_window"] + 1)
        return self.watch(*verifiers, store_spec=store_spec)

    # -- what the chain says ---------------------------------------------------------

    @property
    def ledger(self):
        return self.chain.ledger

    def events(self, name: str, **match: Any) -> list[dict]:
        evs = self.ledger.events(0, self.ledger.block_number(), [name])
        return [e.args for e in evs if all(_same(e.args.get(k), v) for k, v in match.items())]

    def owed(self, i: int) -> int:
        return self.ledger.balance_of(self.chain.address(i))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def write_deployment(home: Path, chain) -> None:
    home.mkdir(parents=True, exist_ok=True)
    dep = Deployment(rpc_url=chain.rpc_url, chain_id=chain.ledger.chain_id, ledger=chain.ledger.address,
                     deploy_block=0, dev_keys=list(chain.keys))
    (home / "deployment.json").write_bytes(dep.to_json())


def make_world(anvil_chain, tmp_path_factory, name: str, store_spec: str | None = None):
    """Generator for a module fixture: a snapshot of the chain, an ARLEDGER_HOME, the deployment file."""
    tmp = tmp_path_factory.mktemp(name)
    home = tmp / "home"
    write_deployment(home, anvil_chain)
    rpc = anvil_chain.ledger.rpc
    snap = rpc.request("evm_snapshot")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARLEDGER_HOME", str(home))
        for var in ("ARLEDGER_IPFS", "ARLEDGER_RPC_URL", "ARLEDGER_LEDGER", "ARLEDGER_KEY", "ARLEDGER_KEYSTORE"):
            mp.delenv(var, raising=False)
        try:
            yield World(anvil_chain, home, store_spec or f"embedded:{home / 'store'}", tmp)
        finally:
            assert rpc.request("evm_revert", [snap]) is True, f"evm_revert {snap} failed"


def one_line_error(res, *needles: str) -> str:
    """A CLI failure as users must see it: exit 1, one ``Error:`` line naming the thing (warnings
    on stderr aside), no traceback."""
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]
