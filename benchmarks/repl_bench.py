"""REPL response time: one statement, run and rendered, with 1,000 live pages (issue 5).

A REPL session (memcglang.repl.session.Session) gets `memcg A` and a `repeat` that faults
1,000 pages of A. Then each measured statement is what a user types next, and its response is
`Session.execute(text)` plus rendering the update the way the terminal REPL does
(memcglang.render.rich.Screen into an in-memory console: the trace, then the compact state
view). Target: median under 50 ms.

    python benchmarks/repl_bench.py [--pages N] [--statements N]
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import time

from memcglang.render.rich import Screen
from memcglang.repl.session import Session

TARGET_MS = 50.0


def statements(n: int):
    """What a user types next: references, faults, a reclaim and swap-in, a truncate, expects,
    `show` of a page, and a zap of one page."""
    rounds = (
        "get P{i}", "put P{i}", "fault X{k} in A", "show A", "cache F{k} in A",
        "truncate F{k1}", "zap {{\n  unmap X{k4}\n}}", "expect P{i} refcount 1 mapcount 1",
    )
    for k in range(n):
        i = (k // 8) % 1000  # one page per round of eight
        yield rounds[k % 8].format(i=i, k=k, k1=k - 1, k4=k - 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--statements", type=int, default=400)
    args = parser.parse_args()

    session = Session("3.17")
    session.execute("memcg A")
    session.execute(f"repeat {args.pages} as i {{\n  fault P{{i}} in A\n}}")
    live = len(session.names("page"))
    print(f"# memcglang REPL benchmark: {live} live pages, model 3.17, "
          f"load average {os.getloadavg()[0]:.2f}")
    out = io.StringIO()
    screen = Screen(out)
    times = []
    gc.collect()
    for text in statements(args.statements):
        t0 = time.perf_counter()
        update = session.execute(text)
        screen.update(update, session.engine)
        times.append((time.perf_counter() - t0) * 1000)
        if update.failed:
            raise SystemExit(f"the workload went wrong at {text!r}: {update.lines} "
                             f"{[r.messages for r in update.records]}")
        out.seek(0)
        out.truncate()
    times.sort()
    median = statistics.median(times)
    p95 = times[int(len(times) * 0.95)]
    print(f"statements measured: {len(times)}; live pages at the end: "
          f"{len(session.names('page'))}")
    print(f"[1] response (execute + render), median {median:.2f} ms, p95 {p95:.2f} ms, "
          f"max {times[-1]:.2f} ms (target median < {TARGET_MS:.0f} ms): "
          f"{'PASS' if median < TARGET_MS else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
