"""What crosses the wire to a node (arledger.chain: rpc, abi, signer): the signer's bytes are
eth_account's bytes, RLP is the yellow paper's, the codec reads structs by name, and a node
that is not one, or that drops a kept-alive connection, is one clear line or a retry."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from arledger.chain.abi import ContractAbi
from arledger.chain.artifact import load_artifact
from arledger.chain.ledger import Ledger
from arledger.chain.rpc import Call, Rpc
from arledger.chain.signer import rlp, Signer, Transaction
from arledger.devnet import dev_keys
from arledger.errors import ChainUnavailable, ConfigError, NodeRefused, UndecodableResult

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil's account 1
LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TXS = [
    Transaction(31337, 7, 150_000, LEDGER, 10**17, bytes(range(200)), max_fee=3 * 10**9, max_priority_fee=10**9),
    Transaction(1, 0, 21_000, LEDGER, 0, b"", gas_price=20 * 10**9),  # legacy, EIP-155
    Transaction(31337, 0, 3_000_000, None, 0, b"\x60\x00" * 300, max_fee=10**9, max_priority_fee=1),  # a deployment
]


def _eth_account_dict(tx: Transaction) -> dict:
    d = {"chainId": tx.chain_id, "nonce": tx.nonce, "gas": tx.gas, "value": tx.value, "data": tx.data}
    if tx.to:
        d["to"] = tx.to
    if tx.gas_price is not None:
        d["gasPrice"] = tx.gas_price
    else:
        d.update(maxFeePerGas=tx.max_fee, maxPriorityFeePerGas=tx.max_priority_fee)
    return d


@pytest.mark.parametrize("tx", TXS, ids=["eip1559", "legacy", "deploy"])
def test_the_signer_signs_the_bytes_eth_account_signs(tx):
    ours, theirs = Signer.from_key(KEY), Account.from_key(KEY)
    assert ours.address == theirs.address
    assert ours.sign_transaction(tx) == bytes(theirs.sign_transaction(_eth_account_dict(tx)).raw_transaction)


def test_a_bad_key_is_a_value_error_and_a_signer_never_shows_its_key():
    for bad in ("0x12", "zz" * 32, "0x" + "00" * 32, "0x" + "ff" * 32):
        with pytest.raises(ValueError):
            Signer.from_key(bad)
    s = Signer.from_key(KEY)
    assert KEY[2:] not in repr(s) and s.address in repr(s) and s.key.hex() == KEY[2:]


def test_rlp_is_the_yellow_papers():
    assert rlp(b"dog") == bytes.fromhex("83646f67")
    assert rlp([b"cat", b"dog"]) == bytes.fromhex("c88363617483646f67")
    assert (rlp(b""), rlp(0), rlp(15), rlp(1024), rlp([])) == (b"\x80", b"\x80", b"\x0f", b"\x82\x04\x00", b"\xc0")
    assert rlp([[], [[]], [[], [[]]]]) == bytes.fromhex("c7c0c1c0c3c0c1c0")
    long = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit"
    assert rlp(long) == b"\xb8\x38" + long
    with pytest.raises(ValueError):
        rlp(-1)


def test_the_codec_reads_structs_by_name_and_refuses_what_does_not_fit():
    abi = ContractAbi(load_artifact().abi)
    comps = load_artifact().function("reveal")["inputs"][0]["components"]
    fields = {c["name"]: (b"\x01" * 32 if c["type"] == "bytes32" else b"\x02\x03" if c["type"] == "bytes" else 5)
              for c in comps}
    shuffled = dict(reversed(list(fields.items())))  # Python's order never matters
    types = "(" + ",".join(c["type"] for c in comps) + ")"
    expected = keccak(text=f"reveal({types})")[:4] + encode([types], [tuple(fields[c["name"]] for c in comps)])
    assert abi.call_data("reveal", [shuffled]) == expected
    with pytest.raises(ConfigError, match=comps[0]["name"]):
        abi.call_data("reveal", [{k: v for k, v in fields.items() if k != comps[0]["name"]}])
    with pytest.raises(ConfigError, match="takes 1 arguments"):
        abi.call_data("reveal", [])
    with pytest.raises(UndecodableResult):
        abi.decode_result("taskCount", b"")
    assert abi.decode_result("taskCount", (7).to_bytes(32, "big")) == 7


def test_an_indexed_dynamic_argument_is_its_hash():
    event = {"type": "event", "name": "Noted", "anonymous": False, "inputs": [
        {"name": "who", "type": "address", "indexed": True}, {"name": "tag", "type": "string", "indexed": True},
        {"name": "pair", "type": "tuple", "indexed": False, "components": [
            {"name": "a", "type": "uint8"}, {"name": "b", "type": "address"}]}]}
    abi = ContractAbi([event])
    who = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    topics = [keccak(text="Noted(address,string,(uint8,address))"), bytes(12) + bytes.fromhex(who[2:]),
              keccak(text="hello")]
    name, args = abi.decode_log(topics, encode(["(uint8,address)"], [(3, who.lower())]))
    assert name == "Noted" and args == {"who": who, "tag": keccak(text="hello"), "pair": {"a": 3, "b": who}}
    assert abi.decode_log([keccak(text="Other()")], b"") is None


class _Node(BaseHTTPRequestHandler):
    """A JSON-RPC endpoint in a few lines: eth_chainId answers, anything else is an error; with
    ``drop`` it closes every connection after answering, without saying so (as an idle timeout does)."""

    protocol_version = "HTTP/1.1"
    drop = False
    html = False
    auth = None  # "Basic ..." this node requires
    served = 0
    closed = threading.Event()  # set when the server has closed a connection

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Node.served += 1
        if self.auth and self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.html:
            body, kind = b"<html>IPFS gateway</html>", "text/html"
        elif req["method"] == "eth_chainId":
            body, kind = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": "0x7a69"}).encode(), "application/json"
        else:
            body = json.dumps({"jsonrpc": "2.0", "id": req["id"],
                               "error": {"code": -32601, "message": f"method {req['method']} not found"}}).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = self.drop

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    def shutdown_request(self, request):
        super().shutdown_request(request)
        _Node.closed.set()


@pytest.fixture
def node():
    servers = []
    _Node.served = 0

    def start(**attrs):
        handler = type("Handler", (_Node,), attrs)
        server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_a_dropped_keep_alive_connection_is_opened_again_before_sending(node):
    """Seen before the request is written, never by sending it twice (a resent transaction
    would be answered "already known", and read as refused)."""
    rpc = Rpc(node(drop=True))
    answers = []
    for _ in range(3):
        answers.append(rpc.request("eth_chainId"))
        assert _Node.closed.wait(5)  # idle until the node has closed it, as after an idle timeout
        _Node.closed.clear()
    assert answers == ["0x7a69"] * 3 and _Node.served == 3
    with pytest.raises(NodeRefused) as ei:
        rpc.request("eth_mine")
    assert (ei.value.code, ei.value.message) == (-32601, "method eth_mine not found")


def test_an_endpoint_that_is_not_a_node_is_one_line(node):
    url = node(html=True)
    with pytest.raises(ChainUnavailable, match="is not a JSON-RPC endpoint") as ei:
        Ledger.connect_rpc(url)
    assert url in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(ConfigError, match="rpc-url"):
        Rpc("ftp://127.0.0.1:8545")
    with pytest.raises(ConfigError, match="no valid port"):
        Rpc("http://127.0.0.1:port")


def test_credentials_in_the_url_are_sent_and_their_absence_is_named(node):
    url = node(auth="Basic " + base64.b64encode(b"me:s3cret").decode())
    assert Rpc(url.replace("http://", "http://me:s3cret@")).request("eth_chainId") == "0x7a69"
    with pytest.raises(ChainUnavailable, match="refused access .HTTP 401.*credentials"):
        Rpc(url).request("eth_chainId")


@pytest.mark.chain
def test_a_legacy_transaction_signed_here_is_mined(chain):
    rpc = chain.ledger.rpc
    me, to = Signer.from_key(chain.keys[8]), chain.address(9)
    before = rpc.balance(to)
    tx = Transaction(rpc.chain_id(), rpc.nonce(me.address), 21_000, to, 12345, gas_price=rpc.gas_price())
    receipt = rpc.wait_for_receipt(rpc.send_raw(me.sign_transaction(tx)))
    assert receipt.status == 1 and rpc.balance(to) == before + 12345
    raw = rpc.call(Call(chain.ledger.address, chain.ledger.abi.call_data("taskCount", [])))
    assert chain.ledger.abi.decode_result("taskCount", raw) == chain.ledger.task_count()


@pytest.mark.chain
def test_anvils_own_keys_are_the_mnemonics(anvil_chain):
    """A devnet takes its accounts' keys from anvil's --config-out, not from an HD wallet here."""
    assert anvil_chain.anvil.keys == dev_keys() and len(dev_keys()) == 10
    assert anvil_chain.ledger.account_address == Signer.from_key(anvil_chain.keys[0]).address
