"""Text -> AST. The only module that imports lark.

The grammar (`grammar/memcg.lark`) is LALR(1) with the contextual lexer; the AST is built
during the parse by a Transformer (no parse tree, no propagate_positions: positions come
from the tokens). A syntax error is reported as a `Diagnostic`; the parser then blanks the
line and parses again, so every syntax error of a file is reported at once.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from memcglang.grammar import GRAMMAR_DIR
from memcglang.lang import ast
from memcglang.lang.diagnostics import Diagnostic, StaticErrors

GRAMMAR_FILE = GRAMMAR_DIR / "memcg.lark"
MAX_SYNTAX_ERRORS = 50

# names of terminals that are keywords, as the user reads them in an "expected" list
PUNCTUATION = {"_NL": "end of line", "$END": "end of file", "LBRACE": "`{`", "RBRACE": "`}`",
               "COLON": "`:`", "SLASH": "`/`", "VBAR": "`|`", "EQUAL": "`=`", "COMMA": "`,`"}


def normalise(text: str) -> str:
    """Drop a leading BOM, turn CRLF and CR into LF, end with a newline."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


class ToAst(Transformer):
    """Build AST nodes straight from the LALR reductions."""

    # -- names and values -------------------------------------------------------------------
    def name(self, c):
        tok = c[0]
        return ast.Name(str(tok), tok.line, tok.column)

    def path(self, c):
        return ast.Path(tuple(c))

    def setting(self, c):
        key, value = c
        return ast.Setting(str(key), str(value), key.line, key.column)

    def field(self, c):
        return c[0]

    def check(self, c):
        if len(c) == 1:  # freed
            tok = c[0]
            return ast.Check(str(tok), None, tok.line, tok.column)
        tok, value = c
        return ast.Check(str(tok), value, tok.line, tok.column)

    def number(self, c):
        tok = c[0]
        return ast.Value("number", str(tok), tok.line, tok.column)

    def word(self, c):
        tok = c[0]
        return ast.Value("word", str(tok), tok.line, tok.column)

    def flagset(self, c):
        parts = [p.text if isinstance(p, ast.Name) else str(p) for p in c]
        first = c[0]
        line, col = (first.line, first.col) if isinstance(first, ast.Name) else (
            first.line, first.column)
        return ast.Value("flagset", "|".join(parts), line, col)

    def value(self, c):
        p = c[0]
        return ast.Value("path", p.text, p.line, p.col, p)

    def models(self, c):
        return tuple(str(t) for t in c)

    def COST(self, tok):
        return ast.Cost(tok.line, tok.column)

    # -- statements ---------------------------------------------------------------------------
    @staticmethod
    def _pos(verb: Token) -> dict:
        return {"line": verb.line, "col": verb.column}

    @staticmethod
    def _flag(c, type_: str) -> bool:
        return any(isinstance(t, Token) and t.type == type_ for t in c)

    def model(self, c):
        return ast.Model(model=str(c[1]), **self._pos(c[0]))

    def swapaccount(self, c):
        return ast.Swapaccount(on=str(c[1]) == "on", **self._pos(c[0]))

    def memcg(self, c):
        return ast.Memcg(path=c[1], settings=tuple(c[2:]), **self._pos(c[0]))

    def set(self, c):
        return ast.Set(path=c[1], settings=tuple(c[2:]), **self._pos(c[0]))

    def alloc(self, c):
        return ast.Alloc(page=c[1], kind=str(c[2]), huge=self._flag(c, "HUGE"), **self._pos(c[0]))

    def try_charge(self, c):
        return ast.TryCharge(page=c[1], memcg=c[2], **self._pos(c[0]))

    def commit(self, c):
        return ast.Commit(page=c[1], lrucare=self._flag(c, "LRUCARE"), **self._pos(c[0]))

    def charge(self, c):
        return ast.Charge(
            page=c[1], memcg=c[2], lrucare=self._flag(c, "LRUCARE"), **self._pos(c[0])
        )

    def add_to_swap(self, c):
        return ast.AddToSwap(page=c[1], entry=c[2], **self._pos(c[0]))

    def readahead(self, c):
        return ast.Readahead(entry=c[1], page=c[2], **self._pos(c[0]))

    def free_swap(self, c):
        return ast.FreeSwap(entry=c[1], **self._pos(c[0]))

    def release(self, c):
        return ast.Release(pages=tuple(c[1:]), **self._pos(c[0]))

    def fault(self, c):
        return ast.Fault(page=c[1], memcg=c[2], huge=self._flag(c, "HUGE"), **self._pos(c[0]))

    def cache(self, c):
        return ast.Cache(page=c[1], memcg=c[2], **self._pos(c[0]))

    def cow(self, c):
        return ast.Cow(old=c[1], new=c[2], memcg=c[3], **self._pos(c[0]))

    def swapin(self, c):
        memcg = c[3] if len(c) > 3 and isinstance(c[3], ast.Path) else None
        return ast.Swapin(
            entry=c[1], page=c[2], memcg=memcg, reuse=self._flag(c, "REUSE"), **self._pos(c[0])
        )

    def reclaim(self, c):
        return ast.Reclaim(page=c[1], entry=c[2] if len(c) > 2 else None, **self._pos(c[0]))

    def migrate(self, c):
        return ast.Migrate(old=c[1], new=c[2], fail=self._flag(c, "FAIL"), **self._pos(c[0]))

    def replace_cache(self, c):
        return ast.ReplaceCache(old=c[1], new=c[2], **self._pos(c[0]))

    def move(self, c):
        return ast.Move(target=c[1], memcg=c[2], **self._pos(c[0]))

    def expect(self, c):
        return ast.Expect(target=c[1], checks=tuple(c[2:]), **self._pos(c[0]))

    def expect_outcome(self, c):
        if c[1].type == "ERRNO":  # expect error ERRNO: stmt ("error" is filtered out)
            return ast.ExpectOutcome(
                outcome="error", errno=str(c[1]), stmt=c[2], **self._pos(c[0])
            )
        return ast.ExpectOutcome(outcome=str(c[1]), errno=None, stmt=c[2], **self._pos(c[0]))

    def show(self, c):
        return ast.Show(target=c[1] if len(c) > 1 else None, **self._pos(c[0]))

    def only(self, c):
        return ast.Only(models=c[1], stmt=c[2], **self._pos(c[0]))

    def only_block(self, c):
        return ast.OnlyBlock(models=c[1], body=tuple(c[2:]), **self._pos(c[0]))

    def zap(self, c):
        return ast.Zap(body=tuple(c[1:]), **self._pos(c[0]))

    def batch(self, c):
        return ast.Batch(body=tuple(c[1:]), **self._pos(c[0]))

    def repeat(self, c):
        count = str(c[1])
        # beyond 18 digits no count is in range (and int() of thousands of digits refuses)
        n = int(count) if count.lstrip("-").isdigit() and len(count) <= 18 else -1
        return ast.Repeat(count=n, count_text=count, var=c[2], body=tuple(c[3:]), **self._pos(c[0]))

    def thread(self, c):
        return ast.Thread(name=c[1], body=tuple(c[2:]), **self._pos(c[0]))

    def start(self, c):
        return tuple(c)


def _page_stmt(cls):
    def build(self, c):
        return cls(page=c[1], **self._pos(c[0]))

    return build


for _rule, _cls in (
    ("cancel", ast.Cancel), ("map", ast.Map), ("unmap", ast.Unmap),
    ("try_to_unmap", ast.TryToUnmap), ("get", ast.Get), ("put", ast.Put), ("lock", ast.Lock),
    ("unlock", ast.Unlock), ("lru_add", ast.LruAdd), ("isolate", ast.Isolate),
    ("putback", ast.Putback), ("add_to_cache", ast.AddToCache),
    ("delete_from_cache", ast.DeleteFromCache),
    ("delete_from_swap_cache", ast.DeleteFromSwapCache), ("swapout", ast.Swapout),
    ("truncate", ast.Truncate), ("split", ast.Split),
):
    setattr(ToAst, _rule, _page_stmt(_cls))


@lru_cache(maxsize=1)
def grammar_text() -> str:
    return GRAMMAR_FILE.read_text(encoding="utf-8")


BUILT_FILE = GRAMMAR_DIR / "memcg.lark.lalr"
OPTIONS = {"parser": "lalr", "lexer": "contextual", "maybe_placeholders": False}


def built_header() -> dict:
    """What the parser shipped with the package must have been built from."""
    import lark

    return {
        "grammar_sha256": hashlib.sha256(grammar_text().encode("utf-8")).hexdigest(),
        "lark": lark.__version__,
    }


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The LALR parser with the AST transformer built in: the one built with the package
    (grammar/build.py) when it matches this grammar and this Lark, else built now."""
    try:
        with BUILT_FILE.open("rb") as f:
            head = json.loads(f.readline())
            if head == built_header():
                # Lark.load with options: Lark's own cache path uses this to add a transformer
                return Lark.__new__(Lark)._load(f, transformer=ToAst())
    except (OSError, ValueError):
        pass
    return Lark(grammar_text(), transformer=ToAst(), **OPTIONS)


def parse(text: str, filename: str = "<input>") -> ast.Program:
    """Parse a whole file; raise StaticErrors with every syntax error in it."""
    program, errors = parse_recovering(text, filename)
    if errors:
        raise StaticErrors(errors)
    return program


def parse_recovering(text: str, filename: str = "<input>"):
    """(program, syntax errors): the program is what parses once the bad lines are dropped
    (None if that fails too), so the resolver can report name errors beside syntax errors."""
    source = normalise(text)
    lines = source.split("\n")
    parser = lark_parser()
    errors: list[Diagnostic] = []
    attempt = source
    while True:
        try:
            stmts = parser.parse(attempt)
        except UnexpectedInput as e:
            diag = _diagnostic(e, filename, lines)
            errors.append(diag)
            if len(errors) >= MAX_SYNTAX_ERRORS or diag.line > len(lines):
                return None, _dedupe(errors)
            attempt = _blank_line(attempt, diag.line)
            continue
        return ast.Program(stmts, filename, source), _dedupe(errors)


def _blank_line(text: str, number: int) -> str:
    """Drop a bad line for the next attempt, keeping block structure (`{` lines stay openers)."""
    lines = text.split("\n")
    if 0 < number <= len(lines):
        bad = _code(lines[number - 1]).rstrip()
        lines[number - 1] = "zap {" if bad.endswith("{") else "}" if bad.endswith("}") else ""
    return "\n".join(lines)


def _dedupe(errors: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for d in errors:
        if d.line not in seen:
            seen.add(d.line)
            out.append(d)
    return out


# terminals that stand for several words, as the user reads them
GROUPS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "MODEL_NAME": "a model (v1, 3.17 or legacy)",
    "KIND": "a page kind (anon, file or shmem)",
    "ONOFF": "on or off",
    "OUTCOME": "enomem, bug or violation",
    "ERRNO": "an errno (ENOMEM, EBUSY, EINVAL or EAGAIN)",
    "WORD": "none, yes or no",
    "PGFLAG": "a page flag (lru, locked, swapcache)",
}
FIELD_TERMINALS = {"FIELD", "CACHE", "MEMCG", "PAGE", "HUGE", "LIMIT", "MEMSW_LIMIT", "FREED"}


def _expected(e: UnexpectedToken) -> list[str]:
    names = []
    expected = set(e.expected)
    if FIELD_TERMINALS <= expected:
        expected -= FIELD_TERMINALS
        names.append("a field (flags, refcount, usage, rss, … as in LANGUAGE §3.6)")
    for t in sorted(expected):
        if t in PUNCTUATION:
            names.append(PUNCTUATION[t])
        elif t in GROUPS:
            names.append(GROUPS[t])
        else:
            names.append(f"`{t.lower()}`")
    return sorted(set(names))


KEYWORD_TYPES_NOT_NAMES = {"NAME", "NUMBER", "_NL", "$END"}


def _diagnostic(e: UnexpectedInput, filename: str, lines: list[str]) -> Diagnostic:
    line = getattr(e, "line", None) or len(lines)
    col = getattr(e, "column", None) or 1
    if line < 1:
        line, col = len(lines), 1
    source_line = lines[line - 1] if line <= len(lines) else ""
    if isinstance(e, UnexpectedCharacters):
        ch = source_line[col - 1 : col] or "?"
        return Diagnostic(filename, line, col, f"unexpected character {ch!r}", source_line, 1,
                          "names are letters, digits and _; a memcg path is A/B")
    if isinstance(e, UnexpectedEOF):
        return Diagnostic(filename, line, col, "unexpected end of file", source_line, 1,
                          "a block opened with `{` needs a `}` on a line of its own")
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    if tok.type == "$END":
        last = max((i for i, text in enumerate(lines) if _code(text).strip()), default=0)
        return Diagnostic(filename, last + 1, len(_code(lines[last]).rstrip()) + 1,
                          "unexpected end of file", lines[last], 1,
                          "a block opened with `{` needs a `}` on a line of its own")
    expected = _expected(e)
    if tok.type == "_NL":
        message = "unexpected end of line"
        width = 1
        col = len(_code(source_line).rstrip()) + 1
    else:
        message = f"unexpected {str(tok)!r}"
        width = len(str(tok))
    hint = None
    if tok.type == "RBRACE":
        hint = "`}` stands alone on its line (no one-line blocks)"
    elif tok.type == "LBRACE":
        hint = "`{` ends the line that opens a block"
    elif "NAME" in e.expected and tok.type not in KEYWORD_TYPES_NOT_NAMES and str(
            tok).isidentifier():
        hint = f"`{tok}` is a keyword and cannot be a name"
    elif expected:
        hint = "expected " + _join(expected)
    return Diagnostic(filename, line, col, message, source_line, width, hint)


def _code(line: str) -> str:
    """A line without its comment."""
    i = line.find("#")
    return line if i < 0 else line[:i]


def _join(items: list[str]) -> str:
    if len(items) > 8:
        return ", ".join(items[:8]) + ", …"
    return " or ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " or " + items[-1]
