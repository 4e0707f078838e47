"""arledger: the client library of autoresearch-ledger.

Layers (dependencies run one way): ``arverifier`` -> ``arledger`` -> ``arstore``.
"""

__version__ = "0.1.0"
