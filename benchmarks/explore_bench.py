"""Explorer benchmark: distinct states per second of `memcglang explore` on 3-thread scenarios,
with and without partial-order reduction.

    python benchmarks/explore_bench.py            # best of 5 runs per figure
    python benchmarks/explore_bench.py --runs 1   # a fast check

A standalone script, not a test: it prints its figures with the target and PASS/MISS, and
never fails on timing. In-process, after the setup has run (the search alone is timed; the
setup and the report are not). See benchmarks/README.md.

1. benchmarks/explore_swapin_three.mcg (3.17): three CPUs fault in one shared swapped-out
   page under its page lock, each then charges, maps and frees a page of its own; primitive
   steps. Target: >= 20,000 distinct states per second, with and without reduction.
2. benchmarks/explore_three_cpus.mcg (3.17): three CPUs each fault, reclaim to swap, swap in
   and unmap a page of their own; composites, whose phases each write dozens of fields.
   Reported for comparison (the same target is shown).

For each: distinct states with reduction and without, and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memcglang.explore.search import Search  # noqa: E402
from memcglang.explore.threads import Machine  # noqa: E402
from memcglang.runner import load  # noqa: E402

TARGET = 20_000
SCENARIOS = ("explore_swapin_three.mcg", "explore_three_cpus.mcg")


def measure(path: Path, model: str, reduction: bool, runs: int):
    program, resolution = load(str(path))
    best = None
    for _ in range(runs):
        m = Machine(program, resolution, model)
        _records, failed = m.setup()
        if failed:
            raise SystemExit(f"{path}: the setup fails under {model}")
        started = time.perf_counter()
        res = Search(m, reduction=reduction).run()
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best[0]:
            best = (elapsed, res)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (best is kept)")
    parser.add_argument("--model", default="3.17")
    args = parser.parse_args()
    print(f"explore benchmark, model {args.model}, best of {args.runs} run(s); "
          f"target >= {TARGET:,} distinct states/s")
    for n, name in enumerate(SCENARIOS, 1):
        path = ROOT / "benchmarks" / name
        counts = {}
        for reduction in (True, False):
            elapsed, res = measure(path, args.model, reduction, args.runs)
            rate = res.distinct / elapsed
            counts[reduction] = res.distinct
            verdict = "PASS" if rate >= TARGET else "MISS"
            print(f"[{n}] {name}, reduction {'on ' if reduction else 'off'}: "
                  f"{res.distinct:,} distinct states, {res.transitions:,} transitions, "
                  f"{elapsed:.3f} s, {rate:,.0f} distinct states/s  {verdict} "
                  f"(verdict {res.verdict})")
        print(f"[{n}] states without reduction / with: {counts[False]:,} / {counts[True]:,} "
              f"= {counts[False] / counts[True]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
