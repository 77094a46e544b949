"""Command line: the composition root (`memcglang`, `mcg`, `python -m memcglang`).

`memcglang check FILE...` parses and resolves .mcg files (exit 0, or 2 with every static
error). With no subcommand it runs the built-in tour: a fixed walk through the rewrite's
design points, driven through the engine API, with the counters after every step (the
interpreter that runs .mcg files is being built).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from memcglang import __version__

if TYPE_CHECKING:
    from memcglang.engine import Engine, StepResult

MODELS = ("v1", "3.17")

# (statement as the language will write it, engine method, arguments)
TOUR = (
    ("the charge lifetime: charge at the fault, uncharge after the final put", None, ()),
    ("memcg A limit=64", "create_memcg", ("A", 64)),
    ("fault P in A", "fault", ("P", "A")),
    ("zap { unmap P }", "zap", ("P",)),
    ("memsw moves to the swap entry at swapout, back to the page at swap-in", None, ()),
    ("fault Q in A", "fault", ("Q", "A")),
    ("reclaim Q as E", "reclaim", ("Q", "E")),
    ("swapin E as R in A", "swapin", ("E", "R", "A")),
    ("migration transfers the charge", None, ()),
    ("isolate R", "isolate", ("R",)),
    ("alloc N anon", "alloc", ("N", "anon")),
    ("migrate R to N", "migrate", ("R", "N")),
    ("page-cache replacement of a page on the LRU (SEMANTICS E5)", None, ()),
    ("cache F in A", "cache", ("F", "A")),
    ("get F", "get", ("F",)),
    ("lock F", "lock", ("F",)),
    ("alloc G file", "alloc", ("G", "file")),
    ("lock G", "lock", ("G",)),
    ("replace_cache F with G", "replace_cache", ("F", "G")),
)

MEMCG_FIELDS = ("usage", "memsw", "rss", "cache", "swap", "pgpgin", "pgpgout")


def describe_memcg(e, name: str) -> str:
    view = e.memcg_view(name)
    return f"{name}: " + " ".join(f"{f} {view[f]}" for f in MEMCG_FIELDS)


def describe_page(e, name: str) -> str:
    v = e.page_view(name)
    if v["freed"]:
        return f"{name}: freed"
    return (
        f"{name}: flags {v['flags']} memcg {v['memcg']} refcount {v['refcount']} "
        f"mapcount {v['mapcount']} page {v['page']}"
    )


def run_step(e: Engine, method: str, args: tuple) -> StepResult | list[StepResult]:
    if method == "zap":
        return [e.zap_begin(), *(e.unmap(a) for a in args), e.zap_end()]
    if method == "create_memcg":
        return e.create_memcg(args[0], limit=args[1])
    return getattr(e, method)(*args)


def tour(model: str, out) -> int:
    """Run the built-in tour under `model` and print it; 0 unless a step surprised us."""
    from memcglang.engine import Engine, EngineError

    e = Engine(model)
    print(f"memcglang {__version__}: tour under model {model} (swap accounting on)", file=out)
    status = 0
    number = 0
    for text, method, args in TOUR:
        if method is None:
            print(f"\n# {text}", file=out)
            continue
        number += 1
        print(f"[{number}] {text}", file=out)
        try:
            results = run_step(e, method, args)
        except EngineError as err:
            print(f"    refused: {err}", file=out)
            report = getattr(err, "report", None)
            if report:
                print("\n".join("    " + line for line in report.splitlines()), file=out)
            continue
        results = results if isinstance(results, list) else [results]
        calls = [ev[2] for r in results for ev in r.events if ev[1] == "call"]
        print("    calls: " + ", ".join(calls), file=out)
        for r in results:
            if r.error is not None:
                print(f"    {r.error}", file=out)
            for v in r.violations:
                print(f"    invariant violated: {v}", file=out)
        print("    " + describe_memcg(e, "A"), file=out)
        for name in args:
            if name in e.pages:
                print("    " + describe_page(e, name), file=out)
    return status


def check(files: list[str], out, err) -> int:
    """Parse and resolve each file; print every static error; 0 if all are clean, else 2."""
    from memcglang.lang.diagnostics import StaticErrors
    from memcglang.lang.parser import parse
    from memcglang.lang.resolver import resolve
    from memcglang.lang.source import read_source

    status = 0
    for path in files:
        try:
            program = parse(read_source(path), path)
            resolve(program)
        except StaticErrors as e:
            print(e.format(), file=err)
            n = len(e.diagnostics)
            print(f"{path}: {n} error{'s' if n != 1 else ''}", file=err)
            status = 2
            continue
        n = len(program.stmts)
        print(f"{path}: ok ({n} top-level statement{'s' if n != 1 else ''})", file=out)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "check":
        parser = argparse.ArgumentParser(
            prog="memcglang check", description="Parse and resolve .mcg files (nothing runs)."
        )
        parser.add_argument("files", nargs="+", metavar="FILE")
        args = parser.parse_args(argv[1:])
        return check(args.files, sys.stdout, sys.stderr)
    parser = argparse.ArgumentParser(
        prog="memcglang",
        description="Replay the life of pages against a model of memcg page accounting. "
        "With no arguments, runs the built-in tour. `memcglang check FILE...` checks files.",
    )
    parser.add_argument("--version", action="version", version=f"memcglang {__version__}")
    parser.add_argument(
        "--model", choices=MODELS, default="3.17", help="kernel model to run (default 3.17)"
    )
    args = parser.parse_args(argv)
    try:
        return tour(args.model, sys.stdout)
    except BrokenPipeError:
        return 0
