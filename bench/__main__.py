"""`make bench` / `python -m bench`: every benchmark, one after the other, in this process's machine.

Each module measures its ratios within one run (so machine speed cancels out) and
prints them against their targets; see docs/ for the recorded figures.
"""

from __future__ import annotations

import importlib
import inspect
import sys

BENCHES = ["bench.train_bench", "bench.store_bench", "bench.verify_bench", "bench.agent_bench",
           "bench.dashboard_bench", "bench.noise_bench", "bench.time_bench",
           "bench.start_bench"]


def main() -> int:
    failed = []
    for name in BENCHES:
        print(f"\n=== {name} ===", flush=True)
        mod = importlib.import_module(name)
        sys.argv = [name]  # defaults only; run a module alone for its options
        rc = mod.main([]) if inspect.signature(mod.main).parameters else mod.main()
        if rc:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that missed a target or failed: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
