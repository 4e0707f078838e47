"""``Rpc``: JSON-RPC over HTTP to one EVM node, the one transport under ``Ledger``.

Why not web3.py: every command that talks to the chain paid for its import (0.9 s of a
1 s start, most of it packages a ledger never uses), and what the ledger needs of a node
is a dozen methods: calls, gas estimates, raw transactions, receipts, logs, blocks. So
this is the standard library's ``http.client`` with one kept-alive connection per thread,
and every answer is turned into Python types here: quantities to ints, data to bytes,
addresses as the node wrote them (``Ledger`` checksums what it compares). A request is
never sent twice: a kept-alive connection the node has closed is seen before it is used
(as urllib3 does), because a resent ``eth_sendRawTransaction`` would read as refused.
Credentials in the URL (``https://user:key@host``) go in a Basic ``Authorization`` header;
proxies are not used.

Errors, in one place: a node that cannot be reached is ``ChainUnavailable`` naming the
URL and the reason in a few words; a JSON-RPC error answer is ``NodeRefused`` with the
node's code, message and data (a revert carries its payload there: ``Ledger`` decodes it).
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit

from arledger.errors import ChainError, ChainUnavailable, ConfigError, NodeRefused


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    timestamp: int
    base_fee: int | None  # None before London (a legacy-priced chain)


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    status: int
    block_number: int
    gas_used: int
    effective_gas_price: int
    contract_address: str | None
    logs: tuple[Log, ...]

    @property
    def fee(self) -> int:
        """What the sender paid for gas, in wei."""
        return self.gas_used * self.effective_gas_price


@dataclass(frozen=True)
class Call:
    """A message to the node for ``eth_call`` / ``eth_estimateGas`` (``to`` None: a deployment)."""

    to: str | None
    data: bytes = b""
    sender: str | None = None
    value: int = 0

    def params(self) -> dict:
        out: dict[str, str] = {"data": "0x" + self.data.hex(), "value": hex(self.value)}
        if self.to is not None:
            out["to"] = self.to
        if self.sender is not None:
            out["from"] = self.sender
        return out


class Rpc:
    """One JSON-RPC endpoint (``http://`` or ``https://``). Thread-safe: one connection per thread."""

    def __init__(self, url: str, timeout: float = 30):
        if not url or not str(url).startswith(("http://", "https://")):
            raise ConfigError(f"rpc-url: {url!r} is not an http(s):// JSON-RPC URL")
        parts = urlsplit(str(url))
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"rpc-url: {url!r} has no valid port") from None
        if not parts.hostname:
            raise ConfigError(f"rpc-url: {url!r} names no host")
        self.url = str(url)
        self.timeout = float(timeout)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json"}
        if parts.username is not None:
            secret = f"{parts.username}:{parts.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
        self._local = threading.local()
        self._ids = itertools.count(1)
        self._chain_id: int | None = None

    # -- the transport --------------------------------------------------------------

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """The ``result`` of one JSON-RPC request; ``NodeRefused`` for an error answer."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)})
        reply = self._post(body.encode(), method)
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise ChainUnavailable(f"{self.url} did not answer {method} as a JSON-RPC endpoint does")
        if "error" in reply:
            err = reply["error"] if isinstance(reply["error"], dict) else {"message": str(reply["error"])}
            raise NodeRefused(method, int(err.get("code") or 0), str(err.get("message") or ""), err.get("data"))
        return reply["result"]

    def _post(self, body: bytes, method: str) -> Any:
        conn = self._connection()
        try:
            conn.request("POST", self._path, body, self._headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise ChainUnavailable(f"cannot reach the JSON-RPC endpoint {self.url} ({method}): {_why(exc)}") from None
        if response.status in (401, 403):
            raise ChainUnavailable(f"{self.url} refused access (HTTP {response.status}): does the URL need "
                                   "credentials (https://user:key@host)?")
        try:
            return json.loads(raw)
        except ValueError:
            raise ChainUnavailable(f"{self.url} is not a JSON-RPC endpoint (HTTP {response.status}: "
                                   f"{raw[:80]!r})") from None

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and _closed_by_peer(conn.sock):
            self._drop()  # the node closed it while idle: open another before sending anything
            conn = None
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._local.conn = cls(self._host, self._port, timeout=self.timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- what the ledger asks of a node ---------------------------------------------

    def chain_id(self) -> int:
        if self._chain_id is None:  # an endpoint's chain never changes under it
            self._chain_id = _int(self.request("eth_chainId"))
        return self._chain_id

    def block_number(self) -> int:
        return _int(self.request("eth_blockNumber"))

    def block(self, number: int | str = "latest") -> Block:
        tag = hex(number) if isinstance(number, int) else number
        b = self.request("eth_getBlockByNumber", [tag, False])
        if b is None:
            raise ChainError(f"block {number}: not on this chain (head is {self.block_number()})")
        base = b.get("baseFeePerGas")
        return Block(_int(b["number"]), b["hash"], _int(b["timestamp"]), None if base is None else _int(base))

    def code(self, address: str) -> bytes:
        return _bytes(self.request("eth_getCode", [address, "latest"]))

    def balance(self, address: str) -> int:
        return _int(self.request("eth_getBalance", [address, "latest"]))

    def nonce(self, address: str) -> int:
        """The next nonce of ``address``, counting its transactions still in the pool."""
        return _int(self.request("eth_getTransactionCount", [address, "pending"]))

    def gas_price(self) -> int:
        return _int(self.request("eth_gasPrice"))

    def call(self, message: Call) -> bytes:
        return _bytes(self.request("eth_call", [message.params(), "latest"]))

    def estimate_gas(self, message: Call) -> int:
        return _int(self.request("eth_estimateGas", [message.params()]))

    def send_raw(self, raw: bytes) -> str:
        return self.request("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])

    def receipt(self, tx_hash: str) -> Receipt | None:
        r = self.request("eth_getTransactionReceipt", [tx_hash])
        if r is None:
            return None
        return Receipt(r["transactionHash"], _int(r["status"]), _int(r["blockNumber"]), _int(r["gasUsed"]),
                       _int(r.get("effectiveGasPrice") or "0x0"), r.get("contractAddress"),
                       tuple(_log(x) for x in r["logs"]))

    def wait_for_receipt(self, tx_hash: str, timeout: float = 120, poll: float = 0.05) -> Receipt:
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise ChainError(f"transaction {tx_hash}: no receipt from {self.url} within {timeout:.0f}s")
            time.sleep(poll)

    def logs(self, address: str, from_block: int, to_block: int, topics: list | None = None) -> list[Log]:
        flt: dict[str, Any] = {"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if topics:
            flt["topics"] = topics
        return [_log(x) for x in self.request("eth_getLogs", [flt])]


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle kept-alive socket that is readable has been closed (or answered out of turn)."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: Any) -> bytes:
    text = str(value or "0x")
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _log(x: dict) -> Log:
    return Log(x["address"], tuple(_bytes(t) for t in x["topics"]), _bytes(x["data"]), _int(x["blockNumber"]),
               x["blockHash"], _int(x["logIndex"]), x["transactionHash"])


def _why(exc: BaseException) -> str:
    """A short reason for a failed connection instead of a nested repr."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the node running?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host name"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return "the node closed the connection"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
