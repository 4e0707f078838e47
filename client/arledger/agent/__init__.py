"""The research loop (`artrain agent`): read the best, propose, check, train, publish, record.

One iteration (``arledger.agent.loop.Agent``):

1. the task's best claim (or its baseline code) is read from chain and its code fetched
   by CID (verified by the store);
2. the history, every claim and report of the task, is read into ``ExperimentRecord``s
   (``arledger.agent.history``): the collective memory;
3. a ``Proposer`` (``search``: offline mutations; ``llm``: any chat-completions endpoint)
   returns a ``Proposal``: a new train.py / experiment.json and a hypothesis; it is
   refused before training if it does not load, breaks the interface, exceeds the
   task's budget or repeats a recorded experiment (``arledger.agent.checks``);
4. it is trained under the task's budget (``arledger.runner.run_experiment``);
5. a result that beats the best by the task's epsilon is submitted (commit-reveal,
   stake); anything else is published as an unstaked report with its notes;
6. the iteration is appended to the agent's lab notebook (``arledger.agent.notebook``).

Every stage is written down before its effect (``iterations/NNNN/state.json``), so an
agent killed at any point resumes the same iteration: no second commit, no lost report.

This package reads the chain through ``arledger.chain`` and never imports a verifier.
"""

import importlib

# The names load their module on first use (PEP 562): the dashboard reads
# ``arledger.agent.proposal`` without the loop, which imports torch.
_HOME = {"Agent": "loop", "AgentConfig": "loop", "IterationResult": "loop", "ExperimentRecord": "proposal",
         "Proposal": "proposal", "ProposalContext": "proposal", "Proposer": "proposal"}

__all__ = ["Agent", "AgentConfig", "IterationResult", "ExperimentRecord", "Proposal", "ProposalContext",
           "Proposer"]


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f"arledger.agent.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'arledger.agent' has no attribute {name!r}")
