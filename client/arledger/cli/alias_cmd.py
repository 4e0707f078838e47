"""`artrain alias`: names for addresses in the user's address book (``arledger.addressbook``)."""

from __future__ import annotations

from pathlib import Path

import click

from arledger.addressbook import AddressBook
from arledger.cli.common import emit, json_option


@click.command("alias")
@click.argument("name", required=False)
@click.argument("address", required=False)
@click.option("--remove", metavar="NAME", help="Forget this name.")
@click.option("--book", type=click.Path(dir_okay=False, path_type=Path),
              help="The address book [default: $ARLEDGER_HOME/addressbook.json].")
@json_option
def alias(name, address, remove, book, as_json):
    """Name an address, so the dashboard shows the name beside it; with no arguments, list the names.

    A name is a label for readers only: every command still takes addresses.

    \b
    Examples:
      artrain alias alice 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
      artrain alias                      # every name in the book
      artrain alias --remove alice
      artrain alias --json
    """
    ab = AddressBook(book)
    if remove:
        if name or address:
            raise click.UsageError("--remove NAME takes no other arguments")
        gone = ab.remove(remove)
        emit({"removed": remove, "address": gone, "book": str(ab.path)}, as_json,
             lambda d: [f"{d['removed']} ({d['address']}) removed from {d['book']}"])
        return
    if name and not address:
        raise click.UsageError("give a NAME and an ADDRESS (or no arguments to list the names)")
    if name:
        ab.set(name, address)
    names = ab.names()
    emit({"names": names, "book": str(ab.path)}, as_json,
         lambda d: [f"{n:16} {a}" for a, n in d["names"].items()] or [f"no names in {d['book']} yet"])
