"""ardemo: the top layer, which composes a trainer (arledger) and verifiers (arverifier)
into the local end-to-end demo.

Layers (dependencies run one way): ``ardemo`` -> ``arverifier`` -> ``arledger`` ->
``arstore``. Its command reaches ``artrain`` as a plugin (the ``artrain.commands``
entry point in pyproject.toml), so ``artrain demo`` works without the trainer's CLI
importing anything above it.
"""
