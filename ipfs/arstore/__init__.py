"""arstore: content-addressed artifact store (a real IPFS node over Kubo RPC, or embedded)."""
