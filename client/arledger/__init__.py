"""arledger: the client library of autoresearch-ledger.

Layers (dependencies run one way): ``ardemo`` -> ``arverifier`` -> ``arledger`` -> ``arstore``
(tests/test_layers.py).
"""

__version__ = "0.1.0"
