"""How fast `memcglang hunt` runs: runs, statements and races per second under each model.

A standalone script, not a test (docs/hunt.md; benchmarks/README.md). It times `--runs N` of
one seed per model, best of R repeats (the runs are the same every time: the seed fixes
them), and prints the finding count so that a change in the figures can be told from a
change in what the runs do.

    python benchmarks/hunt_bench.py [--runs 1000] [--repeat 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import time

from memcglang.hunt.report import hunt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"hunt, seed {args.seed}, {args.runs:,} runs, best of {args.repeat}; load average "
          f"{os.getloadavg()[0]:.2f}")
    for model in ("v1", "3.17", "legacy"):
        best = None
        for _ in range(args.repeat):
            started = time.perf_counter()
            h = hunt(model, args.seed, args.runs, 0.0, None)
            secs = time.perf_counter() - started
            best = secs if best is None else min(best, secs)
        print(f"{model:>6}: {best:6.2f} s  {args.runs / best:7,.0f} runs/s  "
              f"{h.statements / best:8,.0f} statements/s  {h.races:5,} races  "
              f"{len(h.findings)} findings ({h.hits:,} hits)")


if __name__ == "__main__":
    main()
