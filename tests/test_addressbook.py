"""`artrain alias` and the address book it keeps (arledger.addressbook): names for readers."""

from __future__ import annotations

import json

from click.testing import CliRunner

from arledger.addressbook import AddressBook
from arledger.cli import main

ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
V1 = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def _alias(home, *args):
    return CliRunner().invoke(main, ["alias", *args], env={"ARLEDGER_HOME": str(home)})


def test_names_are_set_listed_moved_and_removed(tmp_path):
    assert _alias(tmp_path, "alice", ALICE.lower()).exit_code == 0  # any case in, checksummed out
    assert _alias(tmp_path, "v1", V1).exit_code == 0
    listed = json.loads(_alias(tmp_path, "--json").output)
    assert listed["names"] == {ALICE: "alice", V1: "v1"}
    assert json.loads((tmp_path / "addressbook.json").read_text()) == {ALICE: "alice", V1: "v1"}
    assert _alias(tmp_path, "alice", V1).exit_code == 0  # a name names one address: it moves
    assert AddressBook(tmp_path / "addressbook.json").names() == {V1: "alice"}
    res = _alias(tmp_path, "--remove", "alice")
    assert res.exit_code == 0 and V1 in res.output
    assert "no names" in _alias(tmp_path).output


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    for args, words in ((["alice", "0x1234"], "not a 0x-prefixed 20-byte address"),
                        (["a b", ALICE], "is not a name"), (["alice"], "give a NAME and an ADDRESS"),
                        (["--remove", "nobody"], "'nobody': no such name")):
        res = _alias(tmp_path, *args)
        assert res.exit_code != 0 and words in res.output, (args, res.output)
        assert "Traceback" not in res.output
    assert not (tmp_path / "addressbook.json").exists()
    (tmp_path / "addressbook.json").write_text("{not json")
    res = _alias(tmp_path)
    assert res.exit_code == 1 and "addressbook.json: not JSON" in res.output


def test_a_demos_cast_is_read_over_the_users_names(tmp_path):
    user, demo = AddressBook(tmp_path / "user.json"), AddressBook(tmp_path / "demo.json")
    user.set("me", ALICE)
    demo.set("alice", ALICE)
    demo.set("v1", V1)
    assert user.merged(demo) == {ALICE: "alice", V1: "v1"}
    assert demo.name_of(V1.lower()) == "v1" and demo.name_of("0x" + "00" * 20) is None and demo.name_of("junk") is None
