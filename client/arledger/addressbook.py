"""Names for addresses: who is who on the ledger, for people reading it.

An address book is one JSON file, ``{"0x...": "alice", ...}`` (checksummed addresses, one
name each): ``$ARLEDGER_HOME/addressbook.json`` for the user (``artrain alias``), and
``addressbook.json`` in a demo's ``--out`` for the demo's cast, which ``artrain dashboard
--demo`` reads on top of the user's. A name is a label and nothing more: no command takes
a name where an address decides something (a transaction, a verdict), so a wrong entry can
mislead a reader, never move money.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from eth_utils import to_checksum_address

from arledger.chain.deployment import arledger_home
from arledger.errors import ConfigError
from arledger.files import atomic_write

FILE = "addressbook.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def default_path() -> Path:
    return arledger_home() / FILE


class AddressBook:
    """Address -> name, read from ``path`` (empty if it does not exist)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else default_path()
        self._names: dict[str, str] = {}
        if self.path.is_file():
            try:
                raw = json.loads(self.path.read_text())
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{self.path}: not JSON ({exc}); fix or remove it") from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{self.path}: an address book is an object of address -> name")
            for address, name in raw.items():
                self._names[_address(address, self.path)] = _name(name, self.path)

    def names(self) -> dict[str, str]:
        """Every entry, address (checksummed) -> name, sorted by name."""
        return dict(sorted(self._names.items(), key=lambda kv: (kv[1].lower(), kv[0])))

    def name_of(self, address: str | None) -> str | None:
        return self._names.get(to_checksum_address(address)) if address and ADDRESS.match(address) else None

    def merged(self, other: "AddressBook") -> dict[str, str]:
        """This book's entries with ``other``'s on top (a demo's cast over the user's names)."""
        return {**self._names, **other._names}

    def set(self, name: str, address: str) -> None:
        """Name ``address`` (a name names one address: giving it to another moves it)."""
        name, address = _name(name, "name"), _address(address, "address")
        self._names = {a: n for a, n in self._names.items() if n != name}
        self._names[address] = name
        self._save()

    def remove(self, name: str) -> str:
        """Forget ``name``; returns the address it named."""
        hits = [a for a, n in self._names.items() if n == name]
        if not hits:
            raise ConfigError(f"{name!r}: no such name in {self.path}")
        for a in hits:
            del self._names[a]
        self._save()
        return hits[0]

    def _save(self) -> None:
        atomic_write(self.path, (json.dumps(self._names, indent=1, sort_keys=True) + "\n").encode())


def _address(value: object, where: object) -> str:
    if not isinstance(value, str) or not ADDRESS.match(value):
        raise ConfigError(f"{where}: {value!r} is not a 0x-prefixed 20-byte address")
    return to_checksum_address(value)


def _name(value: object, where: object) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ConfigError(f"{where}: {value!r} is not a name (1 to 32 of letters, digits, '_', '.', '-', "
                          "starting with a letter or digit)")
    return value
