"""Command line: the composition root (`memcglang`, `mcg`, `python -m memcglang`).

    memcglang [run] [FILE...] [--model M] [--plain|--json] [--quiet]
    memcglang check FILE...
    memcglang test [PATH...] [--update]
    memcglang repl [FILE] [--model M]
    memcglang diff [FILE] --models A,B [--plain|--json]
    memcglang explore FILE [--model M] [--max-states N] [--max-depth N] [--stats]
                           [-o REPLAY [--counterexample N]]
    memcglang run --replay REPLAY [FILE]
    memcglang hunt --model M [--seed N] [--budget S | --runs N] [-o DIR] [--stats]

With no FILE, `run` runs the built-in tour (memcglang/tour.mcg). Exit codes (LANGUAGE §6):
0 good, 1 a scenario failed (or `hunt` found something), 2 usage, syntax or name error,
3 `explore` hit a bound. No
Python traceback reaches a user: engine refusals are reports, static errors are diagnostics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memcglang import __version__
from memcglang.explore import DEFAULT_MAX_DEPTH, DEFAULT_MAX_STATES, DEFAULT_MAX_TIME
from memcglang.hunt import DEFAULT_BUDGET, DEFAULT_SEED
from memcglang.runner import MAX_REPEAT, TOUR, ModelUnavailable, choose_model, load, trace

MODELS = ("v1", "3.17", "legacy")


def check(files: list[str], out, err, max_repeat: int = MAX_REPEAT) -> int:
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
        max_repeat: int = MAX_REPEAT) -> int:
    """Run each file; print its trace; the worst exit status."""
    status = 0
    for path in files or [TOUR]:
        loaded = _load(path, [model], max_repeat, err)
        if loaded is None:
            status = 2
            continue
        program, resolution, (chosen,) = loaded
        if trace(program, resolution, chosen, mode, quiet, _emitter(mode, out)):
            status = max(status, 1)
    return status


def _load(path: str, models: list[str | None], max_repeat: int, err):
    """(program, resolution, the model chosen for each of `models`), or None once the static
    errors or the model that is not available are printed (exit status 2)."""
    from memcglang.lang.diagnostics import StaticErrors

    try:
        program, resolution = load(path, max_repeat)
        return program, resolution, [choose_model(program, resolution, m) for m in models]
    except StaticErrors as e:
        print(e.format(), file=err)
    except ModelUnavailable as e:
        print(e, file=err)
    return None


def test(paths: list[str], update: bool, out, err) -> int:
    """Golden tests: run every case, print each failure with its diff (and, with `update`,
    what changed), end with `N passed, N failed`; 0 when all passed, 1 failures, 2 usage."""
    from memcglang import golden

    if not paths:
        if not Path("scenarios").is_dir():
            print("memcglang test: no scenarios/ directory here: name the scenarios or "
                  "directories to test", file=err)
            return 2
        paths = ["scenarios"]
    files, errors = golden.discover(paths)
    for e in errors:
        print(f"memcglang test: {e}", file=err)
    if errors:
        return 2
    if not files:
        print(f"memcglang test: no .mcg scenarios under {' '.join(paths)}", file=err)
        return 2
    counts = {"passed": 0, "failed": 0, "created": 0, "updated": 0, "removed": 0}
    for scenario in files:
        cases, stale = golden.scenario_cases(scenario)
        checks = [(c, golden.check(c, update)) for c in cases]
        checks += [(s, golden.check_stale(s, update)) for s in stale]
        for case, result in checks:
            counts[result.status] += 1
            if result.status == "failed":
                print(f"FAILED {case.id}\n{result.report}\n", file=out)
            elif result.status != "passed":
                print(f"{result.status} {case.golden}", file=out)
    passed = counts["passed"] + counts["created"] + counts["updated"] + counts["removed"]
    summary = f"{passed} passed, {counts['failed']} failed"
    changed = [f"{counts[k]} {k}" for k in ("created", "updated", "removed") if counts[k]]
    if update:
        summary += f" ({', '.join(changed) or 'no golden file changed'})"
    print(summary, file=out)
    return 1 if counts["failed"] else 0


def repl(path: str | None, model: str | None, max_repeat: int, stdin, out, err) -> int:
    """The REPL: interactive on a terminal, else statements from stdin with plain output."""
    from memcglang.repl.session import MetaError, Session, feed

    interactive = stdin.isatty() and out.isatty()
    try:
        session = Session(model, "<repl>" if interactive else "<stdin>", max_repeat)
    except MetaError as e:
        print(f"memcglang repl: {e}", file=err)
        return 2
    first = []
    if path is not None:
        first = [f":load {path}"]
    if not interactive:
        return feed(session, [*first, *stdin], lambda line: print(line, file=out))
    from memcglang.render.rich import Screen
    from memcglang.repl import app

    for command in first:
        Screen(out).update(session.execute(command), session.engine)
    return app.run(session, out)


def diff(path: str, models: str, mode: str, out, err, max_repeat: int = MAX_REPEAT) -> int:
    """Run `path` under two models in lockstep and print where they differ; 0 when both ran
    (whatever they found), 2 for a usage or syntax error or a model that is not available."""
    from memcglang import diff as comparison

    names = [m.strip() for m in models.split(",")]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        print(f"memcglang diff: unknown model {', '.join(unknown)} (models: {', '.join(MODELS)})",
              file=err)
        return 2
    if len(names) != 2 or names[0] == names[1]:
        print(f"memcglang diff: --models names two different models, e.g. v1,3.17 (got "
              f"{models!r})", file=err)
        return 2
    loaded = _load(path, names, max_repeat, err)
    if loaded is None:
        return 2
    program, resolution, chosen = loaded
    compared = comparison.Comparison(program, resolution, *chosen)
    if mode == "rich":
        from memcglang.render.rich import DiffView

        DiffView(out).show(compared.models, comparison.header(compared),
                           list(comparison.fold(compared.statements())), compared.summary())
        return 0
    lines = comparison.json_lines if mode == "json" else comparison.plain_lines
    for line in lines(compared):
        print(line, file=out)
    return 0


def explore(path: str, model: str | None, max_states: int, max_depth: int, reduction: bool,
            stats: bool, replay_out: str | None, out, err, max_repeat: int = MAX_REPEAT,
            which: int = 1, max_time: float = DEFAULT_MAX_TIME) -> int:
    """Search every interleaving of the file's threads; 0 Always, 1 a failure or a
    postcondition that does not always hold, 2 usage or syntax error, 3 a bound was hit."""
    from memcglang.explore.report import explore as search
    from memcglang.lang.diagnostics import StaticErrors

    loaded = _load(path, [model], max_repeat, err)
    if loaded is None:
        return 2
    program, resolution, (chosen,) = loaded
    try:
        return search(program, resolution, chosen, lambda line: print(line, file=out),
                      max_states=max_states, max_depth=max_depth, reduction=reduction,
                      stats=stats or out.isatty(), replay_out=replay_out, which=which,
                      max_time=max_time,
                      scenario_path=path)
    except StaticErrors as e:
        print(e.format(), file=err)
        return 2


def hunt(model: str, seed: int, budget: float | None, runs: int | None, out_dir: str | None,
         stats: bool, out, err) -> int:
    """Hunt for findings; 0 none, 1 some, 2 a usage error."""
    from memcglang.hunt.report import hunt as search
    from memcglang.hunt.report import progress_line, summary

    problem = None
    if not 0 <= seed < 10**18:
        problem = "--seed must be a number from 0 to 999,999,999,999,999,999"
    elif runs is not None and runs < 1:
        problem = "--runs must be at least 1"
    elif budget is not None and not 0 < budget <= 10**7:
        problem = "--budget must be more than 0 seconds (and at most 10,000,000)"
    elif out_dir is not None and not out_dir.strip():
        problem = "-o needs a directory name"
    elif out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        problem = f"-o {out_dir}: not a directory"
    if problem is not None:
        print(f"memcglang hunt: error: {problem}", file=err)
        return 2
    if out_dir is not None:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as e:  # ValueError: a NUL in the name
            print(f"memcglang hunt: error: -o {out_dir!r}: {getattr(e, 'strerror', None) or e}",
                  file=err)
            return 2
    tty = err.isatty()

    def progress(h) -> None:
        print("\r" + progress_line(h), end="", file=err, flush=True)

    h = search(model, seed, runs, DEFAULT_BUDGET if budget is None else budget, out_dir,
               progress if tty else None)
    if tty:
        print("\r\033[K", end="", file=err, flush=True)
    summary(h, lambda line: print(line, file=out), stats or out.isatty())
    return 1 if h.findings else 0


def run_replay(replay_path: str, files: list[str], model: str | None, out, err,
               max_repeat: int = MAX_REPEAT) -> int:
    """`run --replay`: the explorer's schedule, step for step, with its trace."""
    from memcglang.explore.report import ReplayError, read_replay, replay

    try:
        scenario, replay_model, steps = read_replay(replay_path)
        if len(files) > 1:
            raise ReplayError("--replay takes at most one scenario FILE")
        path = files[0] if files else scenario
        loaded = _load(path, [model or replay_model], max_repeat, err)
        if loaded is None:
            return 2
        program, resolution, (chosen,) = loaded
        return replay(program, resolution, chosen, steps, lambda line: print(line, file=out))
    except ReplayError as e:
        print(f"memcglang run --replay: {e}", file=err)
        return 2


def plot(path: str, model: str | None, output: str | None, as_html: bool, terminal: bool,
         out, err, max_repeat: int = MAX_REPEAT) -> int:
    """Plot the counters of a run; 0 when it was drawn (a scenario that fails is drawn to
    where it stopped, and says so), 2 for a usage or syntax error."""
    from memcglang import plot as plotting

    if not terminal and output is None:
        print("memcglang plot: say where: -o OUT.svg, -o OUT.png, --html -o OUT.html, or "
              "--terminal", file=err)
        return 2
    suffix = Path(output).suffix.lower() if output else ""
    wanted = (".html", ".htm") if as_html else (".svg", ".png")
    if output is not None and suffix not in wanted:
        print(f"memcglang plot: -o {output}: the file name ends in "
              f"{' or '.join(wanted)}{'' if as_html else ' (or give --html)'}", file=err)
        return 2
    loaded = _load(path, [model], max_repeat, err)
    if loaded is None:
        return 2
    program, resolution, (chosen,) = loaded
    samples = plotting.sample(program, resolution, chosen)
    if samples.failed:
        print(f"memcglang plot: the scenario fails under {chosen}: the plot ends where it "
              "stopped (`memcglang run` shows why)", file=err)
    if terminal:
        print(plotting.terminal(samples), file=out)
        return 0
    try:
        if as_html:
            Path(output).write_text(plotting.page(samples, program.source), encoding="utf-8")
        else:
            plotting.save(samples, output)
    except OSError as e:
        print(f"memcglang plot: cannot write {output}: {e.strerror}", file=err)
        return 2
    print(f"{output}: {len(samples.lines)} statements, memcgs {', '.join(samples.shown())}",
          file=out)
    return 0


def graph(path: str, model: str | None, out, err, max_repeat: int = MAX_REPEAT) -> int:
    """The dot text of each page's life; 0 when drawn, 2 for a usage or syntax error."""
    from memcglang import graph as graphing

    loaded = _load(path, [model], max_repeat, err)
    if loaded is None:
        return 2
    program, resolution, (chosen,) = loaded
    text, failed = graphing.dot(program, resolution, chosen)
    if failed:
        print(f"memcglang graph: the scenario fails under {chosen}: the graph ends where it "
              "stopped (`memcglang run` shows why)", file=err)
    print(text, file=out, end="")
    return 0


def _emitter(mode: str, out):
    if mode == "rich":
        from memcglang.render.rich import Painter

        return Painter(out).line
    return lambda line: print(line, file=out)


def _output_options(parser) -> None:
    out_mode = parser.add_mutually_exclusive_group()
    out_mode.add_argument("--plain", action="store_true",
                          help="the plain format (the default when stdout is not a terminal)")
    out_mode.add_argument("--json", action="store_true", help="one JSON object per line")


def _mode(args) -> str:
    """json, plain, or rich on a terminal."""
    if args.json:
        return "json"
    return "plain" if args.plain or not sys.stdout.isatty() else "rich"


def _scenario_options(parser) -> None:
    """A scenario FILE and the model to run it under."""
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--model", choices=MODELS, help="override the file's model")


def _max_repeat_option(parser) -> None:
    parser.add_argument("--max-repeat", type=int, default=MAX_REPEAT, metavar="N",
                        help="the largest repeat count a file may use (default 1,000,000)")


COMMANDS = ("run", "check", "test", "repl", "diff", "explore", "hunt", "plot", "graph",
            "completion")


def parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of a subcommand (`run` is the default one). Shell completion reads
    the options from here too."""
    if command == "check":
        p = argparse.ArgumentParser(
            prog="memcglang check", description="Parse and resolve .mcg files (nothing runs).")
        p.add_argument("files", nargs="+", metavar="FILE")
        _max_repeat_option(p)
        return p
    if command == "test":
        p = argparse.ArgumentParser(
            prog="memcglang test",
            description="Run scenarios under the models of their `# models:` line and "
            "compare each trace with its golden file NAME.MODEL.out.",
        )
        p.add_argument("paths", nargs="*", metavar="PATH",
                       help=".mcg files or directories (default: scenarios/)")
        p.add_argument("--update", action="store_true",
                       help="write the golden files of passing runs that differ")
        return p
    if command == "repl":
        p = argparse.ArgumentParser(
            prog="memcglang repl",
            description="Type statements and see page flags and counters after each. "
            "With stdin not a terminal, statements are read line by line and the plain "
            "trace is printed (scriptable).",
        )
        p.add_argument("file", nargs="?", metavar="FILE", help="a .mcg file to run first")
        p.add_argument("--model", choices=MODELS, help="the kernel model")
        _max_repeat_option(p)
        return p
    if command == "diff":
        p = argparse.ArgumentParser(
            prog="memcglang diff",
            description="Run a scenario under two models in lockstep and show, statement "
            "by statement, where the kernels differ; identical statements are folded. "
            "Exit 0 when both ran: the differences are the output.",
        )
        p.add_argument("file", nargs="?", default=TOUR, metavar="FILE",
                       help="a .mcg scenario (default: the built-in tour)")
        p.add_argument("--models", required=True, metavar="A,B",
                       help="the two models, e.g. v1,3.17 (A is the first)")
        _output_options(p)
        _max_repeat_option(p)
        return p
    if command == "explore":
        p = argparse.ArgumentParser(
            prog="memcglang explore",
            description="Run the file's thread blocks in every interleaving of their "
            "steps (a composite's phases are steps) and check kernel assertions and "
            "invariants in every state and the postcondition in every final state. "
            "Exit 0 Always, 1 a failure found, 3 a bound was hit (incomplete).",
        )
        _scenario_options(p)
        p.add_argument("--max-states", type=int, default=DEFAULT_MAX_STATES, metavar="N",
                       help="distinct states before the search stops (default 1,000,000)")
        p.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH, metavar="N",
                       help="steps on one path (default 10,000)")
        p.add_argument("--max-time", type=float, default=DEFAULT_MAX_TIME, metavar="S",
                       help="seconds of search (default 600; the report then depends on "
                       "the machine's speed)")
        p.add_argument("--no-reduction", action="store_true",
                       help="take every interleaving, without partial-order reduction")
        p.add_argument("--stats", action="store_true",
                       help="also the time and states per second")
        p.add_argument("-o", "--replay-out", metavar="REPLAY",
                       help="write a counterexample's schedule to REPLAY")
        p.add_argument("--counterexample", type=int, default=1, metavar="N",
                       help="with -o: which counterexample (default 1, the shortest)")
        _max_repeat_option(p)
        return p
    if command == "hunt":
        p = argparse.ArgumentParser(
            prog="memcglang hunt",
            description="Run random sequences of kernel paths (fault, COW, cache, truncate, "
            "reclaim, swap-in, readahead, migration, page-cache replacement, references, "
            "zap, batches, charge moving, THP split, limits) with every invariant checked "
            "after every step, a quarter of the runs ending in two or three threads that "
            "explore searches in every interleaving; shrink each distinct finding to a small "
            "scenario with its `expect violation:` or `expect bug:` line (or its `# explore:` "
            "verdict). Exit 0 no finding, 1 findings.",
        )
        p.add_argument("--model", choices=MODELS, required=True, help="the kernel model")
        p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                       help=f"the seed: the same seed gives the same runs (default "
                       f"{DEFAULT_SEED})")
        much = p.add_mutually_exclusive_group()
        much.add_argument("--budget", type=float, metavar="S",
                          help=f"seconds of search (default {DEFAULT_BUDGET:g})")
        much.add_argument("--runs", type=int, metavar="N",
                          help="this many runs, whatever the time: the output is then the "
                          "same on every machine")
        p.add_argument("-o", "--output", metavar="DIR",
                       help="write each finding as DIR/NN-WHAT.mcg with its golden file "
                       "(`memcglang test DIR` passes at once)")
        p.add_argument("--stats", action="store_true", help="also the time and the rates")
        return p
    if command == "plot":
        p = argparse.ArgumentParser(
            prog="memcglang plot",
            description="Plot each memcg's usage, memsw, rss, cache and swap over the "
            "statements of a scenario: an SVG or PNG (-o), the same as text (--terminal), "
            "or one self-contained HTML page with the scenario, the trace and the plot "
            "(--html -o OUT.html).",
        )
        _scenario_options(p)
        p.add_argument("-o", "--output", metavar="OUT",
                       help="OUT.svg, OUT.png, or with --html OUT.html")
        what = p.add_mutually_exclusive_group()
        what.add_argument("--html", action="store_true", help="one self-contained page")
        what.add_argument("--terminal", action="store_true", help="draw it as text (plotext)")
        _max_repeat_option(p)
        return p
    if command == "graph":
        p = argparse.ArgumentParser(
            prog="memcglang graph",
            description="Each page's life as a Graphviz dot graph: its states (flags, "
            "charge, counts) and the statements between them. `| dot -Tsvg > life.svg`.",
        )
        _scenario_options(p)
        _max_repeat_option(p)
        return p
    if command == "completion":
        p = argparse.ArgumentParser(
            prog="memcglang completion",
            description="Print a shell completion script: `source <(memcglang completion "
            "bash)`, or save it where your shell loads completions (docs/shell.md).",
        )
        p.add_argument("shell", choices=("bash", "zsh", "fish"))
        return p
    p = argparse.ArgumentParser(
        prog="memcglang",
        description="Replay the life of pages against a model of memcg page accounting. "
        "With no FILE, runs the built-in tour. Other commands: " + ", ".join(COMMANDS[1:])
        + " (`memcglang COMMAND --help`).",
    )
    p.add_argument("--version", action="version", version=f"memcglang {__version__}")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--model", choices=MODELS, help="override the file's model")
    _output_options(p)
    p.add_argument("--quiet", action="store_true", help="only failures and the verdict line")
    p.add_argument("--replay", metavar="REPLAY",
                   help="replay a schedule written by `memcglang explore -o`")
    _max_repeat_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        command = "run"
        if argv and argv[0] in COMMANDS:
            command, argv = argv[0], argv[1:]
        args = parser(command).parse_args(argv)
        out, err = sys.stdout, sys.stderr
        if command == "check":
            return check(args.files, out, err, args.max_repeat)
        if command == "test":
            return test(args.paths, args.update, out, err)
        if command == "repl":
            return repl(args.file, args.model, args.max_repeat, sys.stdin, out, err)
        if command == "diff":
            return diff(args.file, args.models, _mode(args), out, err, args.max_repeat)
        if command == "explore":
            return explore(args.file, args.model, args.max_states, args.max_depth,
                           not args.no_reduction, args.stats, args.replay_out, out, err,
                           args.max_repeat, args.counterexample, args.max_time)
        if command == "hunt":
            return hunt(args.model, args.seed, args.budget, args.runs, args.output, args.stats,
                        out, err)
        if command == "plot":
            return plot(args.file, args.model, args.output, args.html, args.terminal, out, err,
                        args.max_repeat)
        if command == "graph":
            return graph(args.file, args.model, out, err, args.max_repeat)
        if command == "completion":
            from memcglang.completion import script

            print(script(args.shell), file=out, end="")
            return 0
        if args.replay is not None:
            return run_replay(args.replay, args.files, args.model, out, err, args.max_repeat)
        return run(args.files, args.model, _mode(args), args.quiet, out, err, args.max_repeat)
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug of ours: say so in one line, never with a traceback
        print(f"memcglang: internal error: {type(e).__name__}: {e} (please report it with the "
              "scenario that caused it)", file=sys.stderr)
        return 1
