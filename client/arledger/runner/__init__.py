"""Training: what one step is and how it runs the same everywhere.

``session`` (one experiment's model, optimizer and data, driven step by step),
``experiment`` (the ``train.py`` interface), ``determinism`` (threads, seeds, the
environment record), ``budget`` (FLOP counting), ``predict`` and ``worker`` (the
program that serves one request: a segment, a build, a prediction, a harness step).
The pipeline that trains, pins and evaluates a run is ``arledger.protocol``; the
processes the worker runs in are ``arledger.execution``'s.
"""
