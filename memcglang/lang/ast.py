"""The AST of a .mcg file: frozen attrs classes, each carrying its source position.

Statement classes are named after their grammar rule (`replace_cache` -> `ReplaceCache`);
`line` and `col` are 1-based and point at the statement's verb. A `Name` may hold templates
(`P{i}`, `P{i+1}`) that a `repeat` fills in; a `Path` is a memcg path (`A/B`) or, where a
page or swap entry is meant, a single name.
"""

from __future__ import annotations

import re

import attrs

TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:([+-][0-9]+))?\}")
_PARTS: dict[str, tuple] = {}  # a templated name's literals and (variable, offset) pairs


def _split(text: str) -> tuple:
    parts: list = []
    last = 0
    for m in TEMPLATE.finditer(text):
        parts.append(text[last : m.start()])
        parts.append((m.group(1), int(m.group(2) or 0)))
        last = m.end()
    parts.append(text[last:])
    return tuple(p for p in parts if p != "")


@attrs.frozen
class Name:
    """A name as written: `P`, `P.1`, `P{i+1}`."""

    text: str
    line: int
    col: int

    @property
    def end_col(self) -> int:
        return self.col + len(self.text)

    @property
    def templated(self) -> bool:
        return "{" in self.text

    def variables(self) -> list[str]:
        """The repeat variables the name refers to."""
        return [m.group(1) for m in TEMPLATE.finditer(self.text)]

    def fill(self, env: dict[str, int]) -> str:
        """The name with each `{i}`, `{i+K}`, `{i-K}` replaced by its value in `env`."""
        text = self.text
        if "{" not in text:
            return text
        parts = _PARTS.get(text)
        if parts is None:
            parts = _PARTS[text] = _split(text)
        return "".join(p if p.__class__ is str else str(env[p[0]] + p[1]) for p in parts)


@attrs.frozen
class Path:
    """A memcg path `A/B` (`root/A` is `A`), or a single name."""

    names: tuple[Name, ...]

    @property
    def line(self) -> int:
        return self.names[0].line

    @property
    def col(self) -> int:
        return self.names[0].col

    @property
    def end_col(self) -> int:
        return self.names[-1].end_col

    @property
    def text(self) -> str:
        return "/".join(n.text for n in self.names)

    @property
    def single(self) -> Name | None:
        return self.names[0] if len(self.names) == 1 else None


@attrs.frozen
class Cost:
    """The `cost` target of expect and show."""

    line: int
    col: int
    text = "cost"


@attrs.frozen
class Setting:
    """`limit=SIZE`, `memsw_limit=SIZE` or `hierarchy=on|off` as written."""

    key: str
    value: str
    line: int
    col: int


@attrs.frozen
class Value:
    """An expected value as written; `kind` is number, flagset, path or word."""

    kind: str
    text: str
    line: int
    col: int
    path: Path | None = None  # for kind "path"


@attrs.frozen
class Check:
    """One `FIELD VALUE` pair of an expect (`freed` has no value)."""

    field: str
    value: Value | None
    line: int
    col: int


@attrs.frozen(kw_only=True)
class Stmt:
    line: int
    col: int


@attrs.frozen(kw_only=True)
class Model(Stmt):
    model: str


@attrs.frozen(kw_only=True)
class Swapaccount(Stmt):
    on: bool


@attrs.frozen(kw_only=True)
class Memcg(Stmt):
    path: Path
    settings: tuple[Setting, ...]


@attrs.frozen(kw_only=True)
class Set(Stmt):
    path: Path
    settings: tuple[Setting, ...]


@attrs.frozen(kw_only=True)
class Alloc(Stmt):
    page: Name
    kind: str
    huge: bool


@attrs.frozen(kw_only=True)
class TryCharge(Stmt):
    page: Name
    memcg: Path


@attrs.frozen(kw_only=True)
class Commit(Stmt):
    page: Name
    lrucare: bool


@attrs.frozen(kw_only=True)
class Charge(Stmt):
    page: Name
    memcg: Path
    lrucare: bool


@attrs.frozen(kw_only=True)
class PageStmt(Stmt):
    """A primitive that takes one page: cancel, map, unmap, get, put, lock, ..."""

    page: Name


class Cancel(PageStmt): ...
class Map(PageStmt): ...
class Unmap(PageStmt): ...
class TryToUnmap(PageStmt): ...
class Get(PageStmt): ...
class Put(PageStmt): ...
class Lock(PageStmt): ...
class Unlock(PageStmt): ...
class LruAdd(PageStmt): ...
class Isolate(PageStmt): ...
class Putback(PageStmt): ...
class AddToCache(PageStmt): ...
class DeleteFromCache(PageStmt): ...
class DeleteFromSwapCache(PageStmt): ...
class Swapout(PageStmt): ...
class Truncate(PageStmt): ...
class Split(PageStmt): ...


@attrs.frozen(kw_only=True)
class AddToSwap(Stmt):
    page: Name
    entry: Name


@attrs.frozen(kw_only=True)
class Readahead(Stmt):
    entry: Name
    page: Name


@attrs.frozen(kw_only=True)
class FreeSwap(Stmt):
    entry: Name


@attrs.frozen(kw_only=True)
class Release(Stmt):
    pages: tuple[Name, ...]


@attrs.frozen(kw_only=True)
class Fault(Stmt):
    page: Name
    memcg: Path
    huge: bool


@attrs.frozen(kw_only=True)
class Cache(Stmt):
    page: Name
    memcg: Path


@attrs.frozen(kw_only=True)
class Cow(Stmt):
    old: Name
    new: Name
    memcg: Path


@attrs.frozen(kw_only=True)
class Swapin(Stmt):
    entry: Name
    page: Name
    memcg: Path | None
    reuse: bool


@attrs.frozen(kw_only=True)
class Reclaim(Stmt):
    page: Name
    entry: Name | None


@attrs.frozen(kw_only=True)
class Migrate(Stmt):
    old: Name
    new: Name
    fail: bool


@attrs.frozen(kw_only=True)
class ReplaceCache(Stmt):
    old: Name
    new: Name


@attrs.frozen(kw_only=True)
class Move(Stmt):
    target: Name
    memcg: Path


@attrs.frozen(kw_only=True)
class Expect(Stmt):
    target: Path | Cost
    checks: tuple[Check, ...]


@attrs.frozen(kw_only=True)
class ExpectOutcome(Stmt):
    """`expect enomem|bug|violation: STMT` or `expect error ERRNO: STMT`."""

    outcome: str  # "enomem", "bug", "violation" or "error"
    errno: str | None
    stmt: Stmt


@attrs.frozen(kw_only=True)
class Show(Stmt):
    target: Path | Cost | None


@attrs.frozen(kw_only=True)
class Only(Stmt):
    models: tuple[str, ...]
    stmt: Stmt


@attrs.frozen(kw_only=True)
class OnlyBlock(Stmt):
    models: tuple[str, ...]
    body: tuple[Stmt, ...]


@attrs.frozen(kw_only=True)
class Zap(Stmt):
    body: tuple[Stmt, ...]


@attrs.frozen(kw_only=True)
class Batch(Stmt):
    body: tuple[Stmt, ...]


@attrs.frozen(kw_only=True)
class Repeat(Stmt):
    count: int
    count_text: str
    var: Name
    body: tuple[Stmt, ...]


@attrs.frozen(kw_only=True)
class Thread(Stmt):
    name: Name
    body: tuple[Stmt, ...]


@attrs.frozen
class Program:
    """A parsed file: its statements, its name and its normalised text (for diagnostics)."""

    stmts: tuple[Stmt, ...]
    filename: str
    source: str
    lines: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.source.split("\n")))

    def line(self, number: int) -> str:
        lines = self.lines
        return lines[number - 1] if 0 < number <= len(lines) else ""


BLOCKS = (OnlyBlock, Zap, Batch, Repeat, Thread)
