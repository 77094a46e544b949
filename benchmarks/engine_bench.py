"""Engine throughput, journal overhead, scaling and memory benchmark for memcglang.

    python benchmarks/engine_bench.py            # full run (1,000,000-page setup included)
    python benchmarks/engine_bench.py --quick    # smaller sizes, a fast check
    python benchmarks/engine_bench.py --profile  # also print cProfile hot spots of the mix

A standalone script, not a test: it prints four figures, each with its target and PASS/MISS,
and never fails on timing. See benchmarks/README.md for what each figure means.

The workload (all through the public engine API, journal + invariants + event capture on,
fingerprint off):

* 10 memcgs in two levels: A, A/0..A/3, B, B/0..B/3 (swap accounting on); pages are faulted
  round-robin into all ten (so both the leaves and the two hierarchical parents hold pages);
* each cycle picks a live page uniformly at random (seeded) and runs 8 primitives on it:
  get, isolate, putback, lock, unlock, unmap, map, put; a faulted page has refcount 1 and
  mapcount 1, so the extra `get` keeps the page alive across `unmap` (which drops the pte's
  reference) until `map` gives it a new one; `put` then restores refcount 1;
* every 10th cycle also `reclaim P as E<k>` (fresh entry) on a randomly chosen reclaimable
  page and `swapin E<k> as Q<k>` (fresh page, the memcg P was charged to, write fault:
  reuse=True); Q<k> replaces P in the pool, so the live-page count is constant.

Primitive counts (a composite counts the primitive steps that reproduce it exactly; this is
checked at start-up on a scratch engine, see `check_composite_counts`):

* cycle: 8 (get, isolate, putback, lock, unlock, unmap, map, put);
* reclaim P as E: 5 (isolate, lock, add_to_swap, try_to_unmap, swapout; `swapout` is
  __remove_mapping + unlock + free);
* swapin E as Q (reuse): 8 (readahead, lock, try_charge, map, delete_from_swap_cache,
  commit lrucare, free_swap, unlock).

So 10 cycles are 80 + 5 + 8 = 93 primitive operations.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import statistics
import sys
import time
import tracemalloc
from typing import NamedTuple

from memcglang.engine import Engine
from memcglang.engine.state import Derived, PG_locked, PG_lru, PG_swapcache, ResCounter

CYCLE_OPS = 8
RECLAIM_OPS = 5
SWAPIN_OPS = 8
RECLAIM_EVERY = 10

TOPS = ("A", "B")
CHILDREN = 4
MEMCGS = tuple(p for top in TOPS for p in (top, *(f"{top}/{i}" for i in range(CHILDREN))))

TARGET_OPS = 200_000
TARGET_RATIO = 0.2
TARGET_SCALING = 1.5
TARGET_BYTES = 1024

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

perf_counter = time.perf_counter
process_time = time.process_time


class Block(NamedTuple):
    """A run of cycles: primitive operations, wall and CPU seconds, journal records written
    (the journal's absolute position moved by this much)."""

    ops: int
    wall: float
    cpu: float
    records: int


def new_engine(model: str) -> Engine:
    """The configuration of the issue: journal, invariants and events on, fingerprint off."""
    e = Engine(model, swap_account=True, capture=True, check_invariants=True,
               track_fingerprint=False)
    for path in MEMCGS:
        e.create_memcg(path)
    return e


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class Workload:
    """One engine, a pool of live page names, and the seeded cycle mix."""

    def __init__(self, n_pages: int, seed: int, model: str):
        self.n_pages = n_pages
        self.e = new_engine(model)
        self.rng = random.Random(seed)
        self.pool: list[str] = []  # live page names
        self.where: list[str] = []  # the memcg each pool slot's page is charged to
        self.cycles = 0  # cycles run so far (every RECLAIM_EVERY-th also reclaims)
        self.swaps = 0  # reclaim/swapin pairs run so far (names E<k>, Q<k>)
        self.setup_seconds = 0.0

    def populate(self) -> None:
        """Fault every page through the engine (`fault P A`), the GC off meanwhile."""
        fault = self.e.fault
        pool, where = self.pool, self.where
        nm = len(MEMCGS)
        gc.disable()
        t0 = perf_counter()
        for k in range(self.n_pages):
            name = f"P{k}"
            memcg = MEMCGS[k % nm]
            r = fault(name, memcg)
            if r.outcome != "ok":
                raise RuntimeError(f"fault {name} {memcg}: {r.outcome} {r.error}")
            pool.append(name)
            where.append(memcg)
        self.setup_seconds = perf_counter() - t0
        gc.enable()
        gc.collect()
        gc.freeze()  # the setup's objects are never garbage: keep them out of every collection

    def run(self, cycles: int, sink: list | None = None) -> Block:
        """Run `cycles` cycles of the mix.

        With `sink`, every record the run writes to the journal (the steps' own and the
        invariant checker's) is appended to it: a mark holds the journal for the run. The
        measured runs pass none.
        """
        e = self.e
        steps = (e.get, e.isolate, e.putback, e.lock, e.unlock, e.unmap, e.map, e.put)
        pool = self.pool
        n = len(pool)
        randrange = self.rng.randrange
        swap_one = self._swap_one
        ops = 0
        c = self.cycles
        j = e.j
        pos = j.pos
        mark = e.mark() if sink is not None else None
        c0 = process_time()
        t0 = perf_counter()
        for _ in range(cycles):
            p = pool[randrange(n)]
            for op in steps:
                op(p)
            ops += CYCLE_OPS
            c += 1
            if c % RECLAIM_EVERY == 0:
                ops += swap_one()
        wall = perf_counter() - t0
        cpu = process_time() - c0
        if mark is not None:
            # the twin's mark makes the checker journal its derived sums, which the measured
            # engine (holding no mark) writes directly: they are not the run's journal writes
            sink.extend(r for r in j.since(mark) if not _derived(r))
            e.release_mark(mark)
        self.cycles = c
        return Block(ops, wall, cpu, j.pos - pos)

    def _swap_one(self) -> int:
        """`reclaim P as E<k>` on a random reclaimable page, then `swapin E<k> as Q<k>`."""
        e = self.e
        pages = e.pages
        pool = self.pool
        randrange = self.rng.randrange
        n = len(pool)
        while True:  # not on the LRU, or reclaim could not free it: pick another page
            i = randrange(n)
            pg = pages[pool[i]]
            if (
                pg.flags & PG_lru
                and not pg.flags & (PG_swapcache | PG_locked)
                and not pg.isolated
                and pg.refcount == 1
                and pg.mapcount == 1
            ):
                break
        k = self.swaps
        self.swaps = k + 1
        entry, new = f"E{k}", f"Q{k}"
        r = e.reclaim(pool[i], entry)
        if r.outcome != "ok":
            raise RuntimeError(f"reclaim {pool[i]} as {entry}: {r.outcome} {r.error}")
        s = e.swapin(entry, new, self.where[i], reuse=True)
        if s.outcome != "ok":
            raise RuntimeError(f"swapin {entry} as {new}: {s.outcome} {s.error}")
        pool[i] = new
        return RECLAIM_OPS + SWAPIN_OPS

    def verify(self) -> None:
        """The run left a consistent machine: no invariant violation, every page alive."""
        e = self.e
        if e.known:
            raise RuntimeError(f"invariant violations carried: {list(e.known)[:5]}")
        charged = sum(e.memcg_view(top)["usage"] for top in TOPS)
        if charged != len(self.pool):
            raise RuntimeError(f"{charged} pages charged, {len(self.pool)} live")
        for name in self.pool[:1000]:
            v = e.page_view(name)
            if v["freed"] or v["refcount"] != 1 or v["mapcount"] != 1 or v["page"] != "lru":
                raise RuntimeError(f"{name} left in an unexpected state: {v}")


def check_composite_counts(model: str) -> None:
    """Reclaim (5 primitives) and swapin with reuse (8) leave exactly the state of their
    primitive sequences; the counts above rest on this."""

    def twin():
        e = new_engine(model)
        e.fault("P", "A/0")
        e.fault("X", "A")
        return e

    def views(e):
        return (
            {n: e.page_view(n) for n in e.pages},
            {n: e.memcg_view(n) for n in e.memcgs},
            {n: e.entry_view(n) for n in e.entries},
            dict(e.known),
        )

    a, b = twin(), twin()
    a.reclaim("P", "E")
    seq = [("isolate", "P"), ("lock", "P"), ("add_to_swap", "P", "E"), ("try_to_unmap", "P"),
           ("swapout", "P")]
    assert len(seq) == RECLAIM_OPS
    for name, *args in seq:
        getattr(b, name)(*args)
    if views(a) != views(b):
        raise RuntimeError("reclaim is not its 5 primitives: fix RECLAIM_OPS")
    a.swapin("E", "Q", "A/0", reuse=True)
    seq = [("readahead", "E", "Q"), ("lock", "Q"), ("try_charge", "Q", "A/0"), ("map", "Q"),
           ("delete_from_swap_cache", "Q"), ("commit", "Q", True), ("free_swap", "E"),
           ("unlock", "Q")]
    assert len(seq) == SWAPIN_OPS
    for name, *args in seq:
        getattr(b, name)(*args)
    if views(a) != views(b) or a.known:
        raise RuntimeError("swapin (reuse) is not its 8 primitives: fix SWAPIN_OPS")


def build(n_pages: int, seed: int, model: str) -> Workload:
    w = Workload(n_pages, seed, model)
    w.populate()
    print(f"    setup: {n_pages:,} faults in {w.setup_seconds:.1f} s "
          f"({n_pages / w.setup_seconds:,.0f} faults/s)", flush=True)
    return w


def _derived(record) -> bool:
    obj = record[0]
    return obj.__class__ is Derived or (obj.__class__ is ResCounter and record[1] == "expected")


def timed(w: Workload, cycles: int, sink: list | None = None) -> Block:
    """A block of cycles with the cyclic GC off (see README)."""
    gc.disable()
    try:
        return w.run(cycles, sink)
    finally:
        gc.enable()


def rate(ops: int, seconds: float) -> str:
    return f"{ops / seconds:,.0f}"


# ======================================================================================
# the figures
# ======================================================================================
def figure_throughput(w: Workload, twin: Workload, cycles: int, block: int, warmup: int):
    """[1] ops/s over the measured cycles and [2] the ratio to replaying their journal.

    The measured cycles run in blocks of `block` cycles (the spread shows the machine's
    noise); [1] is all their operations over all their wall time. For [2], each block's
    journal records come from `twin`, an engine built and driven identically (same seed, same
    cycles) that holds a mark and keeps every record; the engine is deterministic, so these
    are the same writes (checked: same number of records, same pool afterwards), and the
    measured run does not pay for keeping them. Each measured block is followed at once by
    the replay of its own records, so both sides of a block's ratio see the same machine
    speed; [2] is the median of the blocks' ratios (this machine's speed drifts by up to 1.7x
    between blocks).
    """
    timed(w, warmup)
    timed(twin, warmup)
    blocks = []
    ratios = []
    replay_total = 0.0
    written = 0
    for _ in range(cycles // block):
        sink: list = []
        timed(twin, block, sink)
        b = timed(w, block)
        if len(sink) != b.records:
            raise RuntimeError(f"the recording twin diverged: {len(sink)} records, "
                               f"{b.records} in the measured block")
        replay = min(replay_seconds(sink) for _ in range(3))
        blocks.append(b)
        ratios.append(replay / b.wall)  # (ops / wall) / (ops / replay)
        replay_total += replay
        written += b.records
    if twin.pool != w.pool:
        raise RuntimeError("the recording twin diverged: different pools afterwards")
    garbage = gc.collect()
    w.verify()
    ops = sum(b.ops for b in blocks)
    wall = sum(b.wall for b in blocks)
    cpu = sum(b.cpu for b in blocks)
    engine_rate = ops / wall
    ratio = statistics.median(ratios)
    rates = sorted(b.ops / b.wall for b in blocks)
    print(f"    measured: {cycles:,} cycles = {ops:,} primitive ops in {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU ({wall / ops * 1e6:.2f} us/op; CPU-time rate {rate(ops, cpu)} "
          f"ops/s); cyclic garbage afterwards: {garbage} objects")
    print(f"    per block of {block:,} cycles: min {rates[0]:,.0f}, median "
          f"{statistics.median(rates):,.0f}, max {rates[-1]:,.0f} ops/s")
    print(f"    journal: {written:,} records ({written / ops:.2f} per op); replay into a dict, "
          f"each block right after it ran: {replay_total:.3f} s "
          f"({replay_total / written * 1e9:.0f} ns/record, {ops / replay_total:,.0f} ops/s, "
          "best of 3 per block)")
    print(f"    ratio per block: min {min(ratios):.3f}, median {ratio:.3f}, max {max(ratios):.3f}")
    print(f"[1] primitive ops/s at {w.n_pages:,} pages: {engine_rate:,.0f}   "
          f"target >= {TARGET_OPS:,}   {verdict(engine_rate >= TARGET_OPS)}")
    print(f"[2] engine ops/s / journal-replay ops/s (median of blocks): {ratio:.3f}   "
          f"target >= {TARGET_RATIO}   {verdict(ratio >= TARGET_RATIO)}", flush=True)
    return engine_rate, ratio


def replay_seconds(records: list) -> float:
    """Apply every journal record (obj, field, old, new) to a plain dict; return the time."""
    d: dict = {}
    gc.disable()
    t0 = perf_counter()
    for obj, field, _old, new in records:
        d[(id(obj), field)] = new
    t = perf_counter() - t0
    gc.enable()
    return t


def figure_scaling(small: Workload, big: Workload, cycles: int, rounds: int, warmup: int):
    """[3] per-op time of the same mix at two pool sizes, measured in alternating blocks."""
    for w in (small, big):
        timed(w, warmup)
    blocks: dict[int, list[Block]] = {small.n_pages: [], big.n_pages: []}
    for _ in range(rounds):
        for w in (small, big):
            blocks[w.n_pages].append(timed(w, cycles))
    gc.collect()
    small.verify()
    big.verify()
    med = {}
    for n, bs in blocks.items():
        walls = [b.wall / b.ops for b in bs]
        cpus = [b.cpu / b.ops for b in bs]
        med[n] = statistics.median(walls)
        print(f"    {n:>9,} pages: " + ", ".join(f"{t * 1e6:.2f}" for t in walls)
              + f" us/op (median {med[n] * 1e6:.2f}; CPU time median "
              f"{statistics.median(cpus) * 1e6:.2f})")
    ratio = med[big.n_pages] / med[small.n_pages]
    print(f"[3] per-op time at {big.n_pages:,} / at {small.n_pages:,} live pages: {ratio:.2f}x   "
          f"target <= {TARGET_SCALING}x   {verdict(ratio <= TARGET_SCALING)}", flush=True)
    return ratio


def figure_memory(n_pages: int, model: str) -> float:
    """[4] traced bytes per faulted page, the journal truncated (no mark held)."""
    e = new_engine(model)
    fault = e.fault
    nm = len(MEMCGS)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    base = tracemalloc.get_traced_memory()[0]
    for k in range(n_pages):
        fault(f"P{k}", MEMCGS[k % nm])
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    if e.j.log or e.j.marks:
        raise RuntimeError("the journal was not truncated")
    per_page = used / n_pages
    print(f"    traced growth: {used / 2**20:.1f} MiB for {n_pages:,} live pages "
          f"(journal: {len(e.j.log)} records); largest allocation sites:")
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
    for stat in diff[:5]:
        frame = stat.traceback[0]
        where = os.path.relpath(frame.filename, ROOT)
        print(f"      {stat.size_diff / n_pages:7.1f} B/page  {where}:{frame.lineno}")
    print(f"[4] memory per live page: {per_page:,.0f} B   target <= {TARGET_BYTES:,} B   "
          f"{verdict(per_page <= TARGET_BYTES)}", flush=True)
    return per_page


def profile_mix(w: Workload, cycles: int, top: int) -> None:
    """cProfile of the cycle mix (not part of any figure: the profiler slows everything)."""
    prof = cProfile.Profile()
    gc.disable()
    prof.enable()
    w.run(cycles)
    prof.disable()
    gc.enable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print(f"--- cProfile of {cycles:,} cycles at {w.n_pages:,} pages, by own time ---")
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes and fewer cycles (scaling 1,000 vs 100,000 pages)")
    ap.add_argument("--seed", type=int, default=20140701)
    ap.add_argument("--model", default="3.17", choices=("3.17", "v1"))
    ap.add_argument("--profile", action="store_true",
                    help="also print the cProfile top functions of the cycle mix")
    args = ap.parse_args(argv)

    if args.quick:
        pages, cycles, block, warmup = 100_000, 10_000, 2_000, 1_000
        small_pages, big_pages, sblock, rounds = 1_000, 100_000, 4_000, 3
        mem_pages = 20_000
    else:
        pages, cycles, block, warmup = 100_000, 50_000, 5_000, 2_000
        small_pages, big_pages, sblock, rounds = 1_000, 1_000_000, 10_000, 5
        mem_pages = 100_000

    print(f"memcglang engine benchmark ({'quick' if args.quick else 'full'}; model "
          f"{args.model}; seed {args.seed}; Python {sys.version.split()[0]}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})")
    if os.getloadavg()[0] > 1.0:
        print("note: other processes are running: wall-clock figures will be noisy (compare "
              "the CPU-time figures)")
    check_composite_counts(args.model)
    print(f"mix: {RECLAIM_EVERY} cycles = {RECLAIM_EVERY * CYCLE_OPS} cycle ops + reclaim "
          f"({RECLAIM_OPS}) + swapin ({SWAPIN_OPS}) = "
          f"{RECLAIM_EVERY * CYCLE_OPS + RECLAIM_OPS + SWAPIN_OPS} primitive ops", flush=True)

    print(f"\n== [1], [2]: throughput at {pages:,} pages ==")
    w = build(pages, args.seed, args.model)
    print("    the recording twin (same seed):")
    twin = build(pages, args.seed, args.model)
    figure_throughput(w, twin, cycles, block, warmup)
    del twin
    if args.profile:
        profile_mix(w, min(cycles, 10_000), 25)

    print(f"\n== [3]: scaling, {small_pages:,} vs {big_pages:,} live pages ==")
    small = build(small_pages, args.seed + 1, args.model)
    if big_pages == pages:
        big = w  # --quick: the throughput engine is the big one
    else:
        del w
        gc.unfreeze()
        gc.collect()
        big = build(big_pages, args.seed + 2, args.model)
        t0 = perf_counter()
        gc.unfreeze()
        gc.collect()
        full = perf_counter() - t0
        gc.freeze()
        print(f"    (one full collection over the {big_pages:,}-page heap, unfrozen: "
              f"{full:.2f} s)")
    figure_scaling(small, big, sblock, rounds, warmup)
    del small, big
    gc.unfreeze()
    gc.collect()

    print(f"\n== [4]: memory, {mem_pages:,} pages faulted under tracemalloc ==")
    figure_memory(mem_pages, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
