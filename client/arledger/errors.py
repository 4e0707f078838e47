"""The client's exception hierarchy: one root, typed subclasses.

Every error the library raises on purpose is an ``ArledgerError``; the CLI maps it
(and the artifact store's ``arstore.StoreError``) to a one-line ``ClickException``
in one place (``arledger.cli``). Contract custom errors are decoded into subclasses
of ``ContractRevert`` by ``arledger.chain``.
"""


class ArledgerError(Exception):
    """Root of every error raised on purpose by arledger (and arverifier)."""


class ConfigError(ArledgerError):
    """Missing or inconsistent configuration (RPC URL, ledger address, key, files)."""


class ManifestError(ArledgerError):
    """A manifest that is malformed, oversized or inconsistent; the message names the field."""


class ExperimentError(ArledgerError):
    """An experiment directory or train.py that does not follow the experiment interface."""


class ReplayMismatch(ArledgerError):
    """A replayed segment did not reproduce the claimed end state."""
