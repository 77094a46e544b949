"""Command line: the composition root (`memcglang`, `mcg`, `python -m memcglang`).

    memcglang [run] [FILE...] [--model M] [--plain|--json] [--quiet]
    memcglang check FILE...

With no FILE, `run` runs the built-in tour (memcglang/tour.mcg). Exit codes (LANGUAGE §6):
0 good, 1 a scenario failed, 2 usage, syntax or name error. No Python traceback reaches a
user: engine refusals are reports, static errors are diagnostics.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from memcglang import __version__

MODELS = ("v1", "3.17", "legacy")
TOUR = "<tour>"


def load(path: str, max_repeat: int = 1_000_000):
    """(program, resolution) of a file or of the built-in tour; raises StaticErrors."""
    from memcglang.lang.diagnostics import StaticErrors
    from memcglang.lang.parser import parse_recovering
    from memcglang.lang.resolver import resolve
    from memcglang.lang.source import read_source

    if path == TOUR:
        text = resources.files("memcglang").joinpath("tour.mcg").read_text(encoding="utf-8")
        path = "tour.mcg"
    else:
        text = read_source(path)
    program, errors = parse_recovering(text, path)
    if program is None:
        raise StaticErrors(errors)
    try:
        resolution = resolve(program, max_repeat)
    except StaticErrors as e:
        raise StaticErrors(errors + e.diagnostics) from None
    if errors:
        raise StaticErrors(errors)
    return program, resolution


def check(files: list[str], out, err, max_repeat: int = 1_000_000) -> int:
    """Parse and resolve each file; print every static error; 0 if all are clean, else 2."""
    from memcglang.lang.diagnostics import StaticErrors

    status = 0
    for path in files:
        try:
            program, _ = load(path, max_repeat)
        except StaticErrors as e:
            print(e.format(), file=err)
            n = len(e.diagnostics)
            print(f"{path}: {n} error{'s' if n != 1 else ''}", file=err)
            status = 2
            continue
        n = len(program.stmts)
        print(f"{path}: ok ({n} top-level statement{'s' if n != 1 else ''})", file=out)
    return status


def run(files: list[str], model: str | None, mode: str, quiet: bool, out, err,
        max_repeat: int = 1_000_000) -> int:
    """Run each file; print its trace; the worst exit status."""
    from memcglang.lang.diagnostics import StaticErrors
    from memcglang.lang.interpreter import AVAILABLE_MODELS, DEFAULT_MODEL, Interpreter
    from memcglang.render import plain

    status = 0
    for path in files or [TOUR]:
        try:
            program, resolution = load(path, max_repeat)
        except StaticErrors as e:
            print(e.format(), file=err)
            status = 2
            continue
        chosen = model or resolution.model or DEFAULT_MODEL
        if chosen not in AVAILABLE_MODELS:
            print(f"{program.filename}: error: model {chosen} is not available yet "
                  f"(models: {', '.join(AVAILABLE_MODELS)})", file=err)
            status = 2
            continue
        interp = Interpreter(program, resolution, chosen)
        emit = _emitter(mode, out)
        if mode == "json":
            emit(plain.json_header(program.filename, chosen, resolution.swapaccount))
        elif not quiet:
            emit(plain.header(program.filename, chosen, resolution.swapaccount))
        events = passed = failed = 0
        for rec in interp.run():
            events += sum(len(r.events) for r in rec.results)
            passed += rec.expects_passed
            failed += rec.expects_failed
            if mode == "json":
                if not quiet or rec.failed:
                    emit(plain.record_json(rec))
                continue
            for line in plain.record_lines(rec, quiet):
                emit(line)
            if rec.outcome == "show" and not quiet:
                for line in plain.state_lines(interp.engine, rec.show):
                    emit("  " + line)
        verdict = plain.verdict(interp.statements, events, passed, failed)
        if mode == "json":
            emit(plain.json_verdict(verdict, interp.failed))
        else:
            if not quiet:
                emit("state:")
                for line in plain.state_lines(interp.engine):
                    emit("  " + line)
            emit(verdict + (" -- FAILED" if interp.failed else ""))
        if interp.failed:
            status = max(status, 1)
    return status


def _emitter(mode: str, out):
    if mode == "rich":
        from memcglang.render.rich import Painter

        return Painter(out).line
    return lambda line: print(line, file=out)


def _max_repeat_option(parser) -> None:
    parser.add_argument("--max-repeat", type=int, default=1_000_000, metavar="N",
                        help="the largest repeat count a file may use (default 1,000,000)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "check":
            parser = argparse.ArgumentParser(
                prog="memcglang check", description="Parse and resolve .mcg files (nothing runs)."
            )
            parser.add_argument("files", nargs="+", metavar="FILE")
            _max_repeat_option(parser)
            args = parser.parse_args(argv[1:])
            return check(args.files, sys.stdout, sys.stderr, args.max_repeat)
        if argv and argv[0] == "run":
            argv = argv[1:]
        parser = argparse.ArgumentParser(
            prog="memcglang",
            description="Replay the life of pages against a model of memcg page accounting. "
            "With no FILE, runs the built-in tour. `memcglang check FILE...` checks files.",
        )
        parser.add_argument("--version", action="version", version=f"memcglang {__version__}")
        parser.add_argument("files", nargs="*", metavar="FILE")
        parser.add_argument("--model", choices=MODELS, help="override the file's model")
        out_mode = parser.add_mutually_exclusive_group()
        out_mode.add_argument("--plain", action="store_true", help="the plain (golden) format")
        out_mode.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--quiet", action="store_true",
                            help="only failures and the verdict line")
        _max_repeat_option(parser)
        args = parser.parse_args(argv)
        mode = "json" if args.json else (
            "plain" if args.plain or not sys.stdout.isatty() else "rich")
        return run(args.files, args.model, mode, args.quiet, sys.stdout, sys.stderr,
                   args.max_repeat)
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug of ours: say so in one line, never with a traceback
        print(f"memcglang: internal error: {type(e).__name__}: {e} (please report it with the "
              "scenario that caused it)", file=sys.stderr)
        return 1
