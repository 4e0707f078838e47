"""Output directories: nothing destroys what the tool did not make.

A command that writes a directory (``artrain demo --out``, ``artrain run --out``,
``artrain best --download``) takes it through ``claim``: a missing or empty directory
becomes ours (a marker file records which command made it); a directory holding the
marker is ours to reuse or empty; anything else, a non-empty directory we did not
make, is refused unless the user passes ``--force``. Even with ``--force`` the home
directory, the filesystem root and the working directory (or any directory above
it) are refused: no flag makes ``--out ~`` wipe a home.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from arledger.errors import ConfigError

MARKER = ".arledger-output"


def claim(path: Path, maker: str, *, force: bool = False, empty: bool = False,
          legacy: tuple[tuple[str, ...], ...] = ()) -> str:
    """Make ``path`` an output directory of ``maker`` and say what it was: ``"new"`` (missing
    or empty), ``"ours"`` (made by ``maker`` earlier: its marker, or for a directory made
    before markers existed, every file of one of the ``legacy`` groups) or ``"forced"``.
    ``empty`` removes what is in it (only once it is known to be ours or forced)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: exists and is not a directory")
    kind = _kind(path, maker, legacy)
    if kind == "foreign":
        if not force:
            raise ConfigError(f"{path}: not empty and not made by {maker} (no {MARKER} file in it); "
                              "choose another directory, or pass --force to use it anyway")
        _refuse_precious(path)
        kind = "forced"
    if empty and kind != "new":
        _refuse_precious(path)
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(json.dumps({"made_by": maker}) + "\n")
    return kind


def _kind(path: Path, maker: str, legacy: tuple[tuple[str, ...], ...]) -> str:
    if not path.exists() or not any(path.iterdir()):
        return "new"
    if _made_by(path) == maker or any(all((path / n).exists() for n in group) for group in legacy):
        return "ours"
    return "foreign"  # another command's directory is foreign too: a demo never empties a run


def _made_by(path: Path) -> str | None:
    try:
        return json.loads((path / MARKER).read_text()).get("made_by")
    except (OSError, ValueError, AttributeError):
        return None


def _refuse_precious(path: Path) -> None:
    """The root, the home directory, the project's home (keys, deployments, verifier state)
    and the working directory, or any directory above one of them: never emptied."""
    real = path.resolve()
    home = Path(os.environ.get("ARLEDGER_HOME") or Path.home() / ".arledger").expanduser().resolve()
    for kept in (Path("/"), Path.home().resolve(), home, Path.cwd().resolve()):
        if real == kept or real in kept.parents:
            raise ConfigError(f"{path}: refusing to empty {real}: it is or holds the home directory, "
                              "$ARLEDGER_HOME or the working directory (even with --force)")
