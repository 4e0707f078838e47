"""arverifier: the verifier node and the `arverify` CLI (depends on arledger)."""
