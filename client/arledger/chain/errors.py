"""Contract reverts as typed Python exceptions, generated from the ABI's error entries.

Every ``error LedgerX(...)`` in the ABI becomes ``class LedgerX(ContractRevert)``
(created once per name, so ``except LedgerX`` works wherever the class was obtained).
Import them by name from this module (``from arledger.chain.errors import
LedgerWrongClaimState``): the module's ``__getattr__`` builds them from the default
artifact on first use. ``decode_revert`` turns raw revert data into an instance with
the error's arguments by name (``exc.error_args["claimId"]`` or ``exc.claimId``).
Solidity's built-in ``Error(string)`` and ``Panic(uint256)`` decode to
``RevertMessage`` and ``Panic``; unknown selectors to ``UnknownRevert``.
"""

from __future__ import annotations

import threading
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

from arledger.chain.abi import abi_type, normalize, signature as abi_signature
from arledger.chain.artifact import load_artifact
from arledger.chain.units import format_amount
from arledger.errors import ContractRevert


class RevertMessage(ContractRevert):
    """``require(cond, "message")`` / ``revert("message")``: Error(string)."""

    error_name = "Error"


class Panic(ContractRevert):
    """A Solidity panic (assert, overflow, division by zero...): Panic(uint256)."""

    error_name = "Panic"


class UnknownRevert(ContractRevert):
    """A revert whose selector is not in the ABI, or with no data at all."""

    error_name = "UnknownRevert"


PANIC_CODES = {
    0x01: "assert failed",
    0x11: "arithmetic overflow/underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to zero-initialized function",
}

_ERROR_SELECTOR = keccak(text="Error(string)")[:4]
_PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]

_classes: dict[str, type[ContractRevert]] = {}
_lock = threading.Lock()


def revert_class(name: str, doc: str = "") -> type[ContractRevert]:
    """The (unique) exception class for a custom error name, created on first request."""
    with _lock:
        cls = _classes.get(name)
        if cls is None:
            cls = type(
                name,
                (ContractRevert,),
                {
                    "__doc__": doc or f"The contract reverted with custom error {name}.",
                    "__module__": __name__,
                    "error_name": name,
                },
            )
            _classes[name] = cls
        return cls


class RevertDecoder:
    """Maps 4-byte selectors of an ABI's errors to classes and decodes their arguments."""

    def __init__(self, abi: list[dict]):
        self._by_selector: dict[bytes, tuple[dict, type[ContractRevert]]] = {}
        for entry in abi:
            if entry.get("type") != "error":
                continue
            signature = abi_signature(entry)
            cls = revert_class(entry["name"], f"The contract reverted with {signature}.")
            self._by_selector[keccak(text=signature)[:4]] = (entry, cls)

    def classes(self) -> dict[str, type[ContractRevert]]:
        return {cls.__name__: cls for _, cls in self._by_selector.values()}

    def decode(self, data: bytes | str | None, context: str = "") -> ContractRevert:
        """An exception instance for raw revert data (never raises itself)."""
        raw = _to_bytes(data)
        where = f"{context}: " if context else ""
        selector, body = raw[:4], raw[4:]
        if selector in self._by_selector:
            entry, cls = self._by_selector[selector]
            inputs = entry.get("inputs", [])
            names = [i.get("name") or f"arg{n}" for n, i in enumerate(inputs)]
            try:
                values = abi_decode([abi_type(i) for i in inputs], body)
            except Exception:  # malformed payload: still name the error
                return cls(f"{where}{entry['name']} (undecodable arguments 0x{body.hex()})", {}, raw)
            args = {n: normalize(i, v) for n, i, v in zip(names, inputs, values)}
            if entry["name"] in SENTENCES:  # the errors a user meets: a sentence, amounts in ETH
                return cls(SENTENCES[entry["name"]](args), args, raw)
            shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
            return cls(f"{where}{entry['name']}({shown})", args, raw)
        if selector == _ERROR_SELECTOR:
            try:
                (msg,) = abi_decode(["string"], body)
            except Exception:
                msg = f"0x{body.hex()}"
            return RevertMessage(f"{where}reverted: {msg}", {"message": msg}, raw)
        if selector == _PANIC_SELECTOR:
            try:
                (code,) = abi_decode(["uint256"], body)
            except Exception:
                code = -1
            text = PANIC_CODES.get(code, "unknown panic")
            return Panic(f"{where}panic 0x{code:02x} ({text})", {"code": code}, raw)
        if not raw:
            return UnknownRevert(f"{where}reverted without data", {}, raw)
        return UnknownRevert(f"{where}reverted with unknown data 0x{raw.hex()}", {}, raw)


SENTENCES = {  # error name -> its sentence from the error's arguments (others show name(args))
    "LedgerUnknownTask": lambda a: f"task {a['taskId']} does not exist on this ledger",
    "LedgerUnknownClaim": lambda a: f"claim {a['claimId']} does not exist on this ledger",
    "LedgerNotVerifier": lambda a: (f"{a['account']} is not a registered verifier "
                                    "(`arverify register --stake 1eth` registers it)"),
    "LedgerStakeTooLow": lambda a: (f"{a['account']} stakes {format_amount(a['stake'])}, less than the "
                                    f"{format_amount(a['required'])} required"),
    "LedgerWrongBond": lambda a: (f"the bond sent is {format_amount(a['sent'])}; it must be exactly "
                                  f"{format_amount(a['required'])}"),
    "LedgerNothingToWithdraw": lambda a: f"{a['account']} has nothing to withdraw",
    "LedgerAmountTooLarge": lambda a: f"the amount {format_amount(a['amount'])} is larger than the ledger accepts",
    "LedgerZeroValue": lambda a: "the transaction sent no ETH where an amount is needed",
    "LedgerNoteTooLong": lambda a: f"the note is {a['length']} bytes, more than the {a['max']} allowed",
}


def _to_bytes(data: Any) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = str(data)
    if text.startswith("0x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)


_default: RevertDecoder | None = None


def default_decoder() -> RevertDecoder:
    """A decoder for the default artifact (loaded lazily; ConfigError if not built)."""
    global _default
    if _default is None:
        _default = RevertDecoder(load_artifact().abi)
    return _default


def decode_revert(data: bytes | str | None, context: str = "") -> ContractRevert:
    """Decode revert data against the default artifact's ABI."""
    return default_decoder().decode(data, context)


def __getattr__(name: str) -> type[ContractRevert]:
    # `from arledger.chain.errors import LedgerUnknownClaim` without hand-written classes.
    if name[:1].isupper() and not name.startswith("__"):
        classes = default_decoder().classes()
        if name in classes:
            return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
