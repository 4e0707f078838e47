"""Sealed evaluation: held-out shards nobody but the sponsor has until the claims they judge
are fixed on chain (docs/sealed-evaluation.md).

The sponsor's side:

1. ``create_set`` cuts the sponsor's private held-out data (``artrain task create
   --heldout FILE``) into one shard per round, each in the format of the task's held-out
   split (the harness's ``cut_shards``, else equal byte ranges), and keeps them in
   ``$ARLEDGER_HOME/sealed/<root>/`` (mode 0700), never in the store. The chain gets the
   Merkle root over ``leaf(round, sha256(shard))`` (``arledger.merkle``'s layout, so the
   contract's proof check is the one it already has).
2. ``open_round`` pins round r's shard and opens it on chain with its proof, after the round
   closed and within its grace (``artrain task reveal``, ``--watch`` for every round).

Everyone else's side: ``fetch_shard`` reads an opened shard by the CID in ``ShardOpened``
and checks its bytes against the digest the contract proved, so a store that lies is caught.

What claim code could do to this: nothing of it runs where the shards are (the baseline's
code runs sandboxed, without ``$ARLEDGER_HOME``), the root reveals only hashes of large
random-looking files, and a shard exists off the sponsor's disk only after every claim it
judges has fixed its weights and code on chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from arledger import manifest as mf, merkle
from arledger.chain.deployment import arledger_home
from arledger.errors import ArtifactMismatch, IncumbentUnavailable, ManifestError, ReplayError, SealedError
from arledger.execution.executors import Executor
from arledger.files import atomic_write
from arledger.harness import Harness, load_harness
from arledger.micro import to_micro
from arledger.protocol import artifacts
from arledger.protocol.baseline import SEED as BASELINE_SEED
from arledger.protocol.replay import ArtifactSource, EvalResult, Replay, RunFiles
from arledger.protocol.shard import baseline_weights, evaluate_on_shard, heldout_split
from arledger.runner.experiment import read_spec
from arledger.seal_rounds import rounds
from arstore import cid_to_bytes
from arstore.errors import StoreError

SEALED_DIR = "sealed"
SET_FILE = "seal.json"
MAX_SHARD_BYTES = 64 * 1024 * 1024
# An incumbent whose model fails on a shard (its outputs refused, not causal, or its request
# failed) has no loss there: the largest value the contract takes (uint64 max), which every
# valid claim beats for the pointer but not for a reward; every party measures the same.
NO_VALID_LOSS = 2**64 - 1


def sealed_home() -> Path:
    return arledger_home() / SEALED_DIR


def shard_digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class SealedSet:
    """The sponsor's shards on disk: one file per round and ``seal.json`` (root, digests)."""

    directory: Path
    root: bytes
    split: str
    digests: tuple[bytes, ...]

    @property
    def rounds(self) -> int:
        return len(self.digests)

    def shard_path(self, round_: int) -> Path:
        return self.directory / f"shard-{round_:04d}.bin"

    def shard(self, round_: int) -> bytes:
        """Round ``round_``'s shard, checked against its digest (a corrupted backup is caught here)."""
        if not 0 <= round_ < self.rounds:
            raise SealedError(f"round {round_}: the sealed set {self.directory} has rounds 0..{self.rounds - 1}")
        path = self.shard_path(round_)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SealedError(f"{path}: missing (restore {self.directory} from its backup)") from None
        if shard_digest(data) != self.digests[round_]:
            raise SealedError(f"{path}: its sha256 is not the digest committed on chain for round {round_}")
        return data

    def proof(self, round_: int) -> list[bytes]:
        return merkle.merkle_proof(list(self.digests), round_)


def cut(harness: Harness, raw: bytes, rounds: int) -> list[bytes]:
    """One shard per round from the sponsor's held-out data, each in the held-out split's format."""
    if rounds < 1:
        raise SealedError(f"rounds: {rounds}; a sealed task needs at least one round")
    hook = getattr(harness.module, "cut_shards", None)
    if callable(hook):
        shards = hook(raw, rounds)
    else:
        size = len(raw) // rounds
        shards = [raw[i * size:(i + 1) * size] for i in range(rounds)]
    if not isinstance(shards, list) or len(shards) != rounds or not all(isinstance(s, bytes) and s for s in shards):
        raise SealedError(f"held-out data of {len(raw)} bytes does not make {rounds} non-empty shards")
    if len(set(shards)) != rounds:
        raise SealedError("two rounds got the same shard: every round needs its own data")
    return shards


def create_set(harness: Harness, split: str, heldout: Path, rounds: int, check: Callable[[bytes], None],
               home: Path | None = None) -> SealedSet:
    """Cut ``heldout`` into ``rounds`` shards, check each (``check`` raises on a shard the harness
    cannot evaluate), and keep them under ``home`` [default: $ARLEDGER_HOME/sealed]. Written to a
    temporary directory and renamed, so a failure leaves nothing half-written."""
    heldout = Path(heldout)
    try:
        raw = heldout.read_bytes()
    except OSError as exc:
        raise SealedError(f"--heldout {heldout}: {exc.strerror or exc}") from None
    shards = cut(harness, raw, rounds)
    for r, data in enumerate(shards):
        if len(data) > MAX_SHARD_BYTES:
            raise SealedError(f"--heldout {heldout}: shard {r} has {len(data)} bytes, at most {MAX_SHARD_BYTES}")
        try:
            check(data)
        except Exception as exc:  # noqa: BLE001 - the harness's own error, named with the shard
            raise SealedError(f"--heldout {heldout}: shard {r} is not data the task's harness can score: {exc}") from None
    digests = [shard_digest(s) for s in shards]
    root = merkle.merkle_root(digests)
    base = Path(home) if home else sealed_home()
    dest = base / root.hex()
    if dest.exists():
        return load_set(root, base)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sealing-", dir=base))
    try:
        os.chmod(tmp, 0o700)
        for r, data in enumerate(shards):
            (tmp / f"shard-{r:04d}.bin").write_bytes(data)
        doc = {"root": "0x" + root.hex(), "split": split, "rounds": rounds, "source": str(heldout.resolve()),
               "digests": ["0x" + d.hex() for d in digests], "created": int(time.time())}
        (tmp / SET_FILE).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_set(root, base)


def load_set(root: bytes, home: Path | None = None) -> SealedSet:
    """The sponsor's sealed set whose Merkle root is ``root`` (as the chain stores it)."""
    directory = (Path(home) if home else sealed_home()) / bytes(root).hex()
    try:
        doc = json.loads((directory / SET_FILE).read_text())
    except FileNotFoundError:
        raise SealedError(f"no sealed set with root 0x{bytes(root).hex()} in {directory.parent}: only the sponsor "
                          "who created the task has it (restore its backup there, or set ARLEDGER_HOME)") from None
    digests = tuple(bytes.fromhex(d[2:]) for d in doc["digests"])
    if merkle.merkle_root(list(digests)) != bytes(root):
        raise SealedError(f"{directory / SET_FILE}: its digests do not make the root it is filed under")
    return SealedSet(directory, bytes(root), str(doc["split"]), digests)


def open_round(ledger: Any, store: Any, task_id: int, round_: int, home: Path | None = None) -> dict[str, Any]:
    """Pin round ``round_``'s shard and open it on chain (the sponsor, after the round closed)."""
    seal = ledger.seal(task_id)
    if not seal.sealed:
        raise SealedError(f"task {task_id} is not sealed: it has no shards to open")
    if not 0 <= round_ < seal.rounds:
        raise SealedError(f"round {round_}: task {task_id} has rounds 0..{seal.rounds - 1}")
    opened = ledger.shard(task_id, round_)
    if opened:
        return {"task_id": task_id, "round": round_, "shard_cid": opened.cid, "already_open": True}
    now = ledger.block_timestamp()
    if now < seal.round_end(round_):
        raise SealedError(f"round {round_} of task {task_id} closes at {seal.round_end(round_)} "
                          f"({seal.round_end(round_) - now}s from now): its shard stays sealed until then")
    if now > seal.open_deadline(round_):
        raise SealedError(f"round {round_} of task {task_id}: the opening deadline {seal.open_deadline(round_)} "
                          "has passed; its claims are refunded with compensation from the bond")
    sealed_set = load_set(seal.shard_root, home)
    data = sealed_set.shard(round_)
    cid = str(store.add_bytes(data))
    store.pin(cid)
    tx = ledger.open_shard(task_id, round_, shard_digest(data), cid_to_bytes(cid), sealed_set.proof(round_))
    return {"task_id": task_id, "round": round_, "shard_cid": cid, "shard_digest": "0x" + shard_digest(data).hex(),
            "bytes": len(data), "tx": tx.tx_hash, "gas": tx.gas_used, "already_open": False}


def open_due(ledger: Any, store: Any, task_id: int, round_: int | None = None,
             home: Path | None = None) -> list[dict[str, Any]]:
    """Open round ``round_``, or (None) every round whose shard is due now and still sealed; and
    take back the bond share of every round that was missed with no claims (nothing stuck)."""
    if round_ is not None:
        return [open_round(ledger, store, task_id, round_, home)]
    _, status = rounds(ledger, task_id)
    now = ledger.block_timestamp()
    out = [open_round(ledger, store, task_id, s.round, home) for s in status if s.to_dict(now)["state"] == "due"]
    for s in status:
        if s.to_dict(now)["state"] == "missed":
            r = ledger.sealed_round(task_id, s.round)
            if not r.claims and not r.released:
                tx = ledger.release_round(task_id, s.round)
                out.append({"task_id": task_id, "round": s.round, "released": tx.event("SponsorBondReleased")["amount"],
                            "tx": tx.tx_hash, "gas": tx.gas_used})
    return out


def sample_private(experiment_dir: Path, rounds_: int, out: Path) -> dict[str, Any]:
    """Private held-out data for ``rounds_`` rounds, drawn by the experiment's harness
    (``sample_private``) from a fresh secret that is not kept: the file is the secret."""
    out = Path(out)
    if out.exists():
        raise SealedError(f"--out {out}: exists; private data is never overwritten")
    h = load_harness(artifacts.harness_dir_of(Path(experiment_dir), read_spec(Path(experiment_dir))))
    hook = getattr(h.module, "sample_private", None)
    if not callable(hook):
        raise SealedError(f"{h.directory}: the harness has no sample_private(); bring your own held-out data")
    data = hook(os.urandom(32), rounds_)
    if not isinstance(data, bytes) or not data:
        raise SealedError(f"{h.directory}: sample_private() must return bytes")
    atomic_write(out, data)
    os.chmod(out, 0o600)
    return {"out": str(out), "bytes": len(data), "rounds": rounds_}


def fetch_shard(ledger: Any, store: Any, task_id: int, round_: int, dest: Path) -> Path:
    """Round ``round_``'s opened shard at ``dest``, its bytes checked against the proven digest."""
    info = ledger.shard(task_id, round_)
    if info is None:
        raise SealedError(f"task {task_id} round {round_}: the shard is not open yet")
    return fetch_checked(store, info.cid, info.digest, dest)


def fetch_checked(store: Any, cid: str, digest: bytes, dest: Path) -> Path:
    """The shard ``cid`` at ``dest`` if its bytes hash to ``digest`` (the one the contract proved
    against the sponsor's commitment), else SealedError: a store that lies is caught here."""
    data = bytes(store.cat(cid, max_size=MAX_SHARD_BYTES))
    if shard_digest(data) != bytes(digest):
        raise SealedError(f"shard {cid}: its bytes do not hash to the digest proven on chain")
    atomic_write(dest, data)
    return Path(dest)


# -- judging on a shard --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardJudge:
    """Evaluates models on one opened shard the way every party does: the claim's model (and the
    incumbent's) predicts through ``executor``, the harness scores through ``harness_executor``,
    both sandboxed. ``spec`` is the task's TaskSpec."""

    spec: Any
    shard: Path
    executor: Executor
    harness_executor: Executor
    store: Any
    workdir: Path

    @property
    def split(self) -> str:
        return heldout_split(self.spec.datasets, self.spec.train_splits)

    def loss(self, ev: EvalResult) -> int:
        """An evaluation's metric in micro-units (SealedError when the harness refused the outputs)."""
        if not ev.ok:
            raise SealedError(f"evaluation on the shard: {ev.problem}")
        return to_micro(ev.metrics[self.spec.experiment["metric"]])

    def evaluate(self, files: Any, weights: Path, seed: int, check_seed: bytes | None = None) -> EvalResult:
        """``weights``, built by the code in ``files``, on the shard."""
        spec = self.spec
        r = Replay(None, files, self.executor, self.harness_executor, int(spec.environment["threads"]), seed,
                   limits=spec.sandbox_limits())
        return evaluate_on_shard(r, self.shard, self.split, weights, check_seed)

    def claim(self, m: mf.Manifest, run_dir: Path | None = None, check_seed: bytes | None = None) -> EvalResult:
        """A claim's final weights on the shard (its files from ``run_dir`` when they verify, else the store)."""
        src = ArtifactSource(m, self.workdir / f"claim-{m.merkle_root[2:14]}", run_dir=run_dir, store=self.store)
        return self.evaluate(src, src.weights(), m.seed, check_seed)

    def incumbent_loss(self, m: mf.Manifest | None, check_seed: bytes) -> int:
        """The incumbent's loss on the shard in micro-units, the causality check included (its code
        is someone else's, and it may have changed its ways since it was accepted):
        ``NO_VALID_LOSS`` when its model fails there. Its artifacts missing or inconsistent is
        ``IncumbentUnavailable``: a fact about a store, which no party may be blamed for."""
        try:
            ev = self.incumbent(m, check_seed)
        except (StoreError, ManifestError, ArtifactMismatch) as exc:
            raise IncumbentUnavailable(f"the incumbent's artifacts: {exc}") from None
        except ReplayError:  # its model failed to run: deterministic, every party sees it
            return NO_VALID_LOSS
        return self.loss(ev) if ev.ok else NO_VALID_LOSS

    def incumbent(self, m: mf.Manifest | None, check_seed: bytes | None = None) -> EvalResult:
        """The incumbent on the shard: the best claim's final weights (``m``, its manifest), or (None)
        the baseline's, rebuilt from the spec's baseline code at its seed."""
        if m is not None:
            return self.claim(m, check_seed=check_seed)
        work = self.workdir / "baseline"
        spec = self.spec
        files = RunFiles(work, artifacts.fetch_dir(self.store, spec.baseline_code_cid, work / "code"),
                         artifacts.fetch_dir(self.store, spec.harness_cid, work / "harness"),
                         artifacts.fetch_datasets({k: spec.datasets[k] for k in spec.train_splits}, self.store,
                                                  work / "data"), {})
        r = Replay(None, files, self.executor, self.harness_executor, int(spec.environment["threads"]), BASELINE_SEED,
                   limits=spec.sandbox_limits())
        return self.evaluate(files, baseline_weights(r, work / "baseline.safetensors"), BASELINE_SEED, check_seed)



def incumbent_manifest(ledger: Any, store: Any, incumbent_id: int) -> mf.Manifest | None:
    """The manifest of claim ``incumbent_id`` (None for 0, the baseline)."""
    return mf.fetch(store, ledger.claim_revealed_event(incumbent_id).manifest_digest) if incumbent_id else None
