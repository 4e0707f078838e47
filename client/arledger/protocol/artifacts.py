"""Moving run artifacts between the run directory and the content-addressed store.

Why a separate module: the trainer adds what it produced (code, datasets,
checkpoints, weights, manifest) and the verifier fetches the same things by CID
only; both go through the store, which verifies content against the CID.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import arstore
from arledger.errors import ExperimentError
from arledger.files import atomic_write
from arledger.harness import HARNESS_FILE
from arledger.runner.experiment import CODE_FILES, ExperimentSpec, SPEC_FILE


def ckpt_path(run_dir: Path, i: int) -> Path:
    """Checkpoint i's file in a run directory (the layout is arledger.protocol.run's)."""
    return Path(run_dir) / "checkpoints" / f"ckpt_{i:04d}.safetensors"


def open_store(spec: str | None = None):
    """The artifact store named by ``spec`` (None: arstore's default)."""
    return arstore.open_store(spec)


def check_answers(store) -> None:
    """Ask ``store`` about one CID, before a command writes anything: a store that does not answer
    raises its ``StoreUnavailable`` (which names it) now, not after a directory was made."""
    store.has(str(arstore.bytes_cid(b"arledger: does the store answer?")))


def file_cid(path: Path) -> str:
    """CID of a local file without storing it (verifies a run dir's files against a manifest)."""
    return str(arstore.file_cid(path))


def dir_cid(path: Path) -> str:
    return str(arstore.dir_cid(path))


def snapshot_code(experiment_dir: Path, dest: Path) -> Path:
    """Copy exactly the code files (train.py, experiment.json) into ``dest`` (its own dir)."""
    return _snapshot(Path(experiment_dir), CODE_FILES, dest)


def snapshot_harness(harness_dir: Path, dest: Path) -> Path:
    """Copy exactly the harness file into ``dest`` (the task's pinned harness dir)."""
    return _snapshot(Path(harness_dir), (HARNESS_FILE,), dest)


def _snapshot(src: Path, names, dest: Path) -> Path:
    missing = [n for n in names if not (Path(src) / n).is_file()]
    if missing:
        raise ExperimentError(f"{src}: no {', '.join(missing)} there"
                              + (" (give the harness to run with: --harness DIR)" if HARNESS_FILE in missing else ""))
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in names:
        shutil.copyfile(src / name, tmp / name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def build_datasets(harness: Any, store: Any) -> dict[str, str]:
    """Every split the harness builds, added to the store: ``{name: cid}``."""
    return {name: str(store.add_bytes(blob)) for name, blob in sorted(harness.build_data().items())}


def harness_dir_of(experiment_dir: Path, spec: ExperimentSpec) -> Path:
    """The harness an experiment names in experiment.json (relative to its directory)."""
    if not spec.harness:
        raise ExperimentError(f"{Path(experiment_dir) / SPEC_FILE}: names no 'harness'; "
                              f"give a harness dir (artrain run --harness DIR)")
    return Path(experiment_dir) / spec.harness


def fetch_datasets(cids: dict[str, str], store: Any, dest: Path) -> dict[str, Path]:
    """Local paths of the datasets, fetched by CID (a local copy is reused if its CID checks)."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, cid in sorted(cids.items()):
        p = dest / cid
        if p.exists() and file_cid(p) != cid:
            p.unlink()  # damaged local copy: fetch again
        if not p.exists():
            store.get_file(cid, p)
        paths[name] = p
    return paths


def fetch_dir(store: Any, cid: str, dest: Path) -> Path:
    """A directory by CID at ``dest`` (fetched once: the store checks what it writes)."""
    if not dest.exists():
        store.get_dir(cid, dest)
    return dest


def fetch_bytes_to(store: Any, cid: str, dest: Path) -> Path:
    if not dest.exists():
        store.get_file(cid, dest)
    return dest


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, data)
