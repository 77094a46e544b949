"""Front-end and interpreter benchmark for memcglang's .mcg language.

    python benchmarks/lang_bench.py            # full run (100,000-line parse, repeat 100,000)
    python benchmarks/lang_bench.py --quick    # smaller sizes, a fast check
    python benchmarks/lang_bench.py --profile  # also print cProfile hot spots of [2], in-process

A standalone script, not a test: it prints three figures, each with its target and PASS/MISS,
and never fails on timing. See benchmarks/README.md for what each figure means.

1. Parse to AST with positions, no resolve (`memcglang.lang.parser.parse`), against a plain
   Lark parser built from the same grammar file (`Lark(grammar, parser="lalr",
   lexer="contextual")`, Lark's own parse tree) on the same generated 100,000-line file, in
   the same process, alternating, best of 5 each: ratio lark time / our time (target >= 0.9).
2. `python -m memcglang run FILE --quiet --model 3.17` as a subprocess on `memcg A` +
   `repeat 100000 as i { fault P{i} in A / unmap P{i} }` (200,000 executed statements,
   start-up included): statements per second of wall time, best of 3 (target >= 50,000).
3. `python -m memcglang check FILE` on a 10-line file: median wall time of 10 subprocess runs
   (target < 0.3 s); `python -c pass` is timed the same way for reference.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from lark import Lark

from memcglang.lang import ast
from memcglang.lang.parser import (
    BUILT_FILE,
    GRAMMAR_FILE,
    built_header,
    lark_parser,
    normalise,
    parse,
)

TARGET_PARSE_RATIO = 0.9
TARGET_STMTS = 50_000
TARGET_CHECK = 0.3

PARSE_RUNS = 5
RUN_RUNS = 3
CHECK_RUNS = 10

perf_counter = time.perf_counter


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ======================================================================================
# the generated parse file
# ======================================================================================
SETUP = [
    "model 3.17",
    "swapaccount on",
    "memcg root hierarchy=on",
    "memcg A limit=64M memsw_limit=128M",
    "memcg A/web limit=16M  # the front end",
    "memcg A/db",
    "memcg B limit=1G hierarchy=on",
    "memcg B/job memsw_limit=max",
    "memcg B/cron limit=512",
    "memcg L limit=0",
]
LEAVES = ("A", "A/web", "A/db", "B", "B/job", "B/cron")
PCG = "USED|MEM|MEMSW"


def _anon(k: int, m: str) -> list[str]:
    return [
        f"fault P{k} in {m}",
        f"expect P{k} flags {PCG} memcg {m} refcount 1 mapcount 1 page lru isolated no",
        f"expect {m} usage 1 memsw 1 rss 1 pgpgin 1",
        "zap {",
        f"  unmap P{k}",
        "}",
        f"expect P{k} freed",
    ]


def _cache(k: int, m: str) -> list[str]:
    return [
        f"cache F{k} in {m}",
        f"expect {m} usage 1 cache 1 rss 0",
        f"get F{k}",
        f"lock F{k}",
        f"unlock F{k}",
        f"put F{k}  # the reader is done",
        f"truncate F{k}",
        f"expect F{k} freed",
        f"expect {m} usage 0 cache 0 pgpgout 1",
    ]


def _swap(k: int, m: str) -> list[str]:
    return [
        f"fault Q{k} in {m}",
        f"reclaim Q{k} as E{k}",
        f"expect Q{k} freed",
        f"expect E{k} memcg {m} count 1 page none",
        f"expect {m} usage 0 memsw 1 swap 1 css 1",
        f"swapin E{k} as R{k} in {m} reuse",
        f"expect R{k} flags {PCG} memcg {m} refcount 1 mapcount 1",
        f"expect E{k} freed",
    ]


def _swap_cache(k: int, m: str) -> list[str]:
    return [
        f"fault S{k} in {m}",
        f"reclaim S{k}",
        f"expect S{k} page lru|swapcache entry none",
        f"unmap S{k}",
        f"expect {m} usage 0 memsw 0",
    ]


def _migrate(k: int, m: str) -> list[str]:
    return [
        f"fault O{k} in {m}",
        f"isolate O{k}",
        f"alloc N{k} anon",
        f"migrate O{k} to N{k}",
        f"expect O{k} freed",
        f"expect N{k} flags {PCG} memcg {m} mapcount 1 refcount 1 page lru isolated no",
        f"only v1: expect {m} pgpgin 2 pgpgout 1",
        f"only 3.17: expect {m} pgpgin 1 pgpgout 0",
    ]


def _batch(k: int, m: str) -> list[str]:
    return [
        f"fault B{k}x1 in {m}",
        f"fault B{k}x2 in {m}",
        f"fault B{k}x3 in {m} huge",
        "batch {",
        "  zap {",
        f"    unmap B{k}x1",
        f"    unmap B{k}x2",
        "  }",
        f"  release B{k}x3",
        "}",
        f"expect B{k}x1 freed",
        f"expect {m} usage 0 memsw 0 rss 0 rss_huge 0",
    ]


def _repeat(k: int, m: str) -> list[str]:
    return [
        f"repeat {4 + k % 13} as i {{",
        f"  fault T{k}x{{i}} in {m}",
        f"  expect T{k}x{{i}} memcg {m} mapcount 1",
        f"  unmap T{k}x{{i}}",
        "}",
        f"expect {m} usage 0 failcnt 0 max_usage {4 + k % 13}",
    ]


def _primitives(k: int, m: str) -> list[str]:
    return [
        f"alloc C{k} shmem",
        f"try_charge C{k} to {m}",
        f"commit C{k} lrucare",
        f"add_to_cache C{k}",
        f"lru_add C{k}",
        f"expect C{k} kind shmem memcg {m} page lru",
        f"delete_from_cache C{k}",
        f"put C{k}",
        "only 3.17 {",
        f"  expect C{k} freed",
        "}",
    ]


def _limits(k: int, m: str) -> list[str]:
    return [
        f"expect enomem: fault X{k} in L",
        f"expect X{k} freed",
        "expect L usage 0 failcnt 6 limit 0",
        f"set {m} limit={64 + k % 64}M",
        "expect error EBUSY: set L limit=1",
        "show cost",
        f"show {m}",
    ]


UNITS = (  # (form, weight, the comment that may open it)
    (_anon, 30, "# an anonymous page through its whole life"),
    (_cache, 12, "# the page cache keeps its charge while anybody holds the page"),
    (_swap, 12, "# swapout hands the memory+swap charge to the entry; swap-in takes it back"),
    (_swap_cache, 4, "# reclaim without an entry name: the page stays in the swap cache"),
    (_migrate, 8, "# migration moves the charge to the new page"),
    (_batch, 8, "# batched uncharge: one flush for the whole block"),
    (_repeat, 10, "# a run of short-lived pages"),
    (_primitives, 6, "# shmem by hand: the primitives one by one"),
    (_limits, 4, "# limits: a failed charge, a refused limit change"),
)


def scenario_text(n_lines: int, seed: int) -> str:
    """Exactly `n_lines` lines: a comment header and the setup, then units of every statement
    form (a comment line before about half of them, a blank line after each) with fresh names,
    then comment and blank lines up to `n_lines`."""
    rng = random.Random(seed)
    weights = [w for _form, w, _comment in UNITS]
    lines = [f"# generated by benchmarks/lang_bench.py (seed {seed}): parsed, never run", ""]
    lines += SETUP
    lines.append("")
    k = 0
    while True:
        form, _w, comment = rng.choices(UNITS, weights)[0]
        unit = form(k, rng.choice(LEAVES))
        head = [comment] if rng.random() < 0.5 else []
        if len(lines) + len(head) + len(unit) + 1 > n_lines:
            break
        lines += head + unit + [""]
        k += 1
    while len(lines) < n_lines:
        lines.append("# end" if len(lines) % 2 else "")
    return "\n".join(lines) + "\n"


def count_statements(stmts) -> int:
    """Statements in the AST, the ones inside blocks included (a block counts itself)."""
    n = 0
    for s in stmts:
        n += 1
        body = getattr(s, "body", None)
        if body is not None:
            n += count_statements(body)
        inner = getattr(s, "stmt", None)
        if isinstance(inner, ast.Stmt):
            n += count_statements((inner,))
    return n


# ======================================================================================
# [1] parse
# ======================================================================================
def timed_parse(fn, text: str, collector: bool) -> float:
    """Seconds of one parse, starting from a collected heap; the result is dropped after."""
    gc.collect()
    if not collector:
        gc.disable()
    try:
        t0 = perf_counter()
        result = fn(text)
        t = perf_counter() - t0
    finally:
        gc.enable()
    del result
    return t


def figure_parse(text: str, runs: int) -> float:
    """[1] best of `runs` of ours and plain Lark, alternating, with the collector on as in
    `memcglang run`; then the same with the collector off (parser work alone)."""
    t0 = perf_counter()
    lark_parser()  # ours: loaded from grammar/memcg.lark.lalr when it matches, outside the timing
    load = perf_counter() - t0
    try:
        with BUILT_FILE.open("rb") as f:
            shipped = json.loads(f.readline()) == built_header()
    except (OSError, ValueError):
        shipped = False
    t0 = perf_counter()
    plain = Lark(GRAMMAR_FILE.read_text(encoding="utf-8"), parser="lalr", lexer="contextual")
    build = perf_counter() - t0
    how = f"loaded from {BUILT_FILE.name}" if shipped else f"built now ({BUILT_FILE.name} is stale)"
    print(f"    parsers (not timed below): ours {how} in {load:.2f} s; plain Lark built from "
          f"{GRAMMAR_FILE.name} in {build:.2f} s")

    program = parse(text, "bench.mcg")
    tree = plain.parse(normalise(text))
    if len(tree.children) != len(program.stmts):
        raise RuntimeError(f"the parsers disagree: {len(tree.children)} top-level statements "
                           f"in Lark's tree, {len(program.stmts)} in ours")
    print(f"    both parse {len(program.stmts):,} top-level statements "
          f"({count_statements(program.stmts):,} with the ones inside blocks)")
    del program, tree

    def ours_fn(t):
        return parse(t, "bench.mcg")

    def lark_fn(t):
        return plain.parse(t)

    result = 0.0
    for collector in (True, False):
        times: dict[str, list[float]] = {"ours": [], "lark": []}
        for _ in range(runs):
            times["ours"].append(timed_parse(ours_fn, text, collector))
            times["lark"].append(timed_parse(lark_fn, text, collector))
        o, p = min(times["ours"]), min(times["lark"])
        ratio = p / o
        n = text.count("\n")
        label = "collector on (as in memcglang run)" if collector else "collector off"
        pairs = [b / a for a, b in zip(times["ours"], times["lark"], strict=True)]
        print(f"    {label}: ours " + ", ".join(f"{t:.2f}" for t in times["ours"])
              + " s; lark " + ", ".join(f"{t:.2f}" for t in times["lark"]) + " s "
              f"(ratio run by run: median {statistics.median(pairs):.2f})")
        if collector:
            result = ratio
            print(f"[1] parse {n:,} lines, best of {runs}: ours {o:.2f} s "
                  f"({n / o:,.0f} lines/s), plain Lark {p:.2f} s ({n / p:,.0f} lines/s); "
                  f"our speed / Lark's: {ratio:.2f}x   target >= {TARGET_PARSE_RATIO}x   "
                  f"{verdict(ratio >= TARGET_PARSE_RATIO)}", flush=True)
        else:
            print(f"    [1] with the collector off: ours {o:.2f} s, plain Lark {p:.2f} s; "
                  f"our speed / Lark's: {ratio:.2f}x   target >= {TARGET_PARSE_RATIO}x   "
                  f"{verdict(ratio >= TARGET_PARSE_RATIO)}", flush=True)
    return result


# ======================================================================================
# [2] run, [3] check: subprocesses
# ======================================================================================
def run_child(args: list[str], cwd: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, the child's user+system CPU seconds, the completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    wall = perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def run_text(count: int) -> str:
    return f"memcg A\nrepeat {count} as i {{\n  fault P{{i}} in A\n  unmap P{{i}}\n}}\n"


def figure_run(path: str, count: int, runs: int, cwd: str) -> float:
    """[2] statements/s of `memcglang run --quiet`, start-up included, best of `runs`."""
    args = [sys.executable, "-m", "memcglang", "run", path, "--quiet", "--model", "3.17"]
    print(f"    {' '.join(['python'] + args[1:])}")
    walls, cpus = [], []
    statements = 0
    for _ in range(runs):
        wall, cpu, proc = run_child(args, cwd)
        last = proc.stdout.strip().splitlines()[-1:] or [""]
        if proc.returncode != 0 or "0 failed" not in last[0] or "FAILED" in last[0]:
            raise RuntimeError(f"memcglang run exited {proc.returncode}: {last[0]!r}\n"
                               f"{proc.stderr[-2000:]}")
        statements = int(last[0].split()[0])  # "200001 statements, ..." (memcg A counts)
        walls.append(wall)
        cpus.append(cpu)
    best = min(range(runs), key=walls.__getitem__)
    wall, cpu = walls[best], cpus[best]
    rate = statements / wall
    print(f"    verdict line: {last[0]}")
    print("    runs: " + ", ".join(f"{w:.2f} s wall / {c:.2f} s CPU" for w, c in zip(walls, cpus,
                                                                                   strict=True)))
    print(f"[2] memcglang run --quiet, {statements:,} statements (repeat {count:,} x 2, plus "
          f"memcg A), best of {runs}: {wall:.2f} s wall ({cpu:.2f} s CPU, "
          f"{statements / cpu:,.0f} statements per CPU second): {rate:,.0f} statements/s   "
          f"target >= {TARGET_STMTS:,}   {verdict(rate >= TARGET_STMTS)}", flush=True)
    return rate


CHECK_TEXT = """\
# a 10-line file for `memcglang check`
swapaccount on
memcg A limit=64M
fault P in A
expect P flags USED|MEM|MEMSW memcg A refcount 1
zap {
  unmap P
}
expect P freed
expect A usage 0 memsw 0
"""


def figure_check(path: str, runs: int, cwd: str) -> float:
    """[3] median wall time of `memcglang check` on a 10-line file; `python -c pass` too."""
    args = [sys.executable, "-m", "memcglang", "check", path]
    pass_walls = [run_child([sys.executable, "-c", "pass"], cwd)[0] for _ in range(runs)]
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, proc = run_child(args, cwd)
        if proc.returncode != 0:
            raise RuntimeError(f"memcglang check exited {proc.returncode}:\n{proc.stderr}")
        walls.append(wall)
        cpus.append(cpu)
    med = statistics.median(walls)
    print(f"    {proc.stdout.strip()}")
    print(f"    runs: {', '.join(f'{w:.3f}' for w in walls)} s wall (CPU median "
          f"{statistics.median(cpus):.3f} s)")
    print(f"    python -c pass: median {statistics.median(pass_walls):.3f} s wall "
          f"(min {min(pass_walls):.3f}, max {max(pass_walls):.3f}) over {runs} runs")
    print(f"[3] memcglang check on a {CHECK_TEXT.count(chr(10))}-line file, median of {runs}: "
          f"{med:.3f} s   target < {TARGET_CHECK} s   {verdict(med < TARGET_CHECK)}", flush=True)
    return med


def profile_run(path: str, top: int) -> None:
    """cProfile of [2]'s file run in-process, as the CLI does (not part of any figure)."""
    from memcglang import cli

    prof = cProfile.Profile()
    out = io.StringIO()
    prof.enable()
    status = cli.run([path], "3.17", "plain", True, out, sys.stderr)
    prof.disable()
    stats = pstats.Stats(prof, stream=(report := io.StringIO()))
    stats.sort_stats("tottime").print_stats(top)
    print(f"--- cProfile of memcglang.cli.run on {os.path.basename(path)} (exit {status}; "
          f"{out.getvalue().strip()}), by own time ---")
    print(report.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes: a 10,000-line parse file, repeat 20,000")
    ap.add_argument("--seed", type=int, default=20140701,
                    help="seed of the generated parse file")
    ap.add_argument("--profile", action="store_true",
                    help="also print the cProfile top functions of [2]'s run, in-process")
    ap.add_argument("--keep", action="store_true",
                    help="keep the generated files (their directory is printed)")
    args = ap.parse_args(argv)

    lines, count = (10_000, 20_000) if args.quick else (100_000, 100_000)
    load = os.getloadavg()[0]
    print(f"memcglang language benchmark ({'quick' if args.quick else 'full'}; seed {args.seed}; "
          f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs, load average {load:.2f})")
    if load > 1.0:
        print("note: other processes are running: wall-clock figures will be noisy (compare "
              "the CPU-time figures)")

    work = tempfile.mkdtemp(prefix="lang_bench.")
    try:
        text = scenario_text(lines, args.seed)
        parse_path = os.path.join(work, "parse.mcg")
        run_path = os.path.join(work, "run.mcg")
        check_path = os.path.join(work, "check.mcg")
        for path, body in ((parse_path, text), (run_path, run_text(count)),
                           (check_path, CHECK_TEXT)):
            with open(path, "w", encoding="utf-8") as f:
                f.write(body)
        if args.keep:
            print(f"generated files in {work}")

        print(f"\n== [1]: parse a generated {lines:,}-line file ({len(text) / 1024:,.0f} KiB) ==")
        figure_parse(text, PARSE_RUNS)
        print(f"\n== [2]: memcglang run, repeat {count:,} ==")
        figure_run(run_path, count, RUN_RUNS, work)
        print("\n== [3]: memcglang check start-up ==")
        figure_check(check_path, CHECK_RUNS, work)
        if args.profile:
            print()
            profile_run(run_path, 25)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
