"""The contract's ABI as bytes: call data in, return values and logs out (over eth_abi).

One codec for everything that crosses the wire: ``Ledger`` encodes its calls and decodes
their results and its events here, and ``arledger.chain.errors`` decodes revert payloads
with the same value rules (``normalize``): bytes stay bytes, structs are tuples in ABI
order (``arledger.chain.views`` names them; an event's are dicts by name), arrays are lists, and addresses are
checksummed, so they compare equal to ``account.address``. A struct argument may be given
as a dict keyed by its ABI names (``views.struct_arg``): order never comes from Python.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from arledger.errors import ConfigError, UndecodableResult


def abi_type(entry: Mapping) -> str:
    """The canonical type of one ABI input or output: ``(uint32,bytes32)[]`` for a struct array."""
    t = entry["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in entry["components"]) + ")" + t[5:]
    return t


def signature(entry: Mapping) -> str:
    """``name(type,...)``: what a selector or an event topic hashes."""
    return f"{entry['name']}({','.join(abi_type(i) for i in entry.get('inputs', []))})"


def normalize(entry: Mapping, value: Any, by_name: bool = False) -> Any:
    """A decoded value by the rules above, walking ``entry``'s components and array levels; with
    ``by_name`` its structs are dicts keyed by their ABI names (an event's arguments)."""
    t = entry["type"]
    if t.endswith("]"):
        inner = dict(entry, type=t[: t.rindex("[")])
        return [normalize(inner, v, by_name) for v in value]
    if t == "tuple":
        pairs = [(c["name"], normalize(c, v, by_name)) for c, v in zip(entry["components"], value)]
        return dict(pairs) if by_name else tuple(v for _, v in pairs)
    if t == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _argument(entry: Mapping, value: Any) -> Any:
    """A Python argument as eth_abi takes it: structs from dicts by name (or sequences in order)."""
    t = entry["type"]
    if t.endswith("]"):
        inner = dict(entry, type=t[: t.rindex("[")])
        return [_argument(inner, v) for v in value]
    if t == "tuple":
        components = entry["components"]
        if isinstance(value, Mapping):
            missing = [c["name"] for c in components if c["name"] not in value]
            if missing:
                raise ConfigError(f"struct {entry.get('internalType', 'tuple')}: no value for {', '.join(missing)}")
            value = [value[c["name"]] for c in components]
        return tuple(_argument(c, v) for c, v in zip(components, value))
    return value


def _hashed(entry: Mapping) -> bool:
    t = entry["type"]
    return t in ("string", "bytes") or t.endswith("]") or t.startswith("tuple")


class ContractAbi:
    """One contract's functions and events, by name and by selector or topic."""

    def __init__(self, abi: Sequence[Mapping]):
        self._functions = {e["name"]: e for e in abi if e.get("type") == "function"}
        self._events = {e["name"]: e for e in abi if e.get("type") == "event"}
        self._topics = {keccak(text=signature(e)): e for e in self._events.values()}

    def function(self, name: str) -> Mapping:
        try:
            return self._functions[name]
        except KeyError:
            raise ConfigError(f"the contract's ABI has no function {name!r}") from None

    def call_data(self, name: str, args: Sequence[Any]) -> bytes:
        """Selector and encoded arguments of ``name(*args)``."""
        fn = self.function(name)
        inputs = fn.get("inputs", [])
        if len(args) != len(inputs):
            raise ConfigError(f"{name}: takes {len(inputs)} arguments, got {len(args)}")
        types = [abi_type(i) for i in inputs]
        values = [_argument(i, a) for i, a in zip(inputs, args)]
        try:
            body = encode(types, values)
        except Exception as exc:  # eth_abi's encoding errors name the type and the value
            raise ConfigError(f"{name}: cannot encode its arguments ({exc})") from None
        return keccak(text=signature(fn))[:4] + body

    def decode_result(self, name: str, data: bytes) -> Any:
        """What ``name`` returned: one value as itself, several as a tuple."""
        outputs = self.function(name).get("outputs", [])
        try:
            values = decode([abi_type(o) for o in outputs], data)
        except Exception:
            raise UndecodableResult(f"{name}: {len(data)} bytes of return data do not fit its ABI") from None
        values = tuple(normalize(o, v) for o, v in zip(outputs, values))
        return values[0] if len(values) == 1 else values

    def event_topic(self, name: str) -> bytes:
        if name not in self._events:
            raise ConfigError(f"the contract's ABI has no event {name!r}")
        return keccak(text=signature(self._events[name]))

    def decode_log(self, topics: Sequence[bytes], data: bytes) -> tuple[str, dict] | None:
        """``(event name, {argument: value})`` of a log this ABI emits; None for any other."""
        entry = self._topics.get(bytes(topics[0])) if topics else None
        if entry is None:
            return None
        inputs = entry["inputs"]
        indexed = [i for i in inputs if i.get("indexed")]
        plain = [i for i in inputs if not i.get("indexed")]
        if len(topics) != len(indexed) + 1:
            return None  # same signature, another layout of indexed arguments: not ours
        args: dict[str, Any] = {}
        for i, topic in zip(indexed, topics[1:]):
            if _hashed(i):  # an indexed string, bytes, array or struct: the topic is its keccak256
                args[i["name"]] = bytes(topic)
            else:
                args[i["name"]] = normalize(i, decode([abi_type(i)], bytes(topic))[0], by_name=True)
        for i, value in zip(plain, decode([abi_type(i) for i in plain], data)):
            args[i["name"]] = normalize(i, value, by_name=True)
        return entry["name"], {i["name"]: args[i["name"]] for i in inputs}
