"""Run one scenario under two models in lockstep and say, statement by statement, where the
kernels differ (`memcglang diff FILE --models A,B`, LANGUAGE §6, docs/diff.md).

The two interpreters advance together, one record each, paired by position (line and repeat
variables). A statement differs when its outcome, its kernel calls, changes or messages differ,
when one model skipped it (`only`) or never reached it (its run stopped), or when the set of
state fields that differ between the two machines changes after it. No I/O here: the command
line prints `plain_lines` or `json_lines`, or hands `fold`'s items to the rich view.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator

import attrs

from memcglang.engine.state import Page, SwapEntry
from memcglang.lang import ast
from memcglang.lang.interpreter import STOPS, Interpreter, Record
from memcglang.render import plain

FORMAT_VERSION = 1
COST_FIELDS = ("res_counter", "pc_lock", "batches")
# what a side's trace says went wrong, in the order a tag names them
PROBLEMS = (("bug", "kernel BUG"), ("violation", "invariant violated"),
            ("scenario error", "scenario error"), ("deadlock", "deadlock"))


@attrs.frozen
class Side:
    """One model's run of a statement: its outcome and its trace lines as `run` prints them
    below the statement line (kernel calls, changes, messages, `show` output)."""

    outcome: str
    text: str
    lines: tuple[str, ...]
    problems: tuple[str, ...]  # bug, violation, error, scenario error, failed expect


@attrs.frozen
class Line:
    """A line shown for one side of a differing statement; `context` marks the kernel call a
    differing change belongs to, shown although it is the same under both."""

    text: str
    context: bool = False


@attrs.frozen
class Statement:
    """One statement under both models. `a` or `b` is None when that model did not run it;
    `missing` then says why. `state` holds the state fields whose difference is new or
    changed after it, as (label, value under A, value under B); `equal_again` the labels that
    differed before it and no longer do."""

    pos: str  # FILE:LINE[VARS], as the trace writes it
    loc: str  # LINE[VARS]
    line: int
    text: str
    a: Side | None
    b: Side | None
    missing: str
    same_trace: bool
    differs: bool  # shown: the traces differ, or the set of differing state fields changed
    state: tuple[tuple[str, str, str], ...]
    equal_again: tuple[str, ...]
    shown_a: tuple[Line, ...]
    shown_b: tuple[Line, ...]
    tags: tuple[str, ...]  # e.g. "bug under v1 only"


@attrs.frozen
class Folded:
    """A run of consecutive statements that are the same under both models."""

    first: Statement
    last: Statement
    count: int

    @property
    def where(self) -> str:
        """`FILE:3-17` (or `FILE:22[i=0]-22[i=7]`), the run's first and last position."""
        if self.first.pos == self.last.pos:
            return self.first.pos
        return f"{self.first.pos}-{self.last.loc}"


@attrs.frozen
class Summary:
    """The end: each memcg's counters and statistics and the cost counters under both models
    (label, A, B), and each run's verdict line."""

    rows: tuple[tuple[str, str, str], ...]
    verdicts: tuple[str, str]
    failed: tuple[bool, bool]


class _Run:
    """One model's interpreter and its running totals."""

    def __init__(self, program: ast.Program, resolution, model: str):
        self.model = model
        self.interp = Interpreter(program, resolution, model)
        self.records = self.interp.run()
        self.tally = plain.Tally()
        self.last: Record | None = None  # the last record: where a stopped run stopped

    @property
    def engine(self):
        return self.interp.engine

    def next(self) -> Record | None:
        rec = next(self.records, None)
        if rec is not None:
            self.tally.add(rec)
            self.last = rec
        return rec

    def side(self, rec: Record) -> Side:
        """The record as the trace prints it (first two spaces of indentation dropped); read
        before this interpreter advances, so `show` sees the state after the statement."""
        lines = plain.record_output(rec, self.engine)[1:]
        return Side(rec.outcome, rec.text, tuple(line[2:] for line in lines), _problems(rec))

    def stopped(self) -> str:
        """Why this run has no more statements, for the other's that follow."""
        last = self.last
        if last is not None and last.outcome in STOPS:
            return f"not run: the run under {self.model} stopped at {last.pos}"
        return f"not run: the run under {self.model} ended"

    def verdict(self) -> str:
        return self.tally.verdict(self.interp.statements, self.interp.failed)


def _problems(rec: Record) -> tuple[str, ...]:
    found = []
    for kind, prefix in PROBLEMS:
        if any(m.startswith(prefix) for m in rec.messages):
            found.append(kind)
    if rec.outcome == "error" or any(m.startswith("-E") for m in rec.messages):
        found.append("error")
    if rec.expects_failed:
        found.append("failed expect")
    return tuple(found)


class _Span:
    """The lines and repeat variables of a statement one model skipped by `only`: the other
    model's records inside it ran under that model only."""

    def __init__(self, rec: Record, last: int):
        self.first = rec.line
        self.last = last
        self.env = rec.env.items()

    def holds(self, rec: Record) -> bool:
        return self.first <= rec.line <= self.last and self.env <= rec.env.items()


def _children(stmt) -> tuple:
    inner = getattr(stmt, "body", None)
    if inner is not None:
        return inner
    inner = getattr(stmt, "stmt", None)
    return (inner,) if isinstance(inner, ast.Stmt) else ()


def _find(stmts, line: int, col: int):
    for stmt in stmts:
        if (stmt.line, stmt.col) == (line, col):
            return stmt
        found = _find(_children(stmt), line, col)
        if found is not None:
            return found
    return None


def _last_line(stmt) -> int:
    return max([stmt.line, *(_last_line(s) for s in _children(stmt))])


class _State:
    """The fields that differ between the two machines, kept per object and recomputed for
    the memcgs, the cost and the pages and swap entries a statement touched (a page's view
    changes only when the page is written, so untouched objects keep their differences)."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.diffs: dict[str, dict[str, tuple[str, str]]] = {}
        self.rank: dict[str, tuple[int, int]] = {}

    def update(self, touched: Iterable[tuple[str, str]]):
        """(new or changed differences, labels equal again, whether the set of differing
        fields changed) after a statement; `touched` in journal order, which ranks new
        pages and entries (never a set's order: the output is the same under any hash seed)."""
        objects = [("memcg", n) for n in {**self.a.memcgs, **self.b.memcgs}]
        objects += sorted(touched, key=lambda o: self._rank(o[1], 1))
        objects.append(("cost", "cost"))
        shown: list[tuple[str, str, str]] = []
        again: list[str] = []
        set_changed = False
        for kind, name in objects:
            group = {"memcg": 0, "cost": 2}.get(kind, 1)
            self._rank(name, group)
            new = _differences(self._view(self.a, kind, name), self._view(self.b, kind, name))
            old = self.diffs.get(name, {})
            if new == old:
                continue
            set_changed = set_changed or new.keys() != old.keys()
            shown += [(_label(name, f), *ab) for f, ab in new.items() if old.get(f) != ab]
            if "" not in new:  # a freed or absent object: its fields are not "equal again"
                again += [_label(name, f) for f in old if f not in new]
            if new:
                self.diffs[name] = new
            else:
                del self.diffs[name]
        return tuple(shown), tuple(again), set_changed

    def _rank(self, name: str, group: int) -> tuple[int, int]:
        return self.rank.setdefault(name, (group, len(self.rank)))

    @staticmethod
    def _view(engine, kind: str, name: str) -> dict | None:
        if kind == "cost":
            return engine.cost_view()
        table, view = {"memcg": (engine.memcgs, engine.memcg_view),
                       "page": (engine.pages, engine.page_view),
                       "entry": (engine.entries, engine.entry_view)}[kind]
        if name not in table:
            return None
        values = view(name)
        if kind == "memcg" and name != "root":  # as the trace's state: usage says it
            del values["reported_usage"]
        return values


def _presence(view: dict | None) -> str:
    if view is None:
        return "absent"
    return "freed" if view.get("freed") else "live"


def _differences(a: dict | None, b: dict | None) -> dict[str, tuple[str, str]]:
    """Field -> (A, B) for the fields that differ; a freed or absent object on either side is
    one difference of the whole object (field ""), a freed page's leftovers mean nothing."""
    pa, pb = _presence(a), _presence(b)
    if pa != "live" or pb != "live":
        return {} if pa == pb else {"": (pa, pb)}
    return {f: (str(a[f]), str(b[f])) for f in a if f != "freed" and a[f] != b.get(f)}


def _label(name: str, field: str) -> str:
    return f"{name}.{field}" if field else name


def _touched(*records: Record) -> list[tuple[str, str]]:
    """The pages and swap entries the statements wrote (or created), in journal order."""
    out: dict[tuple[str, str], None] = {}
    for rec in records:
        for result in rec.results:
            for obj, _field, _old, new in result.changes:
                for x in (obj, new):
                    if isinstance(x, Page):
                        out["page", x.name] = None
                    elif isinstance(x, SwapEntry):
                        out["entry", x.name] = None
    return list(out)


def _normal(side: Side, model: str) -> tuple[str, ...]:
    """The lines compared: a skip is a skip under any model."""
    skipped = f"skipped under {model}"
    return tuple("skipped" if line == skipped else line for line in side.lines)


def _shown(a: Side, b: Side, model_a: str, model_b: str) -> tuple[list[Line], list[Line]]:
    """The lines of each side that the other lacks, each run of them preceded (as context) by
    the nearest kernel call above it when that call is the same under both: where a call
    was made, or which call a change belongs to."""
    matcher = difflib.SequenceMatcher(None, _normal(a, model_a), _normal(b, model_b),
                                      autojunk=False)
    out_a: list[Line] = []
    out_b: list[Line] = []
    shown_a: set[int] = set()  # a call shown as a differing line needs no context line
    shown_b: set[int] = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out_a += _with_context(a.lines, i1, i2, shown_a)
            out_b += _with_context(b.lines, j1, j2, shown_b)
    if not out_a and a.lines == ():
        out_a = [_empty(a)]
    if not out_b and b.lines == ():
        out_b = [_empty(b)]
    return out_a, out_b


def _empty(side: Side) -> Line:
    return Line(f"(ran: {side.outcome}, no trace lines)")


def _with_context(lines: tuple[str, ...], start: int, end: int, shown: set[int]) -> list[Line]:
    if start == end:
        return []
    out = [Line(line) for line in lines[start:end]]
    call = next((i for i in range(start - 1, -1, -1) if not lines[i].startswith(" ")), None)
    if call is not None and call not in shown:
        out.insert(0, Line(lines[call], context=True))
    shown.update(range(start, end))
    return out


class Comparison:
    """Both runs of one program. Iterate `statements()` once; then `summary()`."""

    def __init__(self, program: ast.Program, resolution, model_a: str, model_b: str):
        self.program = program
        self.filename = program.filename
        self.models = (model_a, model_b)
        self.swapaccount = resolution.swapaccount
        self.a = _Run(program, resolution, model_a)
        self.b = _Run(program, resolution, model_b)
        self.state = _State(self.a.engine, self.b.engine)
        self._last_lines: dict[tuple[int, int], int] = {}  # (line, col) -> a statement's last

    def statements(self) -> Iterator[Statement]:
        """The statements in the order they ran; the two interpreters advance in lockstep."""
        a, b = self.a.next(), self.b.next()
        skip_a: _Span | None = None  # a block A skipped: B's records inside it are B's only
        skip_b: _Span | None = None
        while a is not None or b is not None:
            if b is not None and skip_a is not None and skip_a.holds(b):
                yield self._one(None, b, f"not run under {self.a.model}: in the `only` at line "
                                        f"{skip_a.first}")
                b = self.b.next()
            elif a is not None and skip_b is not None and skip_b.holds(a):
                yield self._one(a, None, f"not run under {self.b.model}: in the `only` at line "
                                        f"{skip_b.first}")
                a = self.a.next()
            elif b is None:
                yield self._one(a, None, self.b.stopped())
                a = self.a.next()
            elif a is None:
                yield self._one(None, b, self.a.stopped())
                b = self.b.next()
            elif self._pair(a, b):
                # a skip paired with the statement it skipped: the rest of that statement
                # (a block's body, its closing `}`) ran under the other model only
                both = a.outcome == b.outcome == "skipped"
                skip_a = self._span(a) if a.outcome == "skipped" and not both else None
                skip_b = self._span(b) if b.outcome == "skipped" and not both else None
                yield self._both(a, b)
                a, b = self.a.next(), self.b.next()
            elif a.outcome == "skipped" and self._span(a).holds(b):
                skip_a = self._span(a)
                yield self._one(a, None, f"runs under {self.b.model}: its statements follow")
                a = self.a.next()
            elif b.outcome == "skipped" and self._span(b).holds(a):
                skip_b = self._span(b)
                yield self._one(None, b, f"runs under {self.a.model}: its statements follow")
                b = self.b.next()
            else:  # not expected: the same program took different paths; show both
                yield self._one(a, None, f"not run here under {self.b.model}")
                yield self._one(None, b, f"not run here under {self.a.model}")
                a, b = self.a.next(), self.b.next()

    def _span(self, rec: Record) -> _Span:
        key = (rec.line, rec.col)
        last = self._last_lines.get(key)
        if last is None:
            node = _find(self.program.stmts, rec.line, rec.col)
            last = self._last_lines[key] = _last_line(node) if node is not None else rec.line
        return _Span(rec, last)

    @staticmethod
    def _pair(a: Record, b: Record) -> bool:
        """The same statement (a skip pairs with the statement it skipped)."""
        if a.line != b.line or a.env != b.env:
            return False
        return a.text == b.text or "skipped" in (a.outcome, b.outcome)

    def _both(self, a: Record, b: Record) -> Statement:
        sa, sb = self.a.side(a), self.b.side(b)
        same = (sa.outcome == sb.outcome and sa.text == sb.text
                and _normal(sa, self.a.model) == _normal(sb, self.b.model))
        shown_a, shown_b = ([], []) if same else _shown(sa, sb, *self.models)
        if not same and not shown_a and not shown_b:  # only the outcome tells them apart
            shown_a, shown_b = [Line(f"outcome {sa.outcome}")], [Line(f"outcome {sb.outcome}")]
        # the statement as written: an `only` skip shows the whole `only …:` line
        text = a.text if a.col <= b.col else b.text
        return self._statement(text, sa, sb, "", same, shown_a, shown_b, a, b)

    def _one(self, a: Record | None, b: Record | None, why: str) -> Statement:
        rec = a if a is not None else b
        side = (self.a if a is not None else self.b).side(rec)
        shown = [Line(x) for x in side.lines] or [_empty(side)]
        sa, sb = (side, None) if a is not None else (None, side)
        return self._statement(rec.text, sa, sb, why, False,
                               shown if a is not None else [], shown if b is not None else [],
                               rec)

    def _statement(self, text: str, sa: Side | None, sb: Side | None, why: str, same: bool,
                   shown_a, shown_b, *records: Record) -> Statement:
        state: tuple = ()
        again: tuple = ()
        set_changed = False
        if any(r.changes for rec in records for r in rec.results):  # else nothing can differ
            state, again, set_changed = self.state.update(_touched(*records))
        tags = []
        pa, pb = (set(s.problems) if s is not None else set() for s in (sa, sb))
        for kind in (*(sa.problems if sa else ()), *(sb.problems if sb else ())):
            if kind in pa ^ pb:
                tag = f"{kind} under {self.models[0] if kind in pa else self.models[1]} only"
                if tag not in tags:
                    tags.append(tag)
        rec = records[0]
        loc = rec.pos[len(rec.program.filename) + 1:]
        return Statement(rec.pos, loc, rec.line, text, sa, sb, why, same, not same or set_changed,
                         state, again, tuple(shown_a), tuple(shown_b), tuple(tags))

    def summary(self) -> Summary:
        """Counters, statistics and cost under both models, and the verdicts (after
        `statements()` is exhausted)."""
        rows: list[tuple[str, str, str]] = []
        ea, eb = self.a.engine, self.b.engine
        for name in {**ea.memcgs, **eb.memcgs}:
            va = ea.memcg_view(name) if name in ea.memcgs else None
            vb = eb.memcg_view(name) if name in eb.memcgs else None
            fields = plain.MEMCG_FIELDS + (("reported_usage",) if name == "root" else ())
            for f in fields:
                rows.append((f"{name}.{f}", _cell(va, f), _cell(vb, f)))
        ca, cb = ea.cost_view(), eb.cost_view()
        rows += [(f"cost.{f}", str(ca[f]), str(cb[f])) for f in COST_FIELDS]
        return Summary(tuple(rows), (self.a.verdict(), self.b.verdict()),
                       (self.a.interp.failed, self.b.interp.failed))


def _cell(view: dict | None, field: str) -> str:
    return "absent" if view is None else str(view[field])


def fold(statements: Iterable[Statement]) -> Iterator[Statement | Folded]:
    """The statements, each run of consecutive ones that do not differ as one Folded (only
    its ends are kept: a repeat of a million identical statements stays small)."""
    first: Statement | None = None
    last: Statement | None = None
    count = 0
    for s in statements:
        if not s.differs:
            first, last, count = first or s, s, count + 1
            continue
        if first is not None:
            yield Folded(first, last, count)
            first, count = None, 0
        yield s
    if first is not None:
        yield Folded(first, last, count)


# -- plain and JSON -----------------------------------------------------------------------
def header(comparison: Comparison) -> str:
    a, b = comparison.models
    return f"# memcglang diff {FORMAT_VERSION}: {comparison.filename}, models {a} and {b}"


def state_parts(statement: Statement) -> list[str]:
    """`NAME.FIELD A x B y` for each new or changed difference; huge page tails folded."""
    return plain.fold_tails([f"{label} A {a} B {b}" for label, a, b in statement.state])


def plain_lines(comparison: Comparison) -> Iterator[str]:
    """The plain diff: header, folded runs, differing statements, the summary."""
    yield header(comparison)
    for item in fold(comparison.statements()):
        if isinstance(item, Folded):
            n = item.count
            yield f"= {item.where}: {n} statement{'s' if n != 1 else ''} identical"
            continue
        yield f"! {item.pos}: {item.text}"
        yield from ("  " + tag for tag in item.tags)
        for mark, side, shown in (("A", item.a, item.shown_a), ("B", item.b, item.shown_b)):
            if side is None:
                yield f"  {mark}| ({item.missing})"
            yield from (f"  {mark}{'  ' if x.context else '| '}{x.text}" for x in shown)
        if item.state:
            yield "  state: " + ", ".join(state_parts(item))
        if item.equal_again:
            yield "  state equal again: " + ", ".join(plain.fold_tails(list(item.equal_again)))
    yield from summary_lines(comparison)


def summary_lines(comparison: Comparison) -> list[str]:
    """The summary as a table, label | A | B, differing rows marked `!`; then the verdicts."""
    summary = comparison.summary()
    a, b = comparison.models
    rows = [("", "", a, b), *(("!" if x != y else " ", label, x, y)
                              for label, x, y in summary.rows)]
    w0 = max(len(r[1]) for r in rows)
    w1 = max(len(r[2]) for r in rows)
    w2 = max(len(r[3]) for r in rows)
    out = [f"{'summary':<{w0 + 4}}{a:>{w1}}  {b:>{w2}}"]
    out += [f"{m} {label:<{w0}}  {x:>{w1}}  {y:>{w2}}".rstrip() for m, label, x, y in rows[1:]]
    out += [f"verdict {a}: {summary.verdicts[0]}", f"verdict {b}: {summary.verdicts[1]}"]
    return out


def _side_json(side: Side | None) -> dict | None:
    if side is None:
        return None
    return {"outcome": side.outcome, "statement": side.text, "lines": list(side.lines),
            "problems": list(side.problems)}


def json_lines(comparison: Comparison) -> Iterator[str]:
    """One JSON object per line, keys sorted: the header, every statement (folded ones too,
    `differs` false), the summary."""
    a, b = comparison.models
    yield json.dumps({"format": "memcglang diff", "version": FORMAT_VERSION,
                      "file": comparison.filename, "models": [a, b],
                      "swap_accounting": comparison.swapaccount}, sort_keys=True)
    for s in comparison.statements():
        yield json.dumps({
            "pos": s.pos, "line": s.line, "statement": s.text, "differs": s.differs,
            "same_trace": s.same_trace, "a": _side_json(s.a), "b": _side_json(s.b),
            "not_run": s.missing or None, "tags": list(s.tags),
            "state": [{"field": label, "a": x, "b": y} for label, x, y in s.state],
            "state_equal_again": list(s.equal_again),
        }, sort_keys=True)
    summary = comparison.summary()
    yield json.dumps({
        "summary": [{"field": label, "a": x, "b": y, "differs": x != y}
                    for label, x, y in summary.rows],
        "verdicts": [{"model": m, "verdict": v, "failed": f}
                     for m, v, f in zip(comparison.models, summary.verdicts, summary.failed,
                                        strict=True)],
    }, sort_keys=True)
