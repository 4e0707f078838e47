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


class HarnessError(ArledgerError):
    """A task harness that does not follow the harness interface, or outputs it rejects."""


class ReplayError(ArledgerError):
    """A run of claim code could not be carried out (crashed, broke a limit, timed out,
    answered nonsense); ``violation`` names a broken limit (``arledger.runner.limits``)."""

    def __init__(self, message: str, violation: str | None = None):
        super().__init__(message)
        self.violation = violation


class ArtifactMismatch(ReplayError):
    """A published checkpoint whose bytes do not hash to the manifest's h_i (``index``)."""

    def __init__(self, i: int, got: str, want: str):
        super().__init__(f"checkpoint {i}: bytes hash to {got}, manifest says {want}")
        self.index = i


class ChainError(ArledgerError):
    """Something went wrong talking to the chain (base of the chain-side errors)."""


class ChainUnavailable(ChainError, ConfigError):
    """The JSON-RPC endpoint cannot be reached; the message names the URL."""


class ContractRevert(ChainError):
    """A contract call reverted. Subclasses named after the contract's custom errors
    (``LedgerWrongClaimState`` ...) are generated from the ABI by ``arledger.chain.errors``;
    ``.error_args`` maps each ABI argument name to its decoded value."""

    error_name: str = "ContractRevert"

    def __init__(self, message: str, error_args: dict | None = None, data: bytes = b""):
        super().__init__(message)
        self.error_args: dict = dict(error_args or {})
        self.data: bytes = bytes(data)

    def __getattr__(self, name: str):
        # Allows exc.claimId / exc.expected for each named argument of the custom error.
        args = self.__dict__.get("error_args") or {}
        if name in args:
            return args[name]
        raise AttributeError(name)


class TransactionFailed(ChainError):
    """A transaction was mined but failed (status 0) although its gas estimate passed."""


class DevnetError(ArledgerError):
    """The local development chain cannot be started, found, or stopped."""
