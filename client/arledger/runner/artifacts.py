"""Moving run artifacts between the run directory and the content-addressed store.

Why a separate module: the trainer adds what it produced (code, datasets,
checkpoints, weights, manifest) and the verifier fetches the same things by CID
only; both go through the store, which verifies content against the CID.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

from arledger.checkpoint import atomic_write
from arledger.errors import ExperimentError
from arledger.runner.experiment import CODE_FILES, Experiment


def open_store(spec: str | None = None):
    """The artifact store named by ``spec`` (None: arstore's default)."""
    from arstore import open_store as _open

    return _open(spec)


def file_cid(path: Path) -> str:
    """CID of a local file without storing it (verifies a run dir's files against a manifest)."""
    from arstore import file_cid as _file_cid

    return str(_file_cid(path))


def dir_cid(path: Path) -> str:
    from arstore import dir_cid as _dir_cid

    return str(_dir_cid(path))


def snapshot_code(experiment: Experiment, dest: Path) -> Path:
    """Copy exactly the code files (train.py, experiment.json) into ``dest`` (its own dir)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in CODE_FILES:
        shutil.copyfile(experiment.directory / name, tmp / name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def resolve_datasets(experiment: Experiment, store: Any) -> dict[str, str]:
    """Dataset CIDs for the experiment: pinned CIDs if the store has them, else build + add.

    A builder's output must match any CID experiment.json pins (the builder is
    deterministic; a mismatch means a different Python/sklearn produced other bytes).
    """
    ref = experiment.spec.datasets
    cids = dict(ref.cids)
    if cids and all(store.has(c) for c in cids.values()):
        return cids
    if ref.builder is None:
        missing = [n for n, c in cids.items() if not store.has(c)]
        raise ExperimentError(f"datasets.cids: {', '.join(missing)} not available in the store and no builder")
    try:
        blobs: dict[str, bytes] = importlib.import_module(ref.builder).build()
    except ImportError as exc:
        raise ExperimentError(f"datasets.builder: cannot import {ref.builder!r} ({exc})") from exc
    out = {}
    for name in sorted(blobs):
        cid = str(store.add_bytes(blobs[name]))
        if name in cids and cids[name] != cid:
            raise ExperimentError(f"datasets.cids.{name}: builder produced {cid}, experiment pins {cids[name]}")
        out[name] = cid
    return out


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


def fetch_bytes_to(store: Any, cid: str, dest: Path) -> Path:
    if not dest.exists():
        store.get_file(cid, dest)
    return dest


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, data)
