"""Contract views decoded by the ABI's names, never by tuple position.

``claim(id)`` returns a ``ClaimView`` struct; the ABI decoder hands it back as a bare tuple. Reading
``c[4]`` as the state would silently put integers in the wrong fields the day the struct
in ``ITrainingLedger.sol`` is reordered. Here the ABI of the build artifact (the one
source of truth) names every value: ``decode`` zips a function's outputs with their ABI
names (recursively through structs), turns enum values into member names (exported
from the compiler's AST: the ABI itself carries enums as bare uint8), and ``into``
fills a dataclass whose fields are those names in snake_case. A struct field that the
dataclass lacks, or a dataclass field the struct lacks, is a ``ConfigError`` at the first
call, never a misread.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any, Mapping

from arledger.chain.artifact import ContractArtifact
from arledger.errors import ConfigError


def snake(name: str) -> str:
    """``challengeDeadline`` -> ``challenge_deadline`` (ABI names are camelCase)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class ViewDecoder:
    """Names for the values a view of one contract returns."""

    def __init__(self, artifact: ContractArtifact):
        self.artifact = artifact
        self._outputs = {e["name"]: e["outputs"] for e in artifact.entries("function")}

    def decode(self, fn_name: str, result: Any) -> Any:
        """The return value of ``fn_name`` with structs as dicts keyed by snake_case ABI
        names and enums as member names; a single unnamed value comes back as itself."""
        outputs = self._outputs.get(fn_name)
        if outputs is None:
            raise ConfigError(f"{self.artifact.path or self.artifact.contract_name}: the ABI has no function {fn_name!r}")
        if len(outputs) == 1:
            return self._value(outputs[0], result)
        return self._named(outputs, result, fn_name)

    def into(self, cls: type, fn_name: str, result: Any, **extra: Any) -> Any:
        """``cls`` filled from the struct ``fn_name`` returns (plus ``extra`` fields not on chain)."""
        named = self.decode(fn_name, result)
        if not isinstance(named, Mapping):
            raise ConfigError(f"{fn_name}: returns {type(named).__name__}, not a struct")
        wanted = {f.name for f in fields(cls)} - set(extra)
        if set(named) != wanted:
            missing, unknown = sorted(wanted - set(named)), sorted(set(named) - wanted)
            raise ConfigError(f"{fn_name}: the ABI's fields do not match {cls.__name__} "
                              f"(missing on chain: {missing or '-'}; unknown to Python: {unknown or '-'}); "
                              "the contract and arledger.chain disagree: rebuild both")
        return cls(**named, **extra)

    def struct_components(self, fn_name: str, position: int | None = None) -> list[dict]:
        """The ABI components (name, type) of ``fn_name``'s struct input, in order: its single
        input, or the one at ``position`` of several."""
        inputs = next((e["inputs"] for e in self.artifact.entries("function") if e["name"] == fn_name), None)
        if inputs is None:
            raise ConfigError(f"{self.artifact.path or self.artifact.contract_name}: the ABI has no function {fn_name!r}")
        if position is None and len(inputs) != 1:
            raise ConfigError(f"{fn_name}: takes {len(inputs)} inputs, not one struct")
        entry = inputs[position or 0] if (position or 0) < len(inputs) else {"type": "missing"}
        if entry["type"] != "tuple":
            raise ConfigError(f"{fn_name}: input {position or 0} is not a struct")
        return list(entry["components"])

    def struct_arg(self, fn_name: str, view: Any, position: int | None = None) -> dict:
        """A dataclass as a struct argument of ``fn_name`` (its single tuple input, or the one at
        ``position``), keyed by the ABI's camelCase names: ``chain.abi`` encodes it by name, so field order
        never matters."""
        components = {snake(c["name"]): c["name"] for c in self.struct_components(fn_name, position)}
        have = {f.name for f in fields(view)}
        if set(components) != have:
            raise ConfigError(f"{fn_name}: the ABI's struct fields "
                              f"{sorted(components)} do not match {type(view).__name__} {sorted(have)}")
        return {abi_name: getattr(view, name) for name, abi_name in components.items()}

    def enum_members(self, internal_type: str) -> list[str]:
        return self.artifact.enum(internal_type.split(" ", 1)[1])

    def _named(self, abi: list[dict], values: Any, where: str) -> dict:
        if len(abi) != len(values):
            raise ConfigError(f"{where}: {len(values)} values for {len(abi)} ABI fields")
        out = {}
        for i, (entry, value) in enumerate(zip(abi, values)):
            if not entry.get("name"):
                raise ConfigError(f"{where}: output {i} has no name in the ABI")
            out[snake(entry["name"])] = self._value(entry, value)
        return out

    def _value(self, entry: dict, value: Any) -> Any:
        internal = entry.get("internalType", "")
        if entry["type"] == "tuple":
            return self._named(entry["components"], value, internal or "tuple")
        if entry["type"].startswith("tuple["):
            return [self._named(entry["components"], v, internal) for v in value]
        if internal.startswith("enum "):
            members = self.enum_members(internal)
            if not 0 <= int(value) < len(members):
                raise ConfigError(f"{internal}: value {value} is not one of its {len(members)} members")
            return members[int(value)]
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        return value
