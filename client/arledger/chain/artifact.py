"""The compiled contract, read from the Hardhat build export (one source of truth).

``scripts/export_abi.js`` writes ``arledger/_build/TrainingLedger.json`` =
``{contractName, abi, bytecode, deployedBytecode, compiler, metadata, enums}``; the ABI
(struct field names included) and the enum member names are never copied by hand into
Python, and ``metadata`` (the compiler's settings and the keccak256 of every source) is
what ``artrain ledger verify`` recompiles from. ``ARLEDGER_ARTIFACT`` points at another
file (tests, forks).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from arledger.errors import ConfigError

DEFAULT_ARTIFACT = Path(__file__).resolve().parent.parent / "_build" / "TrainingLedger.json"
BUILD_HINT = "build it with `make contracts` (npx hardhat compile && node scripts/export_abi.js)"


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and bytecode of one compiled contract."""

    contract_name: str
    abi: list[dict]
    bytecode: str
    deployed_bytecode: str
    compiler: str = ""
    path: str = ""
    metadata: dict = field(default_factory=dict)  # solc's metadata JSON of the contract
    enums: dict = field(default_factory=dict)  # "ITrainingLedger.ClaimState" -> member names

    def entries(self, kind: str) -> list[dict]:
        """ABI entries of one type: "function", "event", "error", "constructor"."""
        return [e for e in self.abi if e.get("type") == kind]

    def function(self, name: str) -> dict:
        for e in self.entries("function"):
            if e["name"] == name:
                return e
        raise ConfigError(f"{self.path or self.contract_name}: the ABI has no function {name!r}")

    def has_function(self, name: str) -> bool:
        return any(e["name"] == name for e in self.entries("function"))

    def enum(self, name: str) -> list[str]:
        """Members of an enum by its short or canonical name (``ClaimState``), in order."""
        for canonical, members in self.enums.items():
            if name in (canonical, canonical.rsplit(".", 1)[-1]):
                return list(members)
        raise ConfigError(f"{self.path or self.contract_name}: the build records no enum {name!r} "
                          f"(re-export it: {BUILD_HINT})")


def artifact_path() -> Path:
    env = os.environ.get("ARLEDGER_ARTIFACT")
    return Path(env) if env else DEFAULT_ARTIFACT


def load_artifact(path: str | os.PathLike | None = None) -> ContractArtifact:
    """Load (and cache per path+mtime) the contract artifact; a missing or malformed
    file is a ConfigError naming the file and how to build it."""
    p = Path(path) if path else artifact_path()
    try:
        mtime = p.stat().st_mtime_ns
    except FileNotFoundError:
        raise ConfigError(f"{p}: contract artifact not found; {BUILD_HINT}") from None
    return _load(str(p), mtime)


@lru_cache(maxsize=8)
def _load(path: str, _mtime: int) -> ContractArtifact:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable contract artifact ({exc}); {BUILD_HINT}") from exc
    for key in ("abi", "bytecode"):
        if key not in data:
            raise ConfigError(f"{path}: contract artifact lacks field {key!r}; {BUILD_HINT}")
    if not isinstance(data["abi"], list):
        raise ConfigError(f"{path}: field 'abi' must be a list")
    bytecode = data["bytecode"]
    if isinstance(bytecode, dict):  # tolerate {object: "..."} shapes
        bytecode = bytecode.get("object", "")
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return ContractArtifact(
        contract_name=data.get("contractName", Path(path).stem),
        abi=data["abi"],
        bytecode=bytecode,
        deployed_bytecode=data.get("deployedBytecode", ""),
        compiler=str(data.get("compiler", "")),
        path=path,
        metadata=dict(data.get("metadata") or {}),
        enums=dict(data.get("enums") or {}),
    )
