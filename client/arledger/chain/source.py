"""Is the ledger at an address this source? Recompile it and compare, as Sourcify does.

A user about to stake into a public deployment needs to know that the code at the address
is the contract in this repository, not a look-alike with a backdoor. ``verify_source``
rebuilds the exact compiler input from the build's metadata (``_build/TrainingLedger.json``:
compiler version, every setting, the source list; see ``scripts/export_abi.js``) and the
source files on disk, compiles it with py-solc-x through the project's solc-js
(``scripts/solcjs-cli``; any native ``solc`` of the same version serves, nothing is
downloaded), and compares the result with ``eth_getCode`` at the address.

The comparison is metadata-aware. Solidity appends a CBOR trailer to the runtime code
holding the IPFS hash of the metadata JSON, which commits to the keccak256 of every source
file and to every setting:

- ``full``: every byte is equal, trailer included: the exact sources and settings;
- ``partial``: the code is equal and only the trailer differs: the same program built
  from sources that differ in comments, whitespace or file names (what Sourcify calls a
  partial match);
- ``none``: the executable code differs: not this contract.

Immutable values and linked library addresses (none in TrainingLedger today) are taken
from the chain before the comparison, at the offsets the compiler reports, since they are
set at deployment.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import solcx
from eth_utils import keccak
from solcx.exceptions import SolcError

from arledger.chain.artifact import ContractArtifact, load_artifact
from arledger.chain.rpc import Rpc
from arledger.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # client/arledger/chain/source.py -> repo
SHIM = Path("scripts") / "solcjs-cli"


@dataclass(frozen=True)
class VerifyRequest:
    """What to verify: the code at ``address`` (read through ``rpc``) against the sources
    under ``source_root`` (``contracts/...``; imports such as ``@openzeppelin/...`` from
    ``source_root/node_modules``), compiled by ``solc`` (default: the solc-js shim)."""

    rpc: Rpc
    address: str
    source_root: Path = PROJECT_ROOT
    solc: Path | None = None
    artifact: ContractArtifact | None = None


@dataclass
class SourceVerdict:
    address: str
    chain_id: int
    contract: str  # "contracts/TrainingLedger.sol:TrainingLedger"
    compiler: str
    match: str  # "full" | "partial" | "none"
    reason: str
    code_bytes: int  # runtime code on chain
    first_difference: int | None  # byte offset of the first differing byte of the code
    sources: dict = field(default_factory=dict)  # name -> keccak256 of the file compiled
    changed_since_build: list = field(default_factory=list)  # sources unlike the build record
    compile_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.match in ("full", "partial")

    def to_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def verify_source(req: VerifyRequest) -> SourceVerdict:
    """Compile the sources with the build's settings and compare with the code on chain."""
    artifact = req.artifact or load_artifact()
    meta = artifact.metadata
    if not meta.get("settings") or not meta.get("sources"):
        raise ConfigError(f"{artifact.path}: the build records no compiler metadata; rebuild it with `make contracts`")
    (target_file, target_name), = meta["settings"]["compilationTarget"].items()
    code = req.rpc.code(req.address)
    if not code:
        raise ConfigError(f"{req.address}: no contract code at this address on chain {req.rpc.chain_id()}")
    sources = read_sources(meta, Path(req.source_root))
    t0 = time.monotonic()
    compiled = compile_runtime(standard_input(meta, sources), target_file, target_name,
                               solc_command(req), meta["compiler"]["version"])
    seconds = round(time.monotonic() - t0, 2)
    runtime = with_chain_immutables(compiled, code)
    match, reason, diff = compare(runtime, code)
    recorded = {name: info.get("keccak256") for name, info in meta["sources"].items()}
    hashes = {name: "0x" + keccak(text.encode()).hex() for name, text in sources.items()}
    return SourceVerdict(
        address=req.address, chain_id=req.rpc.chain_id(), contract=f"{target_file}:{target_name}",
        compiler=meta["compiler"]["version"], match=match, reason=reason, code_bytes=len(code),
        first_difference=diff, sources=hashes,
        changed_since_build=sorted(n for n in hashes if hashes[n] != recorded.get(n)), compile_seconds=seconds)


# -- steps ----------------------------------------------------------------------------------


def read_sources(meta: dict, root: Path) -> dict[str, str]:
    """Every source the metadata lists, by its source unit name, from ``root`` (or, for
    package imports, ``root/node_modules``)."""
    out = {}
    for name in meta["sources"]:
        for candidate in (root / name, root / "node_modules" / name):
            if candidate.is_file():
                # bytes, not text mode: CRLF must stay CRLF, or every keccak256 differs
                out[name] = candidate.read_bytes().decode("utf-8")
                break
        else:
            raise ConfigError(f"{name}: source not found under {root} or {root / 'node_modules'} "
                              "(pass --sources DIR, the checkout with contracts/ and node_modules/)")
    return out


def standard_input(meta: dict, sources: dict[str, str]) -> dict:
    """The compiler's standard-JSON input the metadata describes, asking only for what the
    comparison needs."""
    settings = {k: v for k, v in meta["settings"].items() if k != "compilationTarget"}
    (target_file, target_name), = meta["settings"]["compilationTarget"].items()
    # The metadata stores libraries as {"file:Lib": address}; standard JSON wants them nested.
    libraries: dict = {}
    for key, address in (settings.pop("libraries", None) or {}).items():
        file, sep, lib = key.rpartition(":")
        if not sep:
            raise ConfigError(f"metadata: library {key!r} is not named 'file:Library'")
        libraries.setdefault(file, {})[lib] = address
    settings["libraries"] = libraries
    settings["outputSelection"] = {target_file: {target_name: [
        "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences",
        "evm.deployedBytecode.linkReferences", "metadata"]}}
    return {"language": meta.get("language", "Solidity"),
            "sources": {name: {"content": text} for name, text in sources.items()},
            "settings": settings}


def solc_command(req: VerifyRequest) -> Path:
    # Never a compiler from the checkout under test (--sources): what is verified does not
    # choose what verifies it. Another compiler only when asked for by name (--solc).
    path = Path(req.solc) if req.solc else PROJECT_ROOT / SHIM
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ConfigError(f"solc: {path} is not an executable compiler (pass --solc PATH, or run `make setup`)")
    return path


@dataclass(frozen=True)
class Compiled:
    runtime: bytes
    immutables: list  # (start, length) of each immutable value in the runtime code


def compile_runtime(std_input: dict, target_file: str, target_name: str, solc: Path, want_version: str) -> Compiled:
    """Compile with py-solc-x; the compiler must be the build's version, commit included."""
    out = compile_standard(json.dumps(std_input, sort_keys=True), str(solc), want_version)
    evm = out["contracts"][target_file][target_name]["evm"]["deployedBytecode"]
    refs = [(r["start"], r["length"]) for spans in (evm.get("immutableReferences") or {}).values() for r in spans]
    # Unlinked library addresses stand as "__$<hash>$__" placeholders (20 bytes each);
    # like immutables, their values are read from the chain.
    links = [(r["start"], r["length"]) for libs in (evm.get("linkReferences") or {}).values()
             for spans in libs.values() for r in spans]
    text = evm["object"]
    for start, length in links:
        text = text[:2 * start] + "00" * length + text[2 * (start + length):]
    return Compiled(bytes.fromhex(text), refs + links)


@lru_cache(maxsize=4)
def compile_standard(std_input_json: str, solc: str, want_version: str) -> dict:
    """py-solc-x's compile_standard, checked and cached per input in this process (a viaIR
    build of the ledger takes seconds; a long-lived process verifying many addresses of one
    source compiles once)."""
    try:  # the version as printed ("0.8.37+commit.f401782d"), as the metadata records it
        have = solcx.wrapper.get_version_str_from_solc_binary(solc)
    except (OSError, SolcError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"solc: {solc} did not report a version ({exc}); the default needs node and "
                          "node_modules/solc (`make setup`)") from None
    if have != want_version:
        raise ConfigError(f"solc: {solc} is {have}, the build used {want_version}; "
                          "a different compiler gives different bytecode")
    try:
        return solcx.compile_standard(json.loads(std_input_json), solc_binary=solc)
    except SolcError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "compilation failed"
        raise ConfigError(f"the sources do not compile: {first}") from None


def with_chain_immutables(compiled: Compiled, onchain: bytes) -> bytes:
    """The compiled code with the chain's values at the immutables' offsets (set at deployment)."""
    code = bytearray(compiled.runtime)
    for start, length in compiled.immutables:
        if start + length <= len(onchain):
            code[start:start + length] = onchain[start:start + length]
    return bytes(code)


def split_metadata(code: bytes) -> tuple[bytes, bytes]:
    """(executable code, CBOR metadata trailer): solc ends the runtime code with a CBOR map
    and its length in the last two bytes. No recognisable trailer: (code, b"")."""
    if len(code) < 2:
        return code, b""
    n = int.from_bytes(code[-2:], "big")
    if n + 2 > len(code) or not 0xA0 <= code[-(n + 2)] <= 0xBF:  # a CBOR map starts the trailer
        return code, b""
    return code[:-(n + 2)], code[-(n + 2):]


def compare(compiled: bytes, onchain: bytes) -> tuple[str, str, int | None]:
    """(match, reason, first differing offset of the executable code or None)."""
    if compiled == onchain:
        return "full", "every byte matches, metadata included: these exact sources and settings", None
    body_c, meta_c = split_metadata(compiled)
    body_o, meta_o = split_metadata(onchain)
    if body_c == body_o:
        return ("partial", "the code matches and only the metadata differs: the same program, built from "
                "sources that differ only where the code does not (comments, whitespace)", None)
    diff = next((i for i, (a, b) in enumerate(zip(body_c, body_o)) if a != b), min(len(body_c), len(body_o)))
    return ("none", f"the code differs from byte {diff} on ({len(body_o)} bytes on chain, {len(body_c)} "
            "compiled): not this contract", diff)
