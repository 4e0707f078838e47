"""``Signer``: one private key that signs the ledger's transactions, here, offline.

Why not eth_account: its import alone (0.6 s, a BLS pairing library it never uses for
this among it) was most of a chain command's start. Signing is three small standard
steps: RLP-encode the transaction (EIP-2718 type 2, or EIP-155 legacy on a chain without
a base fee), keccak256 it, and sign the hash with eth_keys (deterministic RFC 6979
nonces, so the same transaction always gives the same bytes; a test holds them equal to
eth_account's). Keystore files are decrypted by eth_keyfile, imported only when one is.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_keys import keys
from eth_utils import keccak, to_canonical_address


@dataclass(frozen=True)
class Transaction:
    """What a signer signs: ``to`` None deploys ``data``; ``gas_price`` set means a legacy
    transaction, else EIP-1559 fees."""

    chain_id: int
    nonce: int
    gas: int
    to: str | None
    value: int = 0
    data: bytes = b""
    max_fee: int = 0
    max_priority_fee: int = 0
    gas_price: int | None = None


class Signer:
    """A local account: ``.address`` (checksummed) and ``sign_transaction`` (raw bytes to send)."""

    def __init__(self, key: bytes):
        self._key = keys.PrivateKey(bytes(key))
        self.address: str = self._key.public_key.to_checksum_address()

    @classmethod
    def from_key(cls, key: str | bytes) -> "Signer":
        """From 32 bytes or 64 hex digits (with or without 0x); ValueError for anything else."""
        if isinstance(key, str):
            text = key.strip()
            key = bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)
        if len(key) != 32:
            raise ValueError(f"a private key is 32 bytes, not {len(key)}")
        try:
            return cls(key)
        except Exception:  # eth_keys' own ValidationError: zero, or not below the curve's order
            raise ValueError("not a secp256k1 private key (zero, or not below the curve order)") from None

    @property
    def key(self) -> bytes:
        return self._key.to_bytes()

    def __repr__(self) -> str:  # never the key: a repr ends up in logs and tracebacks
        return f"Signer({self.address})"

    def sign_transaction(self, tx: Transaction) -> bytes:
        to = to_canonical_address(tx.to) if tx.to else b""
        if tx.gas_price is not None:  # EIP-155: the chain id signed in place of v, r, s
            fields = [tx.nonce, tx.gas_price, tx.gas, to, tx.value, tx.data]
            sig = self._key.sign_msg_hash(keccak(rlp([*fields, tx.chain_id, 0, 0])))
            return rlp([*fields, sig.v + 35 + 2 * tx.chain_id, sig.r, sig.s])
        fields = [tx.chain_id, tx.nonce, tx.max_priority_fee, tx.max_fee, tx.gas, to, tx.value, tx.data, []]
        sig = self._key.sign_msg_hash(keccak(b"\x02" + rlp(fields)))
        return b"\x02" + rlp([*fields, sig.v, sig.r, sig.s])


def decrypt_keystore(blob: dict, password: str) -> Signer:
    """The account of an encrypted keystore (ValueError for a wrong password)."""
    from eth_keyfile import decode_keyfile_json  # lazy: 0.5 s, and only keystore users need it

    return Signer(decode_keyfile_json(blob, password.encode()))


def rlp(item: int | bytes | list) -> bytes:
    """Recursive Length Prefix encoding of ints (big-endian, no leading zeros), bytes and lists."""
    if isinstance(item, list):
        payload = b"".join(rlp(x) for x in item)
        return _length(len(payload), 0xC0) + payload
    if isinstance(item, int):
        if item < 0:
            raise ValueError("RLP encodes no negative integers")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if len(item) == 1 and item[0] < 0x80:
        return bytes(item)
    return _length(len(item), 0x80) + bytes(item)


def _length(n: int, offset: int) -> bytes:
    if n < 56:
        return bytes([offset + n])
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size
