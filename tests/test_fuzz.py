"""Hostile input, fuzzed (docs/robustness.md): scripts generated from the grammar
(`hypothesis.extra.lark.from_lark` on grammar/memcg.lark) and real scenarios mutated (lines
deleted, duplicated, swapped, truncated; huge numbers; deep nesting; long lines and names;
CRLF, a BOM, NUL bytes, bytes that are not UTF-8; empty files; directories and missing files
as arguments) go through `check`, `run`, `test`, `diff`, `explore` and the REPL's session;
`hunt` gets random arguments (seeds, run counts, budgets, output paths), its runs being the
generator's own fuzz.
Every outcome is a documented exit status with a message on the right stream: never a
traceback, an internal error or a hang.

CI runs each test's `MCG_FUZZ_EXAMPLES` examples (default 120); the long fuzz of
docs/robustness.md runs the same tests with more:
    MCG_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py -p no:randomly -x
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from memcglang import cli
from memcglang.lang.diagnostics import StaticErrors
from memcglang.lang.parser import grammar_text, parse
from memcglang.lang.resolver import unrolled

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(p for p in (ROOT / "scenarios").rglob("*.mcg"))
EXAMPLES = int(os.environ.get("MCG_FUZZ_EXAMPLES", "120"))
SMALL = 3_000  # statements a fuzzed file may run (repeats unrolled), to keep each case quick
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get(
    "MCG_FUZZ_RANDOM"), suppress_health_check=list(HealthCheck))


def call(*args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO(stdin)
    try:
        status = cli.main(list(args))
    except SystemExit as e:  # argparse's usage errors, as the process would exit
        status = e.code
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
    return status, out.getvalue(), err.getvalue()


def outcome_ok(status: int, out: str, err: str, allowed=(0, 1, 2)) -> None:
    assert status in allowed, (status, out[-2000:], err[-2000:])
    for stream in (out, err):
        assert "Traceback" not in stream and "internal error" not in stream, stream[-3000:]
    if status == 2:
        assert err.strip(), "a usage or syntax error says what is wrong on stderr"


def small_enough(text: str) -> bool:
    """Whether the file parses to something quick to run (unparseable files are quick)."""
    try:
        program = parse(text, "f.mcg")
    except StaticErrors:
        return True
    return sum(map(unrolled, program.stmts)) <= SMALL


def every_command(path: Path) -> None:
    p = str(path)
    outcome_ok(*call("check", p))
    for model in ("v1", "3.17", "legacy"):
        outcome_ok(*call("run", p, "--model", model, "--max-repeat", "50"))
    outcome_ok(*call("run", p, "--json", "--quiet", "--max-repeat", "50"))
    outcome_ok(*call("diff", p, "--models", "legacy,3.17", "--max-repeat", "50"))
    outcome_ok(*call("explore", p, "--max-states", "300", "--max-repeat", "50"),
               allowed=(0, 1, 2, 3))
    outcome_ok(*call("test", p))


def session_feed(text: str) -> None:
    """The REPL's session layer, line by line, with its meta commands."""
    from memcglang.repl.session import Session

    session = Session("3.17", "<fuzz>", 50)
    for line in [*text.splitlines(), ":undo", ":redo", ":model legacy", ":undo 3", ":reset"]:
        result = session.execute(line)
        assert result is not None


GRAMMAR = Lark(grammar_text(), parser="lalr", lexer="contextual", start="start")


@FUZZ
@given(from_lark(GRAMMAR))
def test_scripts_from_the_grammar(tmp_path_factory, text):
    assume(small_enough(text))
    path = tmp_path_factory.mktemp("g") / "g.mcg"
    path.write_text(text, encoding="utf-8")
    every_command(path)
    session_feed(text)


# -- mutations of real scenarios ------------------------------------------------------------
def _mutate(text: str, data) -> bytes:
    lines = text.splitlines()
    kind = data.draw(st.sampled_from([
        "delete", "duplicate", "swap", "truncate", "huge-number", "deep-nesting", "long-line",
        "long-name", "crlf-bom", "nul", "not-utf8", "empty", "garbage-line", "cut-block"]))
    i = data.draw(st.integers(0, max(0, len(lines) - 1)))
    j = data.draw(st.integers(0, max(0, len(lines) - 1)))
    if kind == "delete" and lines:
        del lines[i]
    elif kind == "duplicate" and lines:
        lines.insert(j, lines[i])
    elif kind == "swap" and lines:
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "truncate":
        cut = data.draw(st.integers(0, len(text)))
        return text[:cut].encode()
    elif kind == "huge-number":
        lines.insert(i, data.draw(st.sampled_from([
            "repeat 99999999999999999999999 as i {", "memcg Z limit=99999999999999999999G",
            "expect A usage 123456789012345678901234567890", "set A limit=1K",
            "repeat 1000000 as k {"])))
    elif kind == "deep-nesting":
        depth = data.draw(st.integers(1, 300))
        lines += [f"{'  ' * d}repeat 2 as v{d} {{" for d in range(depth)]
        lines += ["  " * depth + "get P"] + [f"{'  ' * d}}}" for d in reversed(range(depth))]
    elif kind == "long-line":
        lines.insert(i, "expect A usage " + "1" * data.draw(st.integers(1000, 100_000)))
    elif kind == "long-name":
        lines.insert(i, f"alloc {'N' * data.draw(st.integers(100, 50_000))} anon")
    elif kind == "crlf-bom":
        return ("\ufeff" + "\r\n".join(lines)).encode()
    elif kind == "nul":
        return (text[: len(text) // 2] + "\x00" + text[len(text) // 2:]).encode()
    elif kind == "not-utf8":
        return text.encode()[: i] + b"\xff\xfe\xc3" + text.encode()[i:]
    elif kind == "empty":
        return b""
    elif kind == "garbage-line":
        lines.insert(i, data.draw(st.text(max_size=80)))
    elif kind == "cut-block" and lines:
        lines = [line for line in lines if line.strip() != "}"][: i + 1]
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


@FUZZ
@given(st.sampled_from(SCENARIOS), st.data())
def test_mutated_scenarios(tmp_path_factory, scenario, data):
    raw = _mutate(scenario.read_text(encoding="utf-8"), data)
    assume(small_enough(raw.decode("utf-8", errors="replace")))
    path = tmp_path_factory.mktemp("m") / scenario.name
    path.write_bytes(raw)
    every_command(path)
    session_feed(raw.decode("utf-8", errors="replace"))


def test_directories_missing_files_and_replays_as_arguments(tmp_path):
    missing = str(tmp_path / "nope.mcg")
    for args in (("run", str(tmp_path)), ("run", missing), ("check", str(tmp_path)),
                 ("check", missing), ("diff", missing, "--models", "v1,3.17"),
                 ("explore", str(tmp_path)), ("explore", missing), ("test", missing),
                 ("graph", missing), ("plot", missing, "--terminal"),
                 ("run", "--replay", missing), ("run", "--replay", str(tmp_path)),
                 ("repl", missing)):
        status, out, err = call(*args)
        outcome_ok(status, out, err)
        assert status == 2 or args[0] == "repl", args
        assert err.strip() or out.strip(), args


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "\ufeff", "}\n", "{\n"])
def test_empty_and_degenerate_files(tmp_path, text):
    path = tmp_path / "e.mcg"
    path.write_text(text, encoding="utf-8")
    every_command(path)


ODD_NUMBERS = st.one_of(
    st.integers(-10, 40).map(str), st.integers().map(str),
    st.sampled_from(["", "x", "1e3", "nan", "inf", "-inf", "0x10", "1_000", " 3", "١٢"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr))


@FUZZ
@given(model=st.sampled_from(["v1", "3.17", "legacy", "4.0", ""]), seed=ODD_NUMBERS,
       runs=st.one_of(st.integers(1, 25).map(str), ODD_NUMBERS),
       budget=st.one_of(st.none(), ODD_NUMBERS), out=st.sampled_from(
           [None, "dir", "dir/deeper", "file", "file/sub", "nul\x00byte", ""]),
       data=st.data())
def test_hunt_arguments(tmp_path_factory, model, seed, runs, budget, out, data):
    """Any arguments: a documented exit status, a message for a usage error, and no
    generator refusal in the runs that do run (each seed is a new stream of runs)."""
    base = tmp_path_factory.mktemp("h")
    (base / "file").write_text("")
    args = ["hunt", "--model", model, "--seed", seed]
    budgeted = budget is not None and data.draw(st.booleans())
    if budgeted:
        try:  # at most a short search: the bound is what is fuzzed, not the wait
            if not 0 < float(budget) <= 0.05:
                budget = "0.05"
        except ValueError:
            pass
        args += ["--budget", budget]
    else:
        args += ["--runs", runs]
        try:
            if int(runs) > 25:
                args[-1] = "25"
        except ValueError:
            pass
    if out is not None:
        args += ["-o", str(base / out) if out else out]
    status, stdout, stderr = call(*args)
    outcome_ok(status, stdout, stderr)
    assert "generator bugs" not in stdout and "does not reproduce" not in stdout, stdout

