"""The grammar: strict LALR build, reserved keywords, LANGUAGE.md §8, the parser shipped with
the package, positions from tokens."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from lark import Lark

from memcglang.lang import ast
from memcglang.lang.parser import (
    BUILT_FILE,
    OPTIONS,
    ToAst,
    built_header,
    grammar_text,
    lark_parser,
    parse,
)

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "LANGUAGE.md"


def section8() -> str:
    text = SPEC.read_text(encoding="utf-8")
    return re.search(r"```mcg\n(.*?)```", text[text.index("## 8."):], re.S).group(1)


def test_grammar_builds_with_strict_conflict_checking():
    Lark(grammar_text(), strict=True, **OPTIONS)


def test_every_keyword_of_the_grammar_is_reserved_from_names():
    grammar = grammar_text()
    name_rule = re.search(r"^NAME: /\(\?!\(\?:([^)]*)\)", grammar, re.M).group(1)
    reserved = set(name_rule.split("|"))
    words = set(re.findall(r'"([a-z_][a-z0-9_]*)"', grammar))
    for alternation in re.findall(r"^[A-Z_]+: /\(\?:([a-z0-9_|.\\]+)\)", grammar, re.M):
        words |= {w for w in alternation.replace("\\", "").split("|") if w[0].isalpha()}
    assert words - reserved == set()
    assert reserved - words <= {"ENOMEM", "EBUSY", "EINVAL", "EAGAIN"}


def test_section_8_parses_as_a_file():
    program = parse(section8(), "LANGUAGE.md")
    assert len(program.stmts) == 69
    assert isinstance(program.stmts[0], ast.Model) and program.stmts[0].model == "3.17"


@pytest.mark.parametrize("line", [ln for ln in section8().splitlines() if ln.strip()])
def test_each_simple_line_of_section_8_parses_on_its_own(line):
    if line.rstrip().endswith("{") or line.strip() == "}" or line.startswith("  "):
        pytest.skip("a block line parses with its block (the whole-file test)")
    (stmt,) = parse(line).stmts
    assert stmt.line == 1 and stmt.col == 1


def test_the_parser_shipped_with_the_package_matches_the_grammar():
    assert BUILT_FILE.exists(), "the package build did not build the parser (setup.py)"
    with BUILT_FILE.open("rb") as f:
        head = json.loads(f.readline())
        shipped = Lark.__new__(Lark)._load(io.BytesIO(f.read()), transformer=ToAst())
    assert head == built_header()
    fresh = Lark(grammar_text(), transformer=ToAst(), **OPTIONS)
    text = section8()
    assert shipped.parse(text) == fresh.parse(text)


def test_a_stale_built_parser_is_not_used(tmp_path, monkeypatch):
    """A header that does not match the grammar makes the parser build from the grammar."""
    import memcglang.lang.parser as parser

    stale = tmp_path / "memcg.lark.lalr"
    stale.write_bytes(b'{"grammar_sha256": "0", "lark": "0"}\nnot a parser')
    monkeypatch.setattr(parser, "BUILT_FILE", stale)
    parser.lark_parser.cache_clear()
    try:
        assert parser.lark_parser().parse("map P\n")[0] == ast.Map(
            page=ast.Name("P", 1, 5), line=1, col=1
        )
    finally:
        parser.lark_parser.cache_clear()
        monkeypatch.undo()
        parser.lark_parser.cache_clear()
    assert lark_parser() is parser.lark_parser()


def test_positions_come_from_the_tokens():
    program = parse("model v1\n\n  # comment\nzap {\n\tunmap   P{i+1}\n}\nexpect A/B usage 12K\n")
    model, zap, expect = program.stmts
    assert (model.line, model.col) == (1, 1)
    assert (zap.line, zap.col) == (4, 1)
    (unmap,) = zap.body
    assert (unmap.line, unmap.col) == (5, 2)
    assert unmap.page == ast.Name("P{i+1}", 5, 10)
    assert expect.target.text == "A/B" and (expect.target.line, expect.target.col) == (7, 8)
    (check,) = expect.checks
    assert (check.field, check.value.kind, check.value.text) == ("usage", "number", "12K")


def test_bom_crlf_and_a_missing_final_newline_are_accepted():
    program = parse("\ufeffmodel 3.17\r\nmemcg A\r\nfault P in A")
    assert [type(s).__name__ for s in program.stmts] == ["Model", "Memcg", "Fault"]
    assert program.stmts[2].memcg.col == 12


def test_names_fill_their_templates():
    name = ast.Name("P{i}x{j-1}.{k+2}", 1, 1)
    assert name.variables() == ["i", "j", "k"]
    assert name.fill({"i": 3, "j": 0, "k": 1}) == "P3x-1.3"
    assert ast.Name("P", 1, 1).fill({}) == "P"


def test_keywords_are_not_split_out_of_longer_words():
    """`memsw` is a field, but `memsw_limit` is one word; `mapping` is a name, not `map`."""
    (expect,) = parse("expect A memsw_limit max memsw 3\n").stmts
    assert [c.field for c in expect.checks] == ["memsw_limit", "memsw"]
    (alloc,) = parse("alloc mapping anon\n").stmts
    assert alloc.page.text == "mapping"
