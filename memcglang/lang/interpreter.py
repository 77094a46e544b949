"""Run a resolved program on the engine, statement by statement (LANGUAGE §2-§4, §3.7).

The interpreter yields one `Record` per executed (or skipped) statement: its position, the
engine's StepResults, the outcome and the report lines. It knows the engine, not the
screen: `memcglang.render` turns records into text. Outcomes follow LANGUAGE §4: a failed
`expect` is reported and the run goes on; an unexpected kernel error value, kernel assertion,
invariant violation or scenario error stops the run; the exit status is 1 if anything failed.
"""

from __future__ import annotations

from collections.abc import Iterator

from memcglang.engine import (
    ChargeFailed,
    Deadlock,
    Engine,
    KernelError,
    ScenarioError,
    StepResult,
    VmBug,
)
from memcglang.engine.mm import KEEP
from memcglang.lang import ast
from memcglang.lang.resolver import Resolution, size_in_pages
from memcglang.lang.verbs import TABLE

DEFAULT_MODEL = "v1"
BLOCKS = (ast.Zap, ast.Batch)  # the blocks an `expect …:` may take (it judges their end)
STOPS = frozenset(("bug", "scenario", "violation", "error"))  # outcomes that end a run
STOP_MESSAGE = "the run stops here"
AVAILABLE_MODELS = ("v1", "3.17", "legacy")


class Record:
    """One statement as it ran: where, what the engine did, how it ended, what to report.

    `outcome` is ok, kept, failed, error, bug, violation, scenario, expected, expect,
    failed-expect, show or skipped. The position and text are made when asked for: a quiet
    run prints them only for failures.
    """

    __slots__ = ("program", "line", "col", "env", "_text", "outcome", "results", "messages",
                 "expects_passed", "expects_failed", "show")

    def __init__(self, program: ast.Program, stmt, env: dict, outcome: str,
                 text: str | None = None, show=None):
        self.program = program
        self.line = stmt.line
        self.col = stmt.col
        self.env = env
        self._text = text
        self.outcome = outcome
        self.results: list[StepResult] = []
        self.messages: list[str] = []
        self.expects_passed = 0
        self.expects_failed = 0
        self.show = show  # the target of a `show` (None: everything)

    @property
    def pos(self) -> str:
        where = f"{self.program.filename}:{self.line}"
        if self.env:
            where += "[" + ",".join(f"{k}={v}" for k, v in self.env.items()) + "]"
        return where

    @property
    def failed(self) -> bool:
        """A failed expect, or an outcome that stops the run: what --quiet still shows."""
        return bool(self.expects_failed) or self.outcome in STOPS

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.program.line(self.line)[self.col - 1 :].strip()
        return self._text


class Stop(Exception):
    """The run stops here (LANGUAGE §4)."""


class Interpreter:
    def __init__(self, program: ast.Program, resolution: Resolution, model: str | None = None,
                 track_fingerprint: bool = False):
        self.program = program
        self.resolution = resolution
        self.model = model or resolution.model or DEFAULT_MODEL
        # `memcg root hierarchy=…` sets root's hierarchy when it runs (the resolver keeps it
        # the first memcg statement)
        self.engine = Engine(self.model, resolution.swapaccount,
                             track_fingerprint=track_fingerprint)
        self.failed = False
        self.statements = 0

    # -- driving ----------------------------------------------------------------------------
    def run(self) -> Iterator[Record]:
        """Execute the file; yields a Record per statement. Sets `failed`."""
        try:
            threads = [s for s in self.program.stmts if isinstance(s, ast.Thread)]
            for stmt in self.program.stmts:
                if isinstance(stmt, ast.Thread):
                    yield from self.thread(stmt)
                    if stmt is threads[-1]:
                        self.engine.set_thread("main")
                    continue
                yield from self.stmt(stmt, {})
            yield from self.end_thread("main", len(self.program.lines) - 1)
        except Stop:
            self.failed = True

    def thread(self, stmt: ast.Thread) -> Iterator[Record]:
        self.engine.set_thread(stmt.name.text)
        for inner in stmt.body:
            yield from self.stmt(inner, {})
        yield from self.end_thread(stmt.name.text, stmt.line)

    def end_thread(self, thread: str, line: int) -> Iterator[Record]:
        try:
            self.engine.end_thread(thread)
        except ScenarioError as e:
            rec = Record(self.program, ast.Stmt(line=line, col=1), {}, "scenario",
                         f"end of {thread}")
            rec.messages.append(f"scenario error: {e}")
            yield rec
            raise Stop from None

    # -- statements -------------------------------------------------------------------------
    def stmt(self, stmt: ast.Stmt, env: dict) -> Iterator[Record]:
        kind = type(stmt)
        if kind in (ast.Model, ast.Swapaccount):
            return
        if kind is ast.Repeat:
            for i in range(stmt.count):
                inner_env = {**env, stmt.var.text: i}
                for inner in stmt.body:
                    yield from self.stmt(inner, inner_env)
            return
        if kind is ast.Only or kind is ast.OnlyBlock:
            if self.model not in stmt.models:
                rec = Record(self.program, stmt, env, "skipped")
                rec.messages.append(f"skipped under {self.model}")
                yield rec
                return
            if kind is ast.Only:
                inner = stmt.stmt
                for rec in self.stmt(inner, env):
                    if rec.line == inner.line and rec.col == inner.col:
                        rec.col = stmt.col  # shown as written: `only v1: expect …`
                    yield rec
            else:
                for inner in stmt.body:
                    yield from self.stmt(inner, env)
            return
        if kind is ast.Zap or kind is ast.Batch:
            yield from self.block(stmt, env)
            return
        if kind is ast.Expect:
            yield self.expect(stmt, env)
            return
        if kind is ast.Show:
            self.statements += 1
            yield Record(self.program, stmt, env, "show",
                         show=self.show_target(stmt.target, env))
            return
        if kind is ast.ExpectOutcome:
            if isinstance(stmt.stmt, BLOCKS):
                yield from self.block(stmt.stmt, env, stmt)
                return
            yield from self.expected(stmt, env, None, None)
            return
        yield from self.stepped(stmt, env)

    def block(self, stmt: ast.Zap | ast.Batch, env: dict,
              expected: ast.ExpectOutcome | None = None) -> Iterator[Record]:
        """A zap or batch block: its window opens, its statements run, and its end (`}`: the
        deferred releases, the window's flush) is the step an `expect …:` on the block
        judges."""
        begin, end = ("zap_begin", "zap_end") if type(stmt) is ast.Zap else (
            "batch_begin", "batch_end")
        yield from self.stepped(stmt, env, lambda e: getattr(e, begin)())
        for inner in stmt.body:
            yield from self.stmt(inner, env)
        if expected is None:
            yield from self.stepped(stmt, env, lambda e: getattr(e, end)(), "}")
        else:
            yield from self.expected(expected, env, lambda e: getattr(e, end)(), "}")

    def expected(self, stmt: ast.ExpectOutcome, env: dict, action, text) -> Iterator[Record]:
        """A step under `expect OUTCOME:`: judged, and the run stops where LANGUAGE §4 says."""
        rec = self.step(stmt, env, action, text, expected=stmt)
        if rec.expects_failed:
            self.failed = True
        yield rec
        if rec.outcome in STOPS:
            raise Stop

    def stepped(self, stmt, env, action=None, text: str | None = None) -> Iterator[Record]:
        rec = self.step(stmt, env, action, text)
        yield rec
        if rec.outcome in STOPS:
            raise Stop

    def step(self, stmt, env, action=None, text: str | None = None,
             expected: ast.ExpectOutcome | None = None):
        """Run one engine step (the statement's own call, or `action`); classify its outcome;
        mark the run failed where LANGUAGE §4 says it stops."""
        self.statements += 1
        rec = Record(self.program, stmt, env, "ok", text)
        try:
            if action is not None:
                result = action(self.engine)
            else:
                result = self.invoke(expected.stmt if expected is not None else stmt, env)
        except VmBug as e:
            rec.outcome = "bug"
            rec.messages.append(e.report)
        except Deadlock as e:
            rec.outcome = "scenario"
            rec.messages.append(f"deadlock: {e}")
        except ScenarioError as e:
            rec.outcome = "scenario"
            rec.messages.append(f"scenario error: {e}")
        else:
            rec.results.append(result)
            if result.violations:
                rec.outcome = "violation"
                rec.messages.extend(f"invariant violated: {v}" for v in result.violations)
            elif result.error is not None:
                rec.outcome = "error"
                rec.messages.append(describe_error(result.error))
            elif result.outcome in ("kept", "failed"):
                rec.outcome = result.outcome
        if expected is not None:
            self.judge(rec, expected)
        if rec.outcome in STOPS:
            self.failed = True
            rec.messages.append(STOP_MESSAGE)
        return rec

    def judge(self, rec: Record, expected: ast.ExpectOutcome) -> None:
        got = rec.outcome
        errno = None
        if got == "error":
            err = rec.results[-1].error if rec.results else None
            errno = err.errno if err is not None else None
        label = expected_label(expected)
        if fulfils(expected, got, errno):
            rec.expects_passed += 1
            rec.messages = [f"expected {label}: as expected"] + rec.messages
            rec.outcome = "expected"
        else:
            rec.expects_failed += 1
            actual = f"error {errno}" if got == "error" else got
            rec.messages.insert(
                0, f"{rec.pos}: expect {label} failed: the statement ended {actual}"
            )

    # -- engine calls -----------------------------------------------------------------------
    def invoke(self, stmt: ast.Stmt, env: dict) -> StepResult:
        """Make the engine call of a statement, its names filled in."""
        method, args = engine_call(stmt, env)
        return getattr(self.engine, method)(*args)

    # -- expect and show --------------------------------------------------------------------
    def show_target(self, target, env):
        if target is None:
            return None
        if isinstance(target, ast.Cost):
            return "cost"
        return path_text(target, env)

    def expect(self, stmt: ast.Expect, env: dict) -> Record:
        self.statements += 1
        rec = Record(self.program, stmt, env, "expect")
        target = self.show_target(stmt.target, env)
        view, kind = self.view(target)
        if view is None:
            rec.expects_failed += 1
            rec.messages.append(f"{rec.pos}: expect {target}: no such page, memcg or swap entry")
        else:
            for check in stmt.checks:
                ok, expected, actual = compare(kind, view, check, env)
                if ok:
                    rec.expects_passed += 1
                else:
                    rec.expects_failed += 1
                    rec.messages.append(
                        f"{rec.pos}: expect {target} {check.field}: expected {expected}, "
                        f"actual {actual}"
                    )
        if rec.expects_failed:
            rec.outcome = "failed-expect"
            self.failed = True
        return rec

    def view(self, target: str):
        e = self.engine
        if target == "cost":
            return e.cost_view(), "cost"
        if target in e.pages:
            return e.page_view(target), "page"
        if target in e.entries:
            return e.entry_view(target), "entry"
        if target in e.memcgs:
            return e.memcg_view(target), "memcg"
        return None, None


def fulfils(expected: ast.ExpectOutcome, outcome: str, errno: str | None) -> bool:
    """Whether a statement that ended `outcome` (with `errno` for an error) is what
    `expect OUTCOME:` asks for."""
    want = expected.outcome
    if want in ("enomem", "error"):
        return outcome == "error" and errno == ("ENOMEM" if want == "enomem" else expected.errno)
    return outcome == want  # bug, violation


def expected_label(expected: ast.ExpectOutcome) -> str:
    return f"error {expected.errno}" if expected.outcome == "error" else expected.outcome


# the engine method of each one-page primitive, from the verb table
PAGE_METHODS = {v.cls: v.engine for v in TABLE if issubclass(v.cls, ast.PageStmt)}


def engine_call(stmt: ast.Stmt, env: dict) -> tuple[str, tuple]:
    """The engine method a statement calls and its arguments, its names filled in."""
    def n(name: ast.Name | None) -> str | None:
        return None if name is None else name.fill(env)

    def p(path: ast.Path | None) -> str | None:
        return None if path is None else path_text(path, env)

    t = type(stmt)
    if t is ast.Memcg:
        limits = settings(stmt.settings)
        return "create_memcg", (p(stmt.path), limits.get("limit"), limits.get("memsw_limit"),
                                limits.get("hierarchy"))
    if t is ast.Set:
        limits = settings(stmt.settings)
        return "set_limits", (p(stmt.path), limits.get("limit", KEEP),
                              limits.get("memsw_limit", KEEP))
    if t is ast.Alloc:
        return "alloc", (n(stmt.page), stmt.kind, stmt.huge)
    if t is ast.TryCharge:
        return "try_charge", (n(stmt.page), p(stmt.memcg))
    if t is ast.Commit:
        return "commit", (n(stmt.page), stmt.lrucare)
    if t is ast.Charge:
        return "charge", (n(stmt.page), p(stmt.memcg), stmt.lrucare)
    if isinstance(stmt, ast.PageStmt):
        return PAGE_METHODS[t], (n(stmt.page),)
    if t is ast.AddToSwap:
        return "add_to_swap", (n(stmt.page), n(stmt.entry))
    if t is ast.Readahead:
        return "readahead", (n(stmt.entry), n(stmt.page))
    if t is ast.FreeSwap:
        return "free_swap", (n(stmt.entry),)
    if t is ast.Release:
        return "release", tuple(n(x) for x in stmt.pages)
    if t is ast.Fault:
        return "fault", (n(stmt.page), p(stmt.memcg), stmt.huge)
    if t is ast.Cache:
        return "cache", (n(stmt.page), p(stmt.memcg))
    if t is ast.Cow:
        return "cow", (n(stmt.old), n(stmt.new), p(stmt.memcg))
    if t is ast.Swapin:
        return "swapin", (n(stmt.entry), n(stmt.page), p(stmt.memcg), stmt.reuse)
    if t is ast.Reclaim:
        return "reclaim", (n(stmt.page), n(stmt.entry))
    if t is ast.Migrate:
        return "migrate", (n(stmt.old), n(stmt.new), stmt.fail)
    if t is ast.ReplaceCache:
        return "replace_cache", (n(stmt.old), n(stmt.new))
    if t is ast.Move:
        return "move", (n(stmt.target), p(stmt.memcg))
    raise TypeError(f"no engine call for {t.__name__}")


def settings(items) -> dict:
    out: dict = {}
    for s in items:
        if s.key == "hierarchy":
            out["hierarchy"] = s.value == "on"
        else:
            out[s.key] = None if s.value == "max" else size_in_pages(s.value)
    return out


def describe_error(err: KernelError) -> str:
    if isinstance(err, ChargeFailed):
        limit = "max" if err.limit is None else err.limit
        return (f"-ENOMEM: charge failed at {err.memcg} {err.counter_kind}: usage {err.usage}, "
                f"limit {limit} ({err.attempts} attempt{'s' if err.attempts != 1 else ''})")
    return f"-{err.errno}: {err.message}"


def path_text(path: ast.Path, env: dict) -> str:
    """A name or memcg path with its templates filled; `root/A` is `A`."""
    names = [x.fill(env) for x in path.names]
    if len(names) > 1 and names[0] == "root":
        names = names[1:]
    return "/".join(names)


def compare(kind: str, view: dict, check: ast.Check, env: dict) -> tuple[bool, str, str]:
    """Compare one expected field with the live view; (ok, expected text, actual text)."""
    field = check.field
    if field not in view:  # a templated name can turn out to be another kind at run time
        return False, f"a {field} field", f"a {kind}, which has no {field}"
    if field == "freed":
        actual = view["freed"]
        return bool(actual), "freed", "freed" if actual else "not freed"
    v = check.value
    actual = view[field]
    if v.kind == "number" and isinstance(actual, int):
        expected_n = size_in_pages(v.text) if kind == "memcg" else int(v.text)
        return actual == expected_n, v.text, str(actual)
    if kind == "page" and field in ("flags", "page"):  # flag sets, in any order
        want = set(v.text.split("|")) - {"none"}
        have = set(str(actual).split("|")) - {"none"}
        return want == have, v.text, str(actual)
    if v.kind == "path" and v.path is not None:
        text = path_text(v.path, env)
        return str(actual) == text, text, str(actual)
    return str(actual) == v.text, v.text, str(actual)
