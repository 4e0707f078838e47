"""Views decode by the ABI's names: every field round-trips by name, a reordered struct
decodes the same, and a renamed field is an error, never a misread (no chain needed)."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from arledger.chain.artifact import ContractArtifact, load_artifact
from arledger.chain.ledger import (
    Claim,
    ClaimSeal,
    CommitmentInfo,
    Dispute,
    RoundInfo,
    SealView,
    Task,
    TaskParams,
    VerifierInfo,
)
from arledger.chain.views import snake, ViewDecoder
from arledger.errors import ConfigError

# Every view of the contract that returns a struct (or several named values), with the
# dataclass that holds it and the fields that do not come from chain.
VIEWS = {
    "task": (Task, {"task_id": 7}),
    "claim": (Claim, {"claim_id": 9}),
    "dispute": (Dispute, {"dispute_id": "0x" + "ab" * 32}),
    "verifierInfo": (VerifierInfo, {}),
    "commitmentInfo": (CommitmentInfo, {}),
    "seal": (SealView, {"task_id": 3}),
    "claimSeal": (ClaimSeal, {"claim_id": 4}),
    "sealedRound": (RoundInfo, {"task_id": 3, "round": 1}),
}
PLAIN_NAMED = {"bestClaim"}  # two named values, read as a dict


def _struct_outputs(artifact: ContractArtifact) -> dict[str, list[dict]]:
    out = {}
    for e in artifact.entries("function"):
        if e.get("stateMutability") in ("view", "pure"):
            outs = e["outputs"]
            if len(outs) == 1 and outs[0]["type"] == "tuple":
                out[e["name"]] = outs[0]["components"]
            elif len(outs) > 1:
                out[e["name"]] = outs
    return out


def _distinct_values(components: list[dict], artifact: ContractArtifact) -> tuple[list, dict]:
    """A raw value per component (what the ABI decoder returns) and what each field should decode to."""
    raw, want = [], {}
    for i, c in enumerate(components):
        internal = c.get("internalType", "")
        if internal.startswith("enum "):
            members = artifact.enum(internal.split(" ", 1)[1])
            v = (i % (len(members) - 1)) + 1
            w = members[v]
        elif c["type"] == "address":
            v = w = "0x" + f"{i + 1:040x}"
        elif c["type"].startswith("bytes"):
            v = w = bytes([i + 1]) * 32
        elif c["type"] == "bool":
            v = w = bool(i % 2)
        else:
            v = w = 1000 + i
        raw.append(v)
        want[snake(c["name"])] = w
    return raw, want


def test_every_struct_view_has_its_dataclass():
    assert set(_struct_outputs(load_artifact())) == set(VIEWS) | PLAIN_NAMED


@pytest.mark.parametrize("fn", sorted(VIEWS))
def test_every_field_round_trips_by_name(fn):
    artifact = load_artifact()
    cls, extra = VIEWS[fn]
    components = _struct_outputs(artifact)[fn]
    raw, want = _distinct_values(components, artifact)
    view = ViewDecoder(artifact).into(cls, fn, tuple(raw), **extra)
    for name, value in want.items():
        assert getattr(view, name) == value, f"{cls.__name__}.{name}"
    assert {f.name for f in dataclasses.fields(cls)} == set(want) | set(extra)


def _reordered(artifact: ContractArtifact, fn: str) -> ContractArtifact:
    abi = copy.deepcopy(artifact.abi)
    for e in abi:
        if e.get("name") == fn and e["type"] == "function":
            e["outputs"][0]["components"].reverse()
    return dataclasses.replace(artifact, abi=abi)


@pytest.mark.parametrize("fn", ["task", "claim", "dispute"])
def test_a_reordered_struct_decodes_the_same(fn):
    artifact = load_artifact()
    cls, extra = VIEWS[fn]
    raw, _ = _distinct_values(_struct_outputs(artifact)[fn], artifact)
    before = ViewDecoder(artifact).into(cls, fn, tuple(raw), **extra)
    after = ViewDecoder(_reordered(artifact, fn)).into(cls, fn, tuple(reversed(raw)), **extra)
    assert after == before


def test_a_renamed_field_is_an_error_not_a_misread():
    artifact = load_artifact()
    abi = copy.deepcopy(artifact.abi)
    claim = next(e for e in abi if e.get("name") == "claim" and e["type"] == "function")
    claim["outputs"][0]["components"][8]["name"] = "claimedLossMicro"
    raw, _ = _distinct_values(claim["outputs"][0]["components"], artifact)
    with pytest.raises(ConfigError, match=r"missing on chain: \['claimed_loss'\].*unknown to Python: \['claimed_loss_micro'\]"):
        ViewDecoder(dataclasses.replace(artifact, abi=abi)).into(Claim, "claim", tuple(raw), claim_id=1)


def test_an_enum_value_out_of_range_is_an_error():
    artifact = load_artifact()
    raw, _ = _distinct_values(_struct_outputs(artifact)["claim"], artifact)
    raw[4] = 99  # ClaimView.state
    with pytest.raises(ConfigError, match="ClaimState: value 99"):
        ViewDecoder(artifact).into(Claim, "claim", tuple(raw), claim_id=1)


def test_enum_members_come_from_the_build():
    artifact = load_artifact()
    assert artifact.enum("ClaimState")[:2] == ["None", "Open"]
    assert artifact.enum("ITrainingLedger.ChallengeKind") == ["Segment", "Artifact", "FinalEvaluation"]
    with pytest.raises(ConfigError, match="no enum 'Colour'"):
        artifact.enum("Colour")


def test_task_params_go_out_by_name():
    artifact = load_artifact()
    params = TaskParams(*(bytes(32) if f.name == "spec_digest" else i for i, f in enumerate(dataclasses.fields(TaskParams))))
    arg = ViewDecoder(artifact).struct_arg("createTask", params)
    create = next(e for e in artifact.entries("function") if e["name"] == "createTask")
    assert list(arg) == [c["name"] for c in create["inputs"][0]["components"]]
    assert arg["minImprovement"] == params.min_improvement and arg["quorum"] == params.quorum

    @dataclasses.dataclass
    class Short:
        spec_digest: bytes

    with pytest.raises(ConfigError, match="do not match Short"):
        ViewDecoder(artifact).struct_arg("createTask", Short(bytes(32)))
