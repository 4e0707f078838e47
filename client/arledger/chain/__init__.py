"""arledger.chain: the contract seen from Python (Ledger, artifact, typed reverts, config, units)."""
