"""Moving run artifacts between the run directory and the content-addressed store.

Why a separate module: the trainer adds what it produced (code, datasets,
checkpoints, weights, manifest) and the verifier fetches the same things by CID
only; both go through the store, which verifies content against the CID.
"""

from __future__ import annotations

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
    return _snapshot(experiment.directory, CODE_FILES, dest)


def snapshot_harness(harness_dir: Path, dest: Path) -> Path:
    """Copy exactly the harness file into ``dest`` (the task's pinned harness dir)."""
    from arledger.harness import HARNESS_FILE

    return _snapshot(Path(harness_dir), (HARNESS_FILE,), dest)


def _snapshot(src: Path, names, dest: Path) -> Path:
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


def harness_dir_of(experiment: Experiment) -> Path:
    """The harness an experiment names in experiment.json (relative to its directory)."""
    if not experiment.spec.harness:
        raise ExperimentError(f"{experiment.directory / 'experiment.json'}: names no 'harness'; "
                              f"give a harness dir (artrain run --harness DIR)")
    return experiment.directory / experiment.spec.harness


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
