"""Import one Python file as a module, by path: how claim code (train.py) and task code
(harness.py) are loaded, never through ``sys.path``.

The module name carries the file's sha256, so two different files never share a
``sys.modules`` entry and the same file loaded twice is recognisably the same code.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType


def import_file(path: Path, prefix: str, error: type[Exception], required: tuple[str, ...] = ()) -> ModuleType:
    """Execute ``path`` as a fresh module; ``error`` names the file if it fails or lacks ``required``."""
    name = f"{prefix}_{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise error(f"{path}: import failed ({type(exc).__name__}: {exc})") from exc
    missing = [f for f in required if not callable(getattr(module, f, None))]
    if missing:
        raise error(f"{path}: missing function(s) {', '.join(missing)}")
    return module
