"""Character-level transformer LM template (nanoGPT-like, tiny); metric: val bits per character."""
