"""The artifact store's exception hierarchy (root: StoreError)."""


class StoreError(Exception):
    """Root of every error raised on purpose by arstore."""
