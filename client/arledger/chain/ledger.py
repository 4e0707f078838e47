"""``Ledger``: every transaction, view and event of TrainingLedger, typed, over web3.py.

Why a thick class: every command (trainer, verifier, demo) talks to the contract
through here, so argument encoding, gas, nonces, receipts and error decoding live in
one place. Rules:

- Every transaction is estimated first; a call that would revert raises the typed
  exception named after the contract's custom error (``LedgerWrongClaimState`` ...)
  and nothing is sent ("nothing half-written on chain").
- A mined transaction with status 0 raises ``TransactionFailed``.
- Amounts are wei; losses micro-units; CIDs on chain are digests or binary CIDs.
- Nothing here assumes anvil, except ``mine_if_dev_chain`` which is only used when a
  dev chain with automine has no other traffic (see ``wait_for_block``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from requests.exceptions import ConnectionError as HTTPConnectionError, Timeout as HTTPTimeout
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TimeExhausted,
    Web3RPCError,
)

from arledger.chain.artifact import ContractArtifact, load_artifact
from arledger.chain.errors import RevertDecoder
from arledger.chain.views import ViewDecoder
from arledger.errors import ChainError, ChainUnavailable, ConfigError, ContractRevert, TransactionFailed
from arstore import cid_from_bytes

ZERO32 = b"\x00" * 32


# -- typed views ----------------------------------------------------------------------------
# Each view's fields are the snake_case names of its struct in ITrainingLedger.sol and
# are filled by name (arledger.chain.views); enum fields hold member names ("Open").


@dataclass(frozen=True)
class TaskParams:
    spec_digest: bytes
    reward_per_improvement: int
    verifier_fee: int
    min_trainer_stake: int
    min_verifier_stake: int
    challenge_bond: int
    quorum: int
    reveal_window: int
    challenge_window: int
    voting_window: int
    min_improvement: int
    baseline_loss: int


@dataclass(frozen=True)
class SealParams:
    """What makes a task sealed (``createSealedTask``; arledger.sealed builds it)."""

    shard_root: bytes
    rounds: int
    round_length: int
    open_grace: int
    sponsor_bond: int


@dataclass(frozen=True)
class SealView:
    """A task's sealed schedule (``seal``); ``rounds == 0``: an open task."""

    task_id: int
    shard_root: bytes
    start: int
    round_length: int
    open_grace: int
    rounds: int
    bond: int
    bond_per_round: int

    @property
    def sealed(self) -> bool:
        return self.rounds > 0

    def round_at(self, timestamp: int) -> int | None:
        """The round a commit at ``timestamp`` falls in (None: before the start or after the last)."""
        if timestamp < self.start:
            return None
        r = (timestamp - self.start) // self.round_length
        return r if r < self.rounds else None

    def round_end(self, round_: int) -> int:
        return self.start + (round_ + 1) * self.round_length

    def open_deadline(self, round_: int) -> int:
        return self.round_end(round_) + self.open_grace


@dataclass(frozen=True)
class ClaimSeal:
    """What a claim of a sealed task adds (``claimSeal``)."""

    claim_id: int
    round: int
    scored: bool
    incumbent_id: int
    incumbent_loss: int


@dataclass(frozen=True)
class RoundInfo:
    """One round of a sealed task (``sealedRound``): its shard once opened, its claims, its bond share."""

    task_id: int
    round: int
    digest: bytes
    opened_at: int
    claims: int
    paid: int
    released: bool


@dataclass(frozen=True)
class ShardInfo:
    """An opened shard: its digest (sha256 of its bytes), CID and opening time."""

    task_id: int
    round: int
    digest: bytes
    cid: str
    opened_at: int


@dataclass(frozen=True)
class Task:
    task_id: int
    sponsor: str
    spec_digest: bytes
    pool: int
    reward_per_improvement: int
    verifier_fee: int
    min_trainer_stake: int
    min_verifier_stake: int
    challenge_bond: int
    quorum: int
    reveal_window: int
    challenge_window: int
    voting_window: int
    min_improvement: int
    baseline_loss: int
    best_claim_id: int
    best_loss: int
    claim_count: int


@dataclass(frozen=True)
class Claim:
    claim_id: int
    trainer: str
    task_id: int
    parent_id: int
    num_segments: int
    state: str
    confirmations: int
    merkle_root: bytes
    stake: int
    claimed_loss: int
    challenge_deadline: int
    seed: bytes
    open_dispute: str | None


@dataclass(frozen=True)
class Dispute:
    dispute_id: str
    claim_id: int
    kind: str
    segment: int
    state: str
    challenger: str
    votes_uphold: int
    votes_dismiss: int
    opened_at: int
    voting_deadline: int
    per_voter_share: int


@dataclass(frozen=True)
class VerifierInfo:
    registered: bool
    stake: int
    bindings: int


@dataclass(frozen=True)
class CommitmentInfo:
    block_number: int
    timestamp: int
    revealed: bool


@dataclass(frozen=True)
class Event:
    """A decoded contract event with what a follower needs (block hash, log index)."""

    name: str
    args: dict
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


@dataclass(frozen=True)
class RevealInfo:
    """What only the ClaimRevealed event carries (not stored by the contract, for gas)."""

    claim_id: int
    code_cid: str
    manifest_digest: bytes
    commitment: bytes
    block_number: int
    timestamp: int
    tx_hash: str


@dataclass
class TxResult:
    tx_hash: str
    block_number: int
    gas_used: int
    events: list[Event] = field(default_factory=list)

    def event(self, name: str) -> dict:
        for ev in self.events:
            if ev.name == name:
                return ev.args
        raise KeyError(f"transaction {self.tx_hash} emitted no {name} event")


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _b32(value: Any, field: str = "value") -> bytes:
    """32 bytes from bytes or hex text; a ConfigError naming ``field`` otherwise."""
    try:
        if isinstance(value, str):
            value = bytes.fromhex(value[2:] if value.startswith("0x") else value)
        value = bytes(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{field}: expected 32 bytes (or 64 hex digits), got {value!r}") from None
    if len(value) != 32:
        raise ConfigError(f"{field}: expected 32 bytes, got {len(value)}")
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ClaimFields:
    """What a claim commits to and then reveals: ITrainingLedger's ``ClaimFields`` by name, the
    one list of them in Python (their order and types come from the ABI: ``compute_commitment``)."""

    task_id: int
    parent_id: int
    code_cid: bytes
    manifest_digest: bytes
    merkle_root: bytes
    num_segments: int
    claimed_loss: int
    salt: bytes
    round: int = 0  # a sealed task's round (arledger.sealed); 0 on an open task

    def __post_init__(self):
        object.__setattr__(self, "code_cid", bytes(self.code_cid))
        for name in ("manifest_digest", "merkle_root", "salt"):
            object.__setattr__(self, name, _b32(getattr(self, name), name))


@dataclass(frozen=True)
class Evidence:
    """What a challenge puts on chain (``challenge``'s arguments after the claim id): the kind, and
    for a segment the claimed boundary hashes with their Merkle proofs and the end state the
    challenger observed; an artifact or evaluation challenge leaves the rest at zero (an
    evaluation's ``observed`` is the measured loss, right-aligned)."""

    kind: str | int
    segment: int = 0
    claimed_start: Any = ZERO32
    claimed_end: Any = ZERO32
    start_proof: Sequence = ()
    end_proof: Sequence = ()
    observed: Any = ZERO32


def compute_commitment(trainer: str, fields: ClaimFields, artifact: ContractArtifact | None = None) -> bytes:
    """keccak256(abi.encode(trainer, fields)): the contract's ``commitmentOf``, computed here, with
    the struct's component order and types read from the ABI (``reveal``'s one argument)."""
    decoder = ViewDecoder(artifact or load_artifact())
    named = decoder.struct_arg("reveal", fields)
    components = decoder.struct_components("reveal")
    tuple_type = "(" + ",".join(c["type"] for c in components) + ")"
    values = tuple(named[c["name"]] for c in components)
    return keccak(encode(["address", tuple_type], [to_checksum_address(trainer), values]))


# -- the ledger -----------------------------------------------------------------------------


class Ledger:
    """One deployed TrainingLedger, seen through one web3 connection and (optionally) one account."""

    def __init__(self, w3: Web3, address: str, account: Any = None, artifact: ContractArtifact | None = None,
                 deploy_block: int = 0):
        self.w3 = w3
        # Where log scans start: nothing of this ledger exists before its deployment.
        self.deploy_block = int(deploy_block)
        self.artifact = artifact or load_artifact()
        self.address = to_checksum_address(address)
        self.account = account
        self.contract = w3.eth.contract(address=self.address, abi=self.artifact.abi)
        self.decoder = RevertDecoder(self.artifact.abi)
        self.views = ViewDecoder(self.artifact)
        self._events = {e["name"]: getattr(self.contract.events, e["name"])
                        for e in self.artifact.entries("event")}
        self._topic_to_event = {}
        for e in self.artifact.entries("event"):
            sig = f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})"
            self._topic_to_event[keccak(text=sig)] = e["name"]

    # -- construction ----------------------------------------------------------------

    @staticmethod
    def connect_rpc(rpc_url: str, timeout: float = 30) -> Web3:
        if not rpc_url or not str(rpc_url).startswith(("http://", "https://")):
            raise ConfigError(f"rpc-url: {rpc_url!r} is not an http(s):// JSON-RPC URL")
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        try:
            w3.eth.chain_id
        except Exception as exc:  # connection refused, DNS, HTTP errors, not JSON-RPC...
            raise ChainUnavailable(f"cannot reach the JSON-RPC endpoint {rpc_url}: {_why_unreachable(exc)}") from None
        return w3

    @classmethod
    def deploy(cls, w3: Web3, account: Any, artifact: ContractArtifact | None = None) -> "Ledger":
        artifact = artifact or load_artifact()
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor().build_transaction(_base_tx(w3, account.address))
        tx["gas"] = int(w3.eth.estimate_gas(tx) * 1.2)
        receipt = _send_signed(w3, account, tx)
        return cls(w3, receipt["contractAddress"], account, artifact, deploy_block=receipt["blockNumber"])

    def with_account(self, account: Any) -> "Ledger":
        return Ledger(self.w3, self.address, account, self.artifact, self.deploy_block)

    @property
    def account_address(self) -> str:
        if self.account is None:
            raise ConfigError("no account configured: set ARLEDGER_KEY or ARLEDGER_KEYSTORE (or pass --key)")
        return self.account.address

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    # -- sending ---------------------------------------------------------------------

    def _transact(self, fn_name: str, *args: Any, value: int = 0) -> TxResult:
        sender = self.account_address
        fn = getattr(self.contract.functions, fn_name)(*args)
        with self._rpc_errors(fn_name):
            tx = _base_tx(self.w3, sender, value)
            try:
                tx = fn.build_transaction(tx)
                tx["gas"] = int(self.w3.eth.estimate_gas(tx) * 1.25) + 10_000
            except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                raise self._revert(exc, fn_name) from None
            except (Web3RPCError, ValueError) as exc:
                # Some nodes answer reverts as plain RPC errors (with data); without revert
                # data it is the node refusing the call (insufficient funds, bad nonce...).
                if _revert_data(exc) is None:
                    raise ChainError(f"{fn_name}: the node refused the transaction: {_rpc_message(exc)}") from None
                raise self._revert(exc, fn_name) from None
            receipt = _send_signed(self.w3, self.account, tx)
        result = TxResult(_hex(receipt["transactionHash"]), receipt["blockNumber"], receipt["gasUsed"],
                          self._decode_receipt(receipt))
        if receipt["status"] != 1:
            raise TransactionFailed(f"{fn_name}: transaction {result.tx_hash} failed in block {result.block_number}")
        return result

    def _call(self, fn_name: str, *args: Any) -> Any:
        with self._rpc_errors(fn_name):
            try:
                return getattr(self.contract.functions, fn_name)(*args).call()
            except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                raise self._revert(exc, fn_name) from None
            except BadFunctionCallOutput:
                # Empty or undecodable return data: the address holds some other contract.
                raise ConfigError(f"ledger: the contract at {self.address} does not answer {fn_name}() as a "
                                  "TrainingLedger does: is --ledger (or $ARLEDGER_LEDGER) the ledger's address? "
                                  "`artrain ledger verify` checks one") from None

    @contextmanager
    def _rpc_errors(self, context: str):
        """Transport failures in the middle of a call become one clear ChainError naming the URL."""
        url = getattr(self.w3.provider, "endpoint_uri", "the JSON-RPC endpoint")
        try:
            yield
        except (HTTPConnectionError, HTTPTimeout) as exc:
            raise ChainUnavailable(f"{context}: lost the JSON-RPC endpoint {url}: {_why_unreachable(exc)}") from None
        except TimeExhausted as exc:
            raise ChainError(f"{context}: no receipt from {url} in time ({exc})") from None

    def _revert(self, exc: Exception, context: str) -> ContractRevert:
        err = self.decoder.decode(_revert_data(exc), context)
        if not err.data and "revert" in str(exc).lower():
            err = type(err)(f"{context}: {exc}", err.error_args, err.data)
        return err

    def _decode_receipt(self, receipt) -> list[Event]:
        out = []
        for log in receipt["logs"]:
            ev = self._decode_log(log)
            if ev is not None:
                out.append(ev)
        return out

    def _decode_log(self, log) -> Event | None:
        if to_checksum_address(log["address"]) != self.address or not log["topics"]:
            return None
        name = self._topic_to_event.get(bytes(log["topics"][0]))
        if name is None:
            return None
        decoded = self._events[name]().process_log(log)
        return Event(name, _plain(dict(decoded["args"])), log["blockNumber"], _hex(log["blockHash"]),
                     log["logIndex"], _hex(log["transactionHash"]))

    # -- tasks -----------------------------------------------------------------------

    def create_task(self, params: TaskParams, value: int = 0) -> TxResult:
        return self._transact("createTask", self.views.struct_arg("createTask", params), value=value)

    def create_sealed_task(self, params: TaskParams, seal: SealParams, value: int = 0) -> TxResult:
        return self._transact("createSealedTask", self.views.struct_arg("createSealedTask", params, 0),
                              self.views.struct_arg("createSealedTask", seal, 1), value=value)

    def seal(self, task_id: int) -> SealView:
        return self.views.into(SealView, "seal", self._call("seal", task_id), task_id=task_id)

    def open_shard(self, task_id: int, round_: int, digest: bytes, cid: bytes, proof: Sequence[bytes]) -> TxResult:
        return self._transact("openShard", task_id, round_, _b32(digest, "shard digest"), bytes(cid),
                              [_b32(p, "proof") for p in proof])

    def sealed_round(self, task_id: int, round_: int) -> RoundInfo:
        return self.views.into(RoundInfo, "sealedRound", self._call("sealedRound", task_id, round_),
                               task_id=task_id, round=round_)

    def shard(self, task_id: int, round_: int) -> ShardInfo | None:
        """Round ``round_``'s opened shard (None while it is sealed), its CID from ShardOpened."""
        r = self.sealed_round(task_id, round_)
        digest, opened_at = r.digest, r.opened_at
        if not opened_at:
            return None
        evs = self.events(self.deploy_block, self.block_number(), ["ShardOpened"],
                          topics=[self._event_topic("ShardOpened"), _hex(int(task_id).to_bytes(32, "big")),
                                  _hex(int(round_).to_bytes(32, "big"))])
        if not evs:
            raise ConfigError(f"task {task_id} round {round_}: opened on chain but no ShardOpened event found")
        return ShardInfo(task_id, round_, bytes(digest), cid_from_bytes(evs[-1].args["shardCid"]), int(opened_at))

    def score(self, claim_id: int, claimed_loss: int, incumbent_id: int, incumbent_loss: int) -> TxResult:
        return self._transact("score", claim_id, int(claimed_loss), int(incumbent_id), int(incumbent_loss))

    def claim_seal(self, claim_id: int) -> ClaimSeal:
        return self.views.into(ClaimSeal, "claimSeal", self._call("claimSeal", claim_id), claim_id=claim_id)

    def release_round(self, task_id: int, round_: int) -> TxResult:
        return self._transact("releaseRound", task_id, round_)

    def fund_task(self, task_id: int, value: int) -> TxResult:
        return self._transact("fundTask", task_id, value=value)

    def task(self, task_id: int) -> Task:
        return self.views.into(Task, "task", self._call("task", task_id), task_id=task_id)

    def task_count(self) -> int:
        return self._call("taskCount")

    # -- claims ----------------------------------------------------------------------

    def compute_commitment(self, trainer: str, fields: ClaimFields) -> bytes:
        return compute_commitment(trainer, fields, self.artifact)

    def commitment_of(self, trainer: str, fields: ClaimFields) -> bytes:
        """The contract's own ``commitmentOf`` (a view; ``compute_commitment`` gives the same here)."""
        return bytes(self._call("commitmentOf", to_checksum_address(trainer), self.views.struct_arg("reveal", fields)))

    def commit(self, commitment: bytes) -> TxResult:
        return self._transact("commit", _b32(commitment, "commitment"))

    def commitment_info(self, commitment: bytes) -> CommitmentInfo:
        return self.views.into(CommitmentInfo, "commitmentInfo", self._call("commitmentInfo", _b32(commitment, "commitment")))

    def reveal(self, fields: ClaimFields, value: int) -> TxResult:
        return self._transact("reveal", self.views.struct_arg("reveal", fields), value=value)

    def claim(self, claim_id: int) -> Claim:
        c = self.views.into(Claim, "claim", self._call("claim", claim_id), claim_id=claim_id)
        return replace(c, open_dispute=None if c.open_dispute == ZERO32 else _hex(c.open_dispute))

    def claim_state(self, claim_id: int) -> str:
        return self.views.decode("claimState", self._call("claimState", claim_id))

    def confirmations(self, claim_id: int) -> int:
        return self.claim(claim_id).confirmations

    def best_claim(self, task_id: int) -> tuple[int, int]:
        best = self.views.decode("bestClaim", self._call("bestClaim", task_id))
        return best["claim_id"], best["loss"]

    def task_claims(self, task_id: int, offset: int = 0, limit: int = 100) -> list[int]:
        return list(self._call("taskClaims", task_id, offset, limit))

    def claim_count(self, task_id: int) -> int:
        return self._call("claimCount", task_id)

    def total_claims(self) -> int:
        return self._call("totalClaims")

    def sample_seed(self, claim_id: int) -> bytes:
        return bytes(self._call("sampleSeed", claim_id))

    def finalize(self, claim_id: int) -> TxResult:
        return self._transact("finalize", claim_id)

    def report(self, task_id: int, code_cid: bytes, manifest_digest: bytes, loss: int, note: str) -> TxResult:
        return self._transact("report", task_id, bytes(code_cid), _b32(manifest_digest, "manifest_digest"), loss, note)

    # -- verifiers -------------------------------------------------------------------

    def register_verifier(self, value: int) -> TxResult:
        return self._transact("registerVerifier", value=value)

    def unregister_verifier(self) -> TxResult:
        return self._transact("unregisterVerifier")

    def verifier_info(self, account: str) -> VerifierInfo:
        return self.views.into(VerifierInfo, "verifierInfo", self._call("verifierInfo", to_checksum_address(account)))

    def confirm(self, claim_id: int, segments: Sequence[int], measured_loss: int) -> TxResult:
        return self._transact("confirm", claim_id, [int(s) for s in segments], int(measured_loss))

    def has_confirmed(self, claim_id: int, account: str) -> bool:
        return self._call("hasConfirmed", claim_id, to_checksum_address(account))

    def challenge(self, claim_id: int, evidence: Evidence, value: int | None = None) -> TxResult:
        """Open a dispute with ``evidence``; ``value``: the bond [default: the task's exact bond]."""
        e = evidence
        if value is None:
            value = self.task(self.claim(claim_id).task_id).challenge_bond
        return self._transact("challenge", claim_id, self._kind(e.kind), e.segment,
                              _b32(e.claimed_start, "claimed_start"), _b32(e.claimed_end, "claimed_end"),
                              [_b32(p, "start_proof") for p in e.start_proof],
                              [_b32(p, "end_proof") for p in e.end_proof], _b32(e.observed, "observed"),
                              value=value)

    def _kind(self, kind: str | int) -> int:
        kinds = self.artifact.enum("ChallengeKind")
        if isinstance(kind, str):
            if kind not in kinds:
                raise ConfigError(f"challenge kind: {kind!r} is not one of {', '.join(kinds)}")
            return kinds.index(kind)
        if not 0 <= int(kind) < len(kinds):
            raise ConfigError(f"challenge kind: {kind} is not one of 0..{len(kinds) - 1} ({', '.join(kinds)})")
        return int(kind)

    def dispute_id(self, claim_id: int, kind: str | int, segment: int) -> str:
        """The contract's own ``disputeIdOf`` (one definition of the id, on chain)."""
        return _hex(self._call("disputeIdOf", claim_id, self._kind(kind), segment))

    def dispute(self, dispute_id: str | bytes) -> Dispute:
        did = _b32(dispute_id, "dispute_id")
        return self.views.into(Dispute, "dispute", self._call("dispute", did), dispute_id=_hex(did))

    def dispute_state(self, dispute_id: str | bytes) -> str:
        return self.views.decode("disputeState", self._call("disputeState", _b32(dispute_id, "dispute_id")))

    def vote(self, dispute_id: str | bytes, uphold: bool) -> TxResult:
        return self._transact("vote", _b32(dispute_id, "dispute_id"), bool(uphold))

    def has_voted(self, dispute_id: str | bytes, account: str) -> bool:
        return self._call("hasVoted", _b32(dispute_id, "dispute_id"), to_checksum_address(account))

    def resolve_dispute(self, dispute_id: str | bytes) -> TxResult:
        return self._transact("resolveDispute", _b32(dispute_id, "dispute_id"))

    def settle(self, claim_id: int) -> TxResult:
        return self._transact("settle", claim_id)

    def settle_vote(self, dispute_id: str | bytes) -> TxResult:
        return self._transact("settleVote", _b32(dispute_id, "dispute_id"))

    # -- money -----------------------------------------------------------------------

    def balance_of(self, account: str) -> int:
        return self._call("balanceOf", to_checksum_address(account))

    def withdraw(self) -> TxResult:
        return self._transact("withdraw")

    # -- Merkle helpers on chain -----------------------------------------------------

    def leaf_hash(self, index: int, state_hash: bytes) -> bytes:
        return bytes(self._call("leafHash", index, _b32(state_hash, "state_hash")))

    def verify_boundary(self, claim_id: int, index: int, state_hash: bytes, proof: Sequence[bytes]) -> bool:
        return self._call("verifyBoundary", claim_id, index, _b32(state_hash, "state_hash"),
                          [_b32(p, "proof") for p in proof])

    # -- blocks and events -----------------------------------------------------------

    def block_number(self) -> int:
        return self.w3.eth.block_number

    def block_hash(self, number: int) -> str:
        block = self.w3.eth.get_block(number)
        return _hex(block["hash"])

    def block_timestamp(self, number: int | str = "latest") -> int:
        return int(self.w3.eth.get_block(number)["timestamp"])

    def events(self, from_block: int, to_block: int, names: Iterable[str] | None = None,
               topics: list | None = None) -> list[Event]:
        """Decoded events of this contract in [from_block, to_block], in chain order."""
        if to_block < from_block:
            return []
        flt: dict[str, Any] = {"address": self.address, "fromBlock": from_block, "toBlock": to_block}
        if topics:
            flt["topics"] = topics
        logs = self.w3.eth.get_logs(flt)
        wanted = set(names) if names else None
        out = []
        for log in logs:
            ev = self._decode_log(log)
            if ev is not None and (wanted is None or ev.name in wanted):
                out.append(ev)
        return sorted(out, key=lambda e: (e.block_number, e.log_index))

    def _event_topic(self, name: str) -> str:
        for topic, n in self._topic_to_event.items():
            if n == name:
                return _hex(topic)
        raise KeyError(name)

    def claim_revealed_event(self, claim_id: int) -> RevealInfo:
        """The ClaimRevealed event of a claim (code CID, manifest digest: not stored on chain)."""
        topic_id = _hex(int(claim_id).to_bytes(32, "big"))
        evs = self.events(self.deploy_block, self.block_number(), ["ClaimRevealed"],
                          topics=[self._event_topic("ClaimRevealed"), topic_id])
        if not evs:
            raise ConfigError(f"claim {claim_id}: no ClaimRevealed event on this chain (unknown claim?)")
        ev = evs[-1]
        a = ev.args
        return RevealInfo(claim_id, cid_from_bytes(a["codeCid"]), bytes(a["manifestDigest"]),
                          bytes(a["commitment"]), ev.block_number, self.block_timestamp(ev.block_number), ev.tx_hash)

    def confirmed_segments(self, claim_id: int) -> tuple[int, ...]:
        """Every segment the claim's confirmations so far listed (ClaimConfirmed events), sorted:
        the later verifiers' sampling spreads around them (arverifier.sampling)."""
        topic_id = _hex(int(claim_id).to_bytes(32, "big"))
        evs = self.events(self.deploy_block, self.block_number(), ["ClaimConfirmed"],
                          topics=[self._event_topic("ClaimConfirmed"), topic_id])
        return tuple(sorted({int(s) for ev in evs for s in ev.args["segments"]}))

    def find_reveal(self, commitment: bytes, trainer: str) -> Event:
        wanted = _b32(commitment, "commitment")
        topic_trainer = _hex(bytes(12) + bytes.fromhex(to_checksum_address(trainer)[2:]))
        evs = self.events(self.deploy_block, self.block_number(), ["ClaimRevealed"],
                          topics=[self._event_topic("ClaimRevealed"), None, None, topic_trainer])
        for ev in evs:
            if bytes(ev.args["commitment"]) == wanted:
                return ev
        raise ConfigError(f"commitment {_hex(wanted)}: revealed on chain but no ClaimRevealed event found")

    def wait_for_block(self, number: int, timeout: float = 120.0, poll: float = 0.2) -> None:
        """Wait until the chain head is at least ``number``.

        On a dev chain that mines only on demand (anvil/hardhat automine) with no other
        traffic the head would never move, so empty blocks are mined there (``evm_mine``)
        until it arrives; a real chain refuses ``evm_mine`` and is simply waited for.
        """
        deadline = time.monotonic() + timeout
        can_mine = True
        while self.block_number() < number:
            if can_mine:
                can_mine = self.mine_if_dev_chain()
                if can_mine:
                    continue
            if time.monotonic() > deadline:
                raise ChainUnavailable(f"block {number} did not arrive within {timeout:.0f}s "
                                       f"(head is {self.block_number()})")
            time.sleep(poll)

    def mine_if_dev_chain(self) -> bool:
        """Mine one empty block if the node allows it (anvil, hardhat); False on a real chain."""
        try:
            resp = self.w3.provider.make_request("evm_mine", [])
        except Exception:
            return False
        return not (isinstance(resp, dict) and resp.get("error"))


# -- helpers --------------------------------------------------------------------------------


def _revert_data(exc: Exception) -> Any:
    """The revert payload carried by a web3 exception, however the node shaped it (None if none)."""
    data = getattr(exc, "data", None)
    if data is None:
        data = getattr(exc, "rpc_response", None) or None
        if isinstance(data, dict):
            data = data.get("error", {}).get("data")
    if data is None and exc.args and isinstance(exc.args[0], dict):
        data = exc.args[0].get("data")
    if isinstance(data, dict):
        data = data.get("data")
    if data is None and exc.args and isinstance(exc.args[-1], str) and exc.args[-1].startswith("0x"):
        data = exc.args[-1]
    return data


def _rpc_message(exc: Exception) -> str:
    if exc.args and isinstance(exc.args[0], dict) and "message" in exc.args[0]:
        return str(exc.args[0]["message"])
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _why_unreachable(exc: Exception) -> str:
    """A short reason for a failed connection instead of urllib3's nested repr."""
    text = str(exc)
    if isinstance(exc, HTTPTimeout) or "timed out" in text.lower():
        return "timed out"
    if "Connection refused" in text:
        return "connection refused (is the node running?)"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    if isinstance(exc, HTTPConnectionError):
        return "connection failed"
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def _abi_type(inp: dict) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in inp["components"])
        return f"({inner}){t[5:]}"
    return t


def _base_tx(w3: Web3, sender: str, value: int = 0) -> dict:
    tx: dict[str, Any] = {"from": sender, "value": int(value), "chainId": w3.eth.chain_id,
                          "nonce": w3.eth.get_transaction_count(sender, "pending")}
    try:
        base = w3.eth.get_block("latest").get("baseFeePerGas")
    except Exception:
        base = None
    if base is not None:
        tip = w3.to_wei(1, "gwei")
        tx.update(maxPriorityFeePerGas=tip, maxFeePerGas=int(base) * 2 + tip)
    else:
        tx["gasPrice"] = w3.eth.gas_price
    return tx


def _send_signed(w3: Web3, account: Any, tx: dict, timeout: float = 120):
    signed = account.sign_transaction(tx)
    raw = getattr(signed, "raw_transaction", None) or getattr(signed, "rawTransaction")
    try:
        tx_hash = w3.eth.send_raw_transaction(raw)
    except Web3RPCError as exc:  # nonce too low, underpriced, insufficient funds...
        raise ChainError(f"the node rejected the transaction from {account.address}: {_rpc_message(exc)}") from None
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)
