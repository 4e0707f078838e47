"""The ledger in a browser (`artrain dashboard`): a live, read-only view of the chain's events
and the artifacts they name.

- ``index``: the event-to-view layer (``LedgerIndex``: events in, page data out; pure);
- ``follow``: keeps an index up to date past a confirmation depth, through reorganizations;
- ``content``: task views, TaskSpecs, manifests and code fetched by CID (cached);
- ``app``: the Starlette app (Jinja2 pages, a JSON API, packaged static files).
"""
