"""Syntax errors and how every static error reaches the user (LANGUAGE.md §1, §4).

§4: a syntax, name or usage error runs nothing and exits 2, with all such errors at once, as
`file:line:col: error: …`, the line, a caret and a hint. §1: CRLF and a leading BOM are
accepted and tabs count as spaces, so positions must stay right with them. No input ever
produces a Python traceback: the fuzz tests at the end feed the front end garbage and accept
nothing but `StaticErrors`.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest
from diag_helpers import text_of, where

from memcglang.lang import ast
from memcglang.lang.diagnostics import Diagnostic, StaticErrors
from memcglang.lang.parser import grammar_text, parse
from memcglang.lang.resolver import resolve
from memcglang.lang.source import read_source


def syntax_errors(text: str, filename: str = "t.mcg") -> StaticErrors:
    with pytest.raises(StaticErrors) as info:
        parse(text, filename)
    return info.value


# -- the format of one diagnostic, on the classic syntax errors ------------------------------


def test_missing_kind_in_alloc_is_reported_after_the_name():
    err = syntax_errors("memcg A\nalloc P\n")
    assert err.format() == text_of(
        "t.mcg:2:8: error: unexpected end of line",
        "    alloc P",
        "           ^",
        "    hint: expected a page kind (anon, file or shmem)",
    )


def test_keyword_used_as_a_name_says_it_is_a_keyword():
    err = syntax_errors("alloc map anon\n")
    assert err.format() == text_of(
        "t.mcg:1:7: error: unexpected 'map'",
        "    alloc map anon",
        "          ^~~",
        "    hint: `map` is a keyword and cannot be a name",
    )


@pytest.mark.parametrize(
    "line, col, word",
    [
        ("fault cache in A", 7, "cache"),
        ("fault anon in A", 7, "anon"),
        ("memcg zap", 7, "zap"),
        ("add_to_swap P as swap", 18, "swap"),
        ("thread huge {\n}", 8, "huge"),
    ],
)
def test_other_keywords_used_as_names(line, col, word):
    (d,) = syntax_errors(line + "\n").diagnostics
    assert (d.line, d.col, d.message) == (1, col, f"unexpected {word!r}")
    assert d.width == len(word)
    assert d.hint == f"`{word}` is a keyword and cannot be a name"


def test_names_that_only_contain_keywords_are_names():
    program = parse(
        text_of("alloc mapper anon", "alloc anon_page anon", "alloc Map anon",
                "alloc huge_1 anon huge", ""), "t.mcg")
    assert [s.page.text for s in program.stmts] == ["mapper", "anon_page", "Map", "huge_1"]
    assert [s.huge for s in program.stmts] == [False, False, False, True]


def test_unexpected_character():
    err = syntax_errors("alloc P@ anon\n")
    assert err.format() == text_of(
        "t.mcg:1:8: error: unexpected character '@'",
        "    alloc P@ anon",
        "           ^",
        "    hint: names are letters, digits and _; a memcg path is A/B",
    )


def test_missing_in():
    err = syntax_errors("memcg A\nfault P A\n")
    assert err.format() == text_of(
        "t.mcg:2:9: error: unexpected 'A'",
        "    fault P A",
        "            ^",
        "    hint: expected `in`",
    )


@pytest.mark.parametrize("line, col", [("cache F A", 9), ("cow P to Q A", 12)])
def test_missing_in_after_other_composites(line, col):
    (d,) = syntax_errors(line + "\n").diagnostics
    assert (d.line, d.col, d.message, d.hint) == (1, col, "unexpected 'A'", "expected `in`")


def test_missing_field_in_expect():
    (d,) = syntax_errors("expect P\n").diagnostics
    assert (d.line, d.col, d.message) == (1, 9, "unexpected end of line")
    assert d.hint == "expected a field (flags, refcount, usage, rss, … as in LANGUAGE §3.6)"


def test_one_line_blocks_are_refused():
    (d,) = syntax_errors("zap { unmap P }\n").diagnostics
    assert (d.line, d.col, d.message, d.hint) == (
        1, 7, "unexpected 'unmap'", "expected end of line")


def test_block_brace_on_its_own_line_is_refused():
    err = syntax_errors("zap\n{\n  unmap P\n}\n")
    assert where(err)[0] == (1, 4, "unexpected end of line")
    assert err.diagnostics[0].hint == "expected `{`"


def test_comments_after_braces_and_statements_are_fine():
    program = parse("zap {  # open\n  unmap P # one pte\n}  # close\n", "t.mcg")
    (z,) = program.stmts
    assert isinstance(z, ast.Zap)
    assert [type(s) for s in z.body] == [ast.Unmap]


def test_unclosed_block_at_end_of_file():
    err = syntax_errors("memcg A\nfault P in A\nzap {\n  unmap P\n")
    assert len(err.diagnostics) == 1
    (d,) = err.diagnostics
    assert "end of file" in d.message
    assert "`}`" in d.hint


def test_unclosed_block_at_end_of_file_is_an_error_somewhere():
    err = syntax_errors("memcg A\nfault P in A\nzap {\n  unmap P\n")
    assert err.diagnostics
    assert all(3 <= d.line <= 5 for d in err.diagnostics)


def test_bad_closing_line_gives_one_error():
    err = syntax_errors("zap {\n  unmap P }\n")
    assert where(err) == [(2, 11, "unexpected '}'")]


def test_brace_after_statement_hint_says_it_stands_alone():
    """Not the LALR lookahead of a name (`/`, `as`, `fail`, …): the brace is the mistake."""
    err = syntax_errors("zap {\n  unmap P }\n}\n")
    d = [d for d in err.diagnostics if d.line == 2][0]
    assert d.hint == "`}` stands alone on its line (no one-line blocks)"


def test_stray_closing_brace_hint_has_no_internal_names():
    (d,) = syntax_errors("alloc P anon\n}\n").diagnostics
    assert (d.line, d.col, d.message) == (2, 1, "unexpected '}'")
    assert "$end" not in d.hint


def test_incomplete_statement_before_a_comment():
    (d,) = syntax_errors("alloc P  # the kind is missing\n").diagnostics
    assert (d.line, d.col, d.message) == (1, 8, "unexpected end of line")


# -- several errors at once --------------------------------------------------------------------


def test_several_syntax_errors_are_reported_at_once_in_line_order():
    source = text_of(
        "model v2",
        "memcg A",
        "alloc P",
        "fault Q A",
        "zap {",
        "  alloc R fil",
        "}",
        "alloc @",
        "repeat x as i {",
        "  alloc S anon",
        "}",
        "cache F B",
        "",
    )
    err = syntax_errors(source)
    assert where(err) == [
        (1, 7, "unexpected 'v2'"),
        (3, 8, "unexpected end of line"),
        (4, 9, "unexpected 'A'"),
        (6, 11, "unexpected 'fil'"),
        (8, 7, "unexpected character '@'"),
        (9, 8, "unexpected 'x'"),
        (12, 9, "unexpected 'B'"),
    ]
    assert [d.hint for d in err.diagnostics] == [
        "expected a model (v1, 3.17 or legacy)",
        "expected a page kind (anon, file or shmem)",
        "expected `in`",
        "expected a page kind (anon, file or shmem)",
        "names are letters, digits and _; a memcg path is A/B",
        "expected a number",
        "expected `in`",
    ]
    formatted = err.format().split("\n")
    assert formatted[:4] == [
        "t.mcg:1:7: error: unexpected 'v2'",
        "    model v2",
        "          ^~",
        "    hint: expected a model (v1, 3.17 or legacy)",
    ]
    assert len(formatted) == 4 * 7
    assert str(err) == err.format()


def test_syntax_errors_inside_blocks_keep_the_block_structure():
    # the bad line is inside a block: the block still closes and later lines are checked
    err = syntax_errors("zap {\n  alloc P\n}\nfault Q A\n")
    assert where(err) == [(2, 10, "unexpected end of line"), (4, 9, "unexpected 'A'")]


# -- layout: tabs, CRLF, BOM, no final newline -------------------------------------------------


def test_tabs_count_as_one_column_and_the_caret_lines_up():
    err = syntax_errors("memcg A\n\tfault\tP\tA\n")
    assert where(err) == [(2, 10, "unexpected 'A'")]
    assert err.format() == text_of(
        "t.mcg:2:10: error: unexpected 'A'",
        "     fault P A",
        "             ^",
        "    hint: expected `in`",
    )
    shown, caret = err.format().split("\n")[1:3]
    assert shown[caret.index("^")] == "A"


def test_crlf_and_bom_file_parses_with_right_positions():
    program = parse("\ufeffmemcg A\r\nfault P in A\r\n\texpect\tP refcount 1\r\n", "t.mcg")
    memcg, fault, expect = program.stmts
    assert (memcg.line, memcg.col) == (1, 1)
    assert (memcg.path.line, memcg.path.col) == (1, 7)
    assert (fault.line, fault.col, fault.page.col, fault.memcg.col) == (2, 1, 7, 12)
    assert (expect.line, expect.col, expect.target.col) == (3, 2, 9)
    assert "\r" not in program.source and "\ufeff" not in program.source
    assert program.line(2) == "fault P in A"
    resolve(program)


def test_crlf_and_bom_error_positions():
    err = syntax_errors("\ufeffalloc P\r\nfault Q A\r\n")
    assert err.format() == text_of(
        "t.mcg:1:8: error: unexpected end of line",
        "    alloc P",
        "           ^",
        "    hint: expected a page kind (anon, file or shmem)",
        "t.mcg:2:9: error: unexpected 'A'",
        "    fault Q A",
        "            ^",
        "    hint: expected `in`",
    )


def test_bom_before_an_unexpected_character():
    (d,) = syntax_errors("\ufeff@\n").diagnostics
    assert (d.line, d.col, d.message, d.source_line) == (1, 1, "unexpected character '@'", "@")


def test_file_without_trailing_newline():
    program = parse("memcg A\nfault P in A\nzap {\n  unmap P\n}", "t.mcg")
    assert [type(s) for s in program.stmts] == [ast.Memcg, ast.Fault, ast.Zap]
    resolve(program)
    assert where(syntax_errors("memcg A\nalloc P")) == [(2, 8, "unexpected end of line")]


@pytest.mark.parametrize("text", ["", "\n", "# just a comment", "\ufeff", "\r\n\r\n  # c\r\n"])
def test_empty_files_parse(text):
    program = parse(text, "t.mcg")
    assert program.stmts == ()
    assert resolve(program).threads == []


# -- Diagnostic and StaticErrors themselves ---------------------------------------------------


def test_diagnostic_without_source_line_or_hint_is_one_line():
    d = Diagnostic("f.mcg", 3, 4, "cannot read the file: nope")
    assert d.format() == "f.mcg:3:4: error: cannot read the file: nope"


def test_diagnostic_caret_width_is_clipped_to_the_line():
    d = Diagnostic("f.mcg", 1, 5, "boom", "abcdef", width=10, hint="h")
    assert d.format() == text_of(
        "f.mcg:1:5: error: boom",
        "    abcdef",
        "        ^~",
        "    hint: h",
    )


def test_static_errors_are_sorted_by_file_line_and_column():
    err = StaticErrors([
        Diagnostic("b.mcg", 1, 1, "x"),
        Diagnostic("a.mcg", 9, 2, "y"),
        Diagnostic("a.mcg", 2, 7, "z"),
        Diagnostic("a.mcg", 2, 3, "w"),
    ])
    assert [(d.filename, d.line, d.col) for d in err.diagnostics] == [
        ("a.mcg", 2, 3), ("a.mcg", 2, 7), ("a.mcg", 9, 2), ("b.mcg", 1, 1)]


# -- reading files -------------------------------------------------------------------------------


def test_non_utf8_byte_is_a_diagnostic(tmp_path):
    path = tmp_path / "bad.mcg"
    path.write_bytes(b"alloc P anon\nfault Q in A \xff\n")
    with pytest.raises(StaticErrors) as info:
        read_source(str(path))
    assert info.value.format() == text_of(
        f"{path}:2:14: error: byte 0xff is not UTF-8",
        "    fault Q in A \ufffd",
        "                 ^",
        "    hint: a .mcg file is UTF-8 text",
    )


@pytest.mark.parametrize(
    "data, col, shown",
    [
        (b"# caf\xc3\xa9 \xff\n", 8, "# caf\u00e9 \ufffd"),
        (b"\xef\xbb\xbfalloc P \xff\n", 9, "alloc P \ufffd"),
        (b"alloc P anon\r\nfault Q in A \xfe\r\n", 14, "fault Q in A \ufffd"),
    ],
    ids=["multibyte-before", "bom", "crlf"],
)
def test_non_utf8_position_counts_characters(tmp_path, data, col, shown):
    path = tmp_path / "bad.mcg"
    path.write_bytes(data)
    with pytest.raises(StaticErrors) as info:
        read_source(str(path))
    (d,) = info.value.diagnostics
    assert (d.col, d.source_line) == (col, shown)


def test_unreadable_paths_are_diagnostics(tmp_path):
    with pytest.raises(StaticErrors) as info:
        read_source(str(tmp_path / "missing.mcg"))
    assert info.value.format() == (
        f"{tmp_path / 'missing.mcg'}:1:1: error: cannot read the file: No such file or directory")
    with pytest.raises(StaticErrors) as info:
        read_source(str(tmp_path))
    assert info.value.format() == f"{tmp_path}:1:1: error: cannot read the file: Is a directory"


def test_read_source_text_with_bom_and_crlf_parses(tmp_path):
    path = tmp_path / "w.mcg"
    path.write_bytes("\ufeffmemcg A\r\n# caf\u00e9\r\nalloc P anon\r\n".encode())
    text = read_source(str(path))
    program = parse(text, str(path))
    assert [(type(s), s.line, s.col) for s in program.stmts] == [
        (ast.Memcg, 1, 1), (ast.Alloc, 3, 1)]


# -- memcglang check -------------------------------------------------------------------------


def check(tmp_path, *names: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "memcglang", "check", *names],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    return result


CLEAN = """\
# models: v1 3.17
model 3.17
memcg A limit=64K
fault P in A
zap {
  unmap P
}
expect P freed
"""


def test_check_clean_file(tmp_path):
    (tmp_path / "good.mcg").write_text(CLEAN)
    (tmp_path / "one.mcg").write_text("show\n")
    (tmp_path / "dos.mcg").write_bytes(b"\xef\xbb\xbf" + CLEAN.replace("\n", "\r\n").encode())
    result = check(tmp_path, "good.mcg", "one.mcg", "dos.mcg")
    assert result.returncode == 0
    assert result.stdout == (
        "good.mcg: ok (5 top-level statements)\none.mcg: ok (1 top-level statement)\n"
        "dos.mcg: ok (5 top-level statements)\n")
    assert result.stderr == ""


def test_check_bad_file_reports_every_error_and_exits_2(tmp_path):
    (tmp_path / "bad.mcg").write_text("memcg A\nalloc P\nfault Q A\nalloc map anon\n")
    result = check(tmp_path, "bad.mcg")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == text_of(
        "bad.mcg:2:8: error: unexpected end of line",
        "    alloc P",
        "           ^",
        "    hint: expected a page kind (anon, file or shmem)",
        "bad.mcg:3:9: error: unexpected 'A'",
        "    fault Q A",
        "            ^",
        "    hint: expected `in`",
        "bad.mcg:4:7: error: unexpected 'map'",
        "    alloc map anon",
        "          ^~~",
        "    hint: `map` is a keyword and cannot be a name",
        "bad.mcg: 3 errors",
        "",
    )


def test_check_reports_name_errors_too(tmp_path):
    (tmp_path / "names.mcg").write_text("memcg Alpha\nfault P in Alpah\nunmap A\nshow\n")
    result = check(tmp_path, "names.mcg")
    assert result.returncode == 2
    assert result.stderr == text_of(
        "names.mcg:2:12: error: unknown memcg Alpah",
        "    fault P in Alpah",
        "               ^~~~~",
        "    hint: did you mean Alpha?",
        "names.mcg:3:7: error: unknown page A",
        "    unmap A",
        "          ^",
        "names.mcg: 2 errors",
        "",
    )


def test_check_mixed_files_exits_2_and_still_checks_the_good_one(tmp_path):
    (tmp_path / "good.mcg").write_text(CLEAN)
    (tmp_path / "bad.mcg").write_text("alloc P\n")
    result = check(tmp_path, "bad.mcg", "good.mcg")
    assert result.returncode == 2
    assert result.stdout == "good.mcg: ok (5 top-level statements)\n"
    assert result.stderr.startswith("bad.mcg:1:8: error: unexpected end of line\n")
    assert result.stderr.endswith("bad.mcg: 1 error\n")


def test_check_missing_file_and_directory(tmp_path):
    (tmp_path / "dir.mcg").mkdir()
    result = check(tmp_path, "missing.mcg", "dir.mcg")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == text_of(
        "missing.mcg:1:1: error: cannot read the file: No such file or directory",
        "missing.mcg: 1 error",
        "dir.mcg:1:1: error: cannot read the file: Is a directory",
        "dir.mcg: 1 error",
        "",
    )


def test_check_non_utf8_file(tmp_path):
    (tmp_path / "latin1.mcg").write_bytes(b"memcg A\n# caf\xe9\n")
    result = check(tmp_path, "latin1.mcg")
    assert result.returncode == 2
    assert result.stderr == text_of(
        "latin1.mcg:2:6: error: byte 0xe9 is not UTF-8",
        "    # caf\ufffd",
        "         ^",
        "    hint: a .mcg file is UTF-8 text",
        "latin1.mcg: 1 error",
        "",
    )


def test_check_without_files_is_a_usage_error(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 2
    assert "the following arguments are required: FILE" in result.stderr


def test_check_never_shows_a_traceback_on_garbage(tmp_path):
    rng = random.Random(7)
    names = []
    for i in range(40):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
        (tmp_path / f"g{i}.mcg").write_bytes(data)
        names.append(f"g{i}.mcg")
    result = check(tmp_path, *names)
    assert result.returncode in (0, 2)
    reported = result.stdout + result.stderr
    for name in names:
        assert re.search(rf"^{re.escape(name)}: (ok|\d+ errors?)", reported, re.M), name


# -- fuzz: nothing but StaticErrors ---------------------------------------------------------------


def front_end(text: str) -> None:
    """Parse and resolve; only StaticErrors may escape, and it must be well formed."""
    try:
        resolve(parse(text, "fuzz.mcg"))
    except StaticErrors as e:
        assert e.diagnostics
        n_lines = text.count("\n") + text.count("\r") + 2
        for d in e.diagnostics:
            assert d.filename == "fuzz.mcg"
            assert 1 <= d.line <= n_lines, d
            assert d.col >= 1, d
            assert d.message
        assert "Traceback" not in e.format()


def test_fuzz_random_bytes(tmp_path):
    rng = random.Random(20140430)
    path = tmp_path / "fuzz.mcg"
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        front_end(data.decode("latin-1"))
        path.write_bytes(data)
        try:
            text = read_source(str(path))
        except StaticErrors as e:
            assert len(e.diagnostics) == 1
            assert e.diagnostics[0].message.endswith("is not UTF-8")
            continue
        front_end(text)


def _vocabulary() -> list[str]:
    grammar = grammar_text()
    keywords = set(re.findall(r'"([a-z_]+)"', grammar))
    reserved = re.search(r"NAME: /\(\?!\(\?:([^)]*)\)", grammar).group(1)
    keywords |= set(reserved.split("|"))
    assert {"alloc", "expect", "memsw_limit", "EBUSY", "v1", "swapcache"} <= keywords
    names = ["P", "Q", "E", "A", "B", "A/B", "root", "root/A", "P{i}", "P{i+1}", "Q{j-2}",
             "H.1", "H.{i}", "H.512", "cpu0", "i", "j", "_x9"]
    numbers = ["0", "1", "16", "-1", "64K", "2M", "10K", "3.17", "1000001", "4k", "max"]
    punctuation = ["{", "}", ":", "|", "=", ",", "/", "#", ".", "@", "\n", "\n", "\n", "{\n",
                   "}\n", "\t", "\r\n", "\ufeff", " "]
    return sorted(keywords) + names + numbers + punctuation


def test_fuzz_token_soup():
    rng = random.Random(1957)
    vocabulary = _vocabulary()
    for _ in range(200):
        front_end(" ".join(rng.choice(vocabulary) for _ in range(rng.randrange(0, 60))))


TOUR = """\
model v1
swapaccount on
memcg A limit=64K memsw_limit=max
memcg A/B limit=16
fault P in A
cache F in A/B
fault H in A huge
split H
expect H.1 flags USED|MEM|MEMSW memcg A refcount 1
reclaim P as E
swapin E as Q in A reuse
repeat 3 as i {
  fault X{i} in A
  zap {
    unmap X{i}
  }
  expect X{i} freed
}
thread cpu0 {
  move Q to A/B
}
thread cpu1 {
  expect bug: truncate F
}
expect Q memcg A/B
expect cost res_counter 4 pc_lock 0 batches 1
show E
"""


def test_tour_used_by_the_mutation_fuzz_is_clean():
    assert len(parse(TOUR, "fuzz.mcg").stmts) == 17
    resolve(parse(TOUR, "fuzz.mcg"))


def test_fuzz_mutated_scenarios():
    """Mutations of a clean file reach deep into the resolver, not only the parser."""
    rng = random.Random(31)
    lines = TOUR.split("\n")
    tokens = re.findall(r"\S+", TOUR) + ["{i}", "P{j}", "thread T {", "}", "zap {", "root/A"]
    for _ in range(200):
        mutated = list(lines)
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(len(mutated))
            op = rng.randrange(4)
            if op == 0:
                del mutated[i]
            elif op == 1:
                mutated.insert(i, rng.choice(lines))
            else:
                words = mutated[i].split(" ")
                j = rng.randrange(len(words) + 1)
                if op == 2 or j == len(words):
                    words.insert(j, rng.choice(tokens))
                else:
                    words[j] = rng.choice(tokens)
                mutated[i] = " ".join(words)
        front_end("\n".join(mutated))
