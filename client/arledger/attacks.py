"""Dishonest trainers, for the demo, the tests and the detection benchmark.

Each attack is a ``train_segment`` replacement for ``run_experiment``: it trains like
the honest loop except in the segments it forges, and the run then publishes a
perfectly well-formed manifest over the forged checkpoints (what a real cheater
would do). Verification must catch it by replaying.

- ``forged_jump``: one segment's end state comes from MORE training than claimed
  (``extra`` x the segment's steps), with the step counter rewound so it looks
  consistent: "weights swapped in from a run with more steps";
- ``data_substitution``: one segment trains on other data (the validation split —
  the classic way to buy a lower validation loss);
- ``spread_small``: every ``every``-th segment skips a few of its steps (many small
  forgeries, each moving the weights a little).

And the cheat no replay can catch, because it trains honestly: a ``train.py`` that carries
public bytes of its task in its code and looks answers up in them at evaluation time
(``memorising_charlm``, ``memorising_digits``). Only a sealed shard defeats it
(docs/sealed-evaluation.md).
"""

from __future__ import annotations

import base64
import json
import lzma
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import torch

from arledger import checkpoint, manifest as mf
from arledger.files import atomic_write
from arledger.harness import load_harness
from arledger.micro import to_micro
from arledger.runner.experiment import load_experiment
from arledger.runner.session import Session

Segmenter = Callable  # (session, i, k, on_step) -> None


def _honest(session, k, on_step):
    session.train_steps(k, on_step=on_step)


def forged_jump(segments: Iterable[int], extra: int = 3) -> Segmenter:
    targets = set(segments)

    def train(session, i, k, on_step):
        if i not in targets:
            return _honest(session, k, on_step)
        loss = session.train_steps(extra * k, on_step=None)
        session.step -= (extra - 1) * k  # claim only k steps were taken
        _report(on_step, session.step, loss)

    return train


def _report(on_step, step: int, loss: float) -> None:
    """A forged segment's progress as its trainer shows it: the claimed step count, nothing more."""
    if on_step:
        on_step(step, loss)


def extra_steps(segments: Iterable[int], steps_each: int) -> Segmenter:
    """``forged_jump`` in any amount: each forged segment trains ``steps_each`` more steps than it
    claims. Spread over many segments, each one's update grows little (the adaptive adversary's
    way under the growth score); the same footprint as smuggled updates inside ``train_step``."""
    targets = set(segments)

    def train(session, i, k, on_step):
        if i not in targets:
            return _honest(session, k, on_step)
        loss = session.train_steps(k + steps_each, on_step=None)
        session.step -= steps_each  # claim only k steps were taken
        _report(on_step, session.step, loss)

    return train


def swap_to_validation(session):
    """The session's data with its training split replaced by the held-out split.

    Claim code is never handed the held-out split, so the cheater takes it where any
    trainer can: the task harness builds it (the run dir holds the harness next to
    the code), and the experiment's own ``load_data`` reads it as if it were training data.
    """
    h = load_harness(Path(session.experiment.directory).parent / "harness")
    blobs = h.build_data()
    held = sorted(k for k in blobs if k not in h.train_splits)[0]
    with tempfile.NamedTemporaryFile(prefix="heldout-", delete=False) as fh:
        fh.write(blobs[held])
    return session.experiment.load_data({name: Path(fh.name) for name in h.train_splits})


def data_substitution(segments: Iterable[int]) -> Segmenter:
    targets = set(segments)

    def train(session, i, k, on_step):
        if i not in targets:
            return _honest(session, k, on_step)
        session.train_steps(k, data=swap_to_validation(session), on_step=on_step)

    return train


def spread_small(every: int = 2, skipped_steps: int = 1) -> Segmenter:
    def train(session, i, k, on_step):
        if i % every:
            return _honest(session, k, on_step)
        session.train_steps(k - skipped_steps, on_step=on_step)
        session.step += skipped_steps  # claim the full segment

    return train


ATTACKS = {"forged_jump": forged_jump, "data_substitution": data_substitution, "spread_small": spread_small}


# -- a claimed number the harness did not compute -------------------------------------------


def rewrite_claimed_loss(run_dir, store, value: float) -> None:
    """Replace a finished run's claimed metric with ``value`` (a valid manifest, re-pinned).

    What a trainer whose own code reported the number would publish: the evaluation in
    the manifest is the trainer's word; verifiers compute their own with the harness.
    """
    path = Path(run_dir) / "manifest.json"
    m = mf.load(path)
    metric = m.evaluation.metric
    micro = dict(m.evaluation.metrics_micro, **{metric: to_micro(value)})
    m = replace(m, evaluation=mf.Evaluation(metric, to_micro(value), micro))
    data = mf.dumps(m)
    atomic_write(path, data)
    store.pin(str(store.add_bytes(data)))


def legacy_in_process_loss(run_dir) -> float:
    """The metric as the pre-harness runner computed it: the claim's forward and the targets
    in ONE process, the targets a local of the caller (``targets``). A forward that reads its
    caller's frames finds them; verifiers never evaluate this way."""
    run_dir = Path(run_dir)
    m_path = run_dir / "manifest.json"

    m = mf.load(m_path)
    h = load_harness(run_dir / "harness")
    all_paths = {k: (run_dir / ("data" if k in m.train_splits else "heldout") / c) for k, c in m.datasets.items()}
    data = h.module.load(all_paths)
    inputs, all_targets = h.module.eval_batch(data)
    session = Session(load_experiment(run_dir / "code"), {k: all_paths[k] for k in m.train_splits}, m.seed,
                      int(m.environment["threads"]))
    checkpoint.load_weights((run_dir / "final.safetensors").read_bytes(), session.model)
    session.model.eval()
    outputs = []
    with torch.no_grad():
        for i in range(0, len(inputs), 64):
            targets = all_targets[i : i + 64]  # noqa: F841 - in this frame, where a forward can look
            outputs.append(session.model(inputs[i : i + 64]))
    return h.module.metrics(torch.cat(outputs), all_targets)[h.metric]


# -- compute smuggling: dishonest train.py sources (edits of the charlm template) ------------------
#
# These are not segment trainers: the code itself does more work than the task's budget, so
# its replay reproduces the trainer's bits exactly, and only counting the work catches it
# (arledger.runner.budget). Each takes the template's train.py source and returns the cheat's.

_CHARLM_STEP = '''def train_step(model, opt, batch):
    x, y = batch
    loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()'''
_CHARLM_BUILD = "    return model, opt\n"


def _edit(src: str, old: str, new: str) -> str:
    if old not in src:
        raise ValueError(f"attack: the train.py source has no {old.splitlines()[0]!r}")
    return src.replace(old, new, 1)


def extra_updates_per_step(src: str, updates: int = 4) -> str:
    """``train_step`` makes ``updates`` optimizer updates per counted step (more work, same steps)."""
    body = _CHARLM_STEP.replace("def train_step(model, opt, batch):", "def _one_update(model, opt, batch):")
    return _edit(src, _CHARLM_STEP, body + f"\n\n\ndef train_step(model, opt, batch):\n"
                 f"    for _ in range({updates}):\n        loss = _one_update(model, opt, batch)\n    return loss")


def train_inside_build(src: str, steps: int = 100) -> str:
    """``build()`` trains ``steps`` steps before step 0 (a head start the step budget does not see)."""
    head_start = (f"    for i in range({steps}):  # a head start, before the runner counts step 0\n"
                  f"        g = torch.Generator().manual_seed(i)\n"
                  f"        train_step(model, opt, batch(data, g, i))\n"
                  f"    return model, opt\n")
    return _edit(src, _CHARLM_BUILD, head_start)


def pretrained_start(src: str, path: str = "pretrained.pt") -> str:
    """``build()`` loads weights trained elsewhere when the trainer's file is there (it is not in the
    pinned code, so a verifier's rebuild gets the seed's random init: checkpoint 0 is not the seed's)."""
    load = (f"    import os\n"
            f"    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', {path!r})\n"
            f"    if os.path.exists(here):  # on the trainer's disk only\n"
            f"        model.load_state_dict(torch.load(here))\n"
            f"    return model, opt\n")
    return _edit(src, _CHARLM_BUILD, load)


_HIDING = {
    # where the extra updates run: each is work the FLOP counter never sees, and each is in the
    # request's process tree, where the kernel counts it (arledger.runner.budget: time)
    "inline": "        _extra(model, opt, batch)\n",
    "thread": ("        import threading\n"
               "        t = threading.Thread(target=_extra, args=(model, opt, batch))\n"
               "        t.start()\n"
               "        t.join()\n"),
    # a grandchild in a session of its own, its parent gone: detached from the measured process
    "process": ("        import os\n"
                "        r, w = os.pipe()\n"
                "        pid = os.fork()\n"
                "        if pid == 0:\n"
                "            os.setsid()\n"
                "            if os.fork() == 0:\n"
                "                _extra(model, opt, batch)\n"
                "                os.write(w, b'.')\n"
                "            os._exit(0)\n"
                "        os.waitpid(pid, 0)\n"
                "        os.read(r, 1)\n"
                "        os.close(r)\n"
                "        os.close(w)\n"),
}


def hidden_updates(src: str, rate: float, where: str = "inline", hide: bool = True) -> str:
    """``train_step`` makes ``rate`` extra updates per step on average (0.25: one every fourth
    step, 2: two per step), with torch's dispatch modes switched off so no counter in the process
    sees them, ``where`` = ``inline`` (in the step), ``thread`` (a thread of the process) or
    ``process`` (a detached grandchild: its updates are lost to the run, its time is not). The
    budget's time line must catch what is over it wherever the work runs. ``hide=False``: the
    same updates in plain sight, which the time rule allows within its limit (an honest claim)."""
    if where not in _HIDING:
        raise ValueError(f"where: {where!r} is not one of {', '.join(_HIDING)}")
    body = _CHARLM_STEP.replace("def train_step(model, opt, batch):", "def _one_update(model, opt, batch):")
    extra = ("def _extra(model, opt, batch):\n"
             "    from torch.utils._python_dispatch import _disable_current_modes\n"
             "    with _disable_current_modes():  # no mode (a counter) sees this\n"
             "        _one_update(model, opt, batch)\n\n\n") if hide else (
             "def _extra(model, opt, batch):  # more updates per step, counted like any\n"
             "    _one_update(model, opt, batch)\n\n\n")
    return _edit(src, _CHARLM_STEP, body + (
        "\n\n\n_CREDIT = [0.0]\n\n\n" + extra +
        "def train_step(model, opt, batch):\n"
        f"    _CREDIT[0] += {float(rate)!r}\n"
        "    while _CREDIT[0] >= 1.0:\n"
        "        _CREDIT[0] -= 1.0\n"
        f"{_HIDING[where]}"
        "    return _one_update(model, opt, batch)"))


def hidden_in_build(src: str, steps: int) -> str:
    """``build()`` trains ``steps`` steps before step 0 with the counter switched off: its FLOPs
    count as honest, only the time line sees them."""
    head_start = (f"    from torch.utils._python_dispatch import _disable_current_modes\n"
                  f"    with _disable_current_modes():  # no counter sees the head start\n"
                  f"        for i in range({steps}):\n"
                  f"            g = torch.Generator().manual_seed(i)\n"
                  f"            train_step(model, opt, batch(data, g, i))\n"
                  f"    return model, opt\n")
    return _edit(src, _CHARLM_BUILD, head_start)


# -- memorisers: honest training, a lookup of public bytes at evaluation ------------------------


def _packed(blobs: list[bytes]) -> str:
    return base64.b85encode(lzma.compress(json.dumps([base64.b64encode(b).decode() for b in blobs]).encode())).decode()


def _with_code(template_dir: Path, dest: Path, code: str) -> Path:
    shutil.copytree(template_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    (dest / "train.py").write_text((dest / "train.py").read_text() + code)
    return dest


def memorising_charlm(template_dir: Path, public_texts: list[bytes], dest: Path, context: int = 12) -> Path:
    """The charlm template whose model, in eval mode, predicts the next character with certainty
    wherever its last ``context`` characters occur in ``public_texts`` (carried in the code):
    causal, deterministic, no extra FLOPs. On the public held-out split it looks like a
    breakthrough; on text it has not seen it is the template's model, or worse where it guesses."""
    return _with_code(Path(template_dir), Path(dest), f'''

import base64 as _b64, json as _json, lzma as _lzma
_CONTEXT = {context}
_PACKED = {_packed(public_texts)!r}
_NEXT = {{}}


def _table():  # unpacked at the first evaluation: no training request pays for it
    if not _NEXT:
        for _blob in _json.loads(_lzma.decompress(_b64.b85decode(_PACKED))):
            _t = _b64.b64decode(_blob)
            for _i in range(len(_t) - _CONTEXT):
                _NEXT.setdefault(_t[_i : _i + _CONTEXT], min(_t[_i + _CONTEXT], VOCAB - 1))
    return _NEXT


class _Memo(CharLM):
    def forward(self, idx):
        out = super().forward(idx)
        if not self.training:
            table = _table()
            for r, row in enumerate(idx.tolist()):
                for t in range(_CONTEXT - 1, len(row)):
                    nxt = table.get(bytes(row[t - _CONTEXT + 1 : t + 1]))
                    if nxt is not None:  # near-certain, not certain: a repeated context may go on otherwise
                        out[r, t, nxt] += 12.0
        return out


def build(config, data):
    model = _Memo(config["block"], config["d_model"], config["layers"], config["heads"], config["dropout"])
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    return model, opt
''')


def memorising_digits(template_dir: Path, public_files: list[bytes], dest: Path) -> Path:
    """The digits template whose model, in eval mode, answers every image that occurs in
    ``public_files`` (digits split files, carried in the code) with its label."""
    return _with_code(Path(template_dir), Path(dest), f'''

import base64 as _b64, json as _json, lzma as _lzma
_PACKED = {_packed(public_files)!r}
_SEEN = {{}}


def _table():  # unpacked at the first evaluation: no training request pays for it
    if not _SEEN:
        for _blob in _json.loads(_lzma.decompress(_b64.b85decode(_PACKED))):
            _t = _load_safetensors(_b64.b64decode(_blob))
            for _x, _y in zip(_t["x"], _t["y"]):
                _SEEN[bytes(_x.tolist())] = int(_y)
    return _SEEN


class _Memo(Net):
    def forward(self, x):
        out = super().forward(x)
        if not self.training:
            table = _table()
            for i, row in enumerate((x * 16).round().to(torch.uint8).view(len(x), 64)):
                label = table.get(bytes(row.tolist()))
                if label is not None:
                    out[i] = -30.0
                    out[i, label] = 30.0
        return out


def build(config, data):
    model = _Memo(config["width"], config["dropout"])
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    return model, opt
''')
