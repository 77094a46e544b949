"""The REPL's session: statements typed one chunk at a time, undo and redo, meta commands.

No I/O here: `Session.execute(text)` returns an `Update` (the records of what ran, the
diagnostics of what was refused, the text of a meta command) that the screen renders
(memcglang.render) and the front ends print (memcglang.repl.app for a terminal, `feed` for
piped input). The session is a file growing line by line: positions are `<repl>:LINE`, the
resolver and the interpreter keep their state between chunks, and every top-level statement
is an undo unit holding an engine mark (LANGUAGE §4: a refused statement leaves the state as
it was; an outcome that would stop `run` is reported and the session goes on).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from memcglang.engine.state import Page, SwapEntry
from memcglang.lang import ast
from memcglang.lang.diagnostics import Diagnostic, StaticErrors
from memcglang.lang.interpreter import (
    AVAILABLE_MODELS,
    DEFAULT_MODEL,
    STOP_MESSAGE,
    Interpreter,
    Record,
    Stop,
)
from memcglang.lang.parser import parse_recovering
from memcglang.lang.resolver import FIELDS, MAX_REPEAT, Resolver
from memcglang.lang.source import read_source
from memcglang.lang.verbs import BY_NAME, TABLE
from memcglang.render import plain

MAX_UNDO = 1000  # undo units kept; older ones release their journal mark
SETUP = (ast.Model, ast.Swapaccount)
BLOCKS = (ast.Zap, ast.Batch, ast.Repeat, ast.OnlyBlock, ast.Thread)
META = {
    "help": ":help [VERB]        the statements, or one statement's syntax and meaning",
    "undo": ":undo [N]           take back the last N statements (default 1)",
    "redo": ":redo               run again the last statement taken back",
    "reset": ":reset              start afresh (same model)",
    "model": ":model NAME         replay the session under another model",
    "load": ":load FILE          run a .mcg file's statements in the session",
    "save": ":save [--expect] FILE  write the session as a .mcg that `memcglang run` reproduces;"
            " --expect adds expect lines for the current state",
    "mark": ":mark               remember this point for :diff",
    "diff": ":diff               the net changes since :mark (or the session's start)",
    "show": "show [TARGET]       (a statement) the whole state, or one page, memcg or entry",
    "quit": ":quit               leave (also Ctrl-D)",
}
KEYWORDS = ("in", "to", "as", "with", "anon", "file", "shmem", "huge", "lrucare", "fail",
            "reuse", "on", "off", "limit=", "memsw_limit=", "hierarchy=", "cost", "root")


@attrs.define
class Unit:
    """One top-level statement that ran: its lines of the session and its undo point."""

    start: int  # index in Session.lines of its first line
    text: str
    mark: int | None  # engine journal mark before it ran (None: setup, before the engine)
    resolver: tuple  # the resolver's snapshot before it


@attrs.define
class Update:
    """What one input did. `kind`: ran, refused (static errors), meta, empty, quit."""

    kind: str
    records: list[Record] = attrs.Factory(list)
    diagnostics: list[Diagnostic] = attrs.Factory(list)
    lines: list[str] = attrs.Factory(list)  # a meta command's output
    memcgs_before: dict = attrs.Factory(dict)
    touched: dict = attrs.Factory(dict)  # page/entry name -> fields changed
    failed: bool = False  # an error, a failed expect, a meta command that could not be done


class MetaError(Exception):
    """A meta command that cannot be done as asked: the message says why."""


class Session:
    def __init__(self, model: str | None = None, filename: str = "<repl>",
                 max_repeat: int = MAX_REPEAT):
        if model is not None and model not in AVAILABLE_MODELS:
            raise MetaError(f"model {model} is not available yet "
                            f"(models: {', '.join(AVAILABLE_MODELS)})")
        self.model_override = model
        self.filename = filename
        self.max_repeat = max_repeat
        self._start()

    def _start(self) -> None:
        self.lines: list[str] = []
        self.units: list[Unit] = []
        self.redo_stack: list[str] = []
        self.resolver = Resolver(ast.Program((), self.filename, ""), self.max_repeat)
        self.interp: Interpreter | None = None
        self.diff_mark: int | None = None
        self.failed = False

    # -- what the session knows ------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.model_override or self.resolver.result.model or DEFAULT_MODEL

    @property
    def swap_account(self) -> bool:
        return self.resolver.result.swapaccount

    @property
    def engine(self):
        return self.interp.engine if self.interp is not None else None

    def names(self, kind: str) -> list[str]:
        """Live names of a kind (page, memcg, entry) for completion."""
        e = self.engine
        if kind == "memcg":
            return list(e.memcgs) if e is not None else ["root"]
        if e is None:
            return []
        if kind == "page":
            return [n for n, p in e.pages.items() if not p.freed]
        return [n for n, x in e.entries.items() if not x.freed]

    def kind_of(self, name: str) -> str | None:
        """The kind of a bound name (freed pages and entries included: `expect P freed`)."""
        e = self.engine
        if name == "cost":
            return "cost"
        if e is None:
            return "memcg" if name == "root" else None
        for kind, table in (("page", e.pages), ("memcg", e.memcgs), ("entry", e.entries)):
            if name in table:
                return kind
        return None

    def toolbar(self) -> str:
        """The bottom toolbar: model, swap accounting, every memcg's usage/memsw, totals."""
        parts = [f"model {self.model}",
                 f"swap accounting {'on' if self.swap_account else 'off'}"]
        e = self.engine
        if e is not None:
            for name in e.memcgs:
                v = e.memcg_view(name)
                parts.append(f"{name} {v['usage']}/{v['memsw']}")
            c = e.cost_view()
            parts.append(f"pages {len(self.names('page'))} entries {len(self.names('entry'))}")
            parts.append(f"res_counter {c['res_counter']} pc_lock {c['pc_lock']} "
                         f"batches {c['batches']}")
        return " · ".join(parts)

    # -- input -----------------------------------------------------------------------------
    @staticmethod
    def is_complete(text: str) -> bool:
        """A chunk is complete when its blocks are closed (comments ignored)."""
        depth = 0
        for line in text.split("\n"):
            code = line.split("#", 1)[0]
            depth += code.count("{") - code.count("}")
        return depth <= 0

    def check(self, text: str) -> list[Diagnostic]:
        """The static errors of a chunk, as if it were run next; nothing changes."""
        if text.lstrip().startswith(":"):
            return []
        program, errors = self._parse(text)
        if errors or program is None:
            return errors
        before = self.resolver.snapshot()
        try:
            self.resolver.resolve_more(program)
        except StaticErrors as e:
            return e.diagnostics
        finally:
            self.resolver.restore(before)
        return []

    def skip(self, text: str) -> None:
        """Keep refused input's lines as comments, so the positions of what follows are the
        input's own (piped input)."""
        self.lines.extend(f"# (refused) {line}" for line in text.rstrip("\n").split("\n"))

    def _parse(self, text: str):
        # the chunk stands at the session's next line, so positions are the session's
        return parse_recovering("\n" * len(self.lines) + text, self.filename)

    def execute(self, text: str, redo: bool = False) -> Update:
        """Run a chunk (one or more statements, or a meta command)."""
        stripped = text.strip()
        if not stripped:  # blank lines are part of the session's text (positions follow it)
            self.lines.extend(text.rstrip("\n").split("\n"))
            return Update("empty")
        if stripped.startswith(":"):
            try:
                return self.meta(stripped[1:])
            except MetaError as e:
                return Update("meta", lines=[str(e)], failed=True)
        program, errors = self._parse(text.rstrip("\n"))
        if errors or program is None:
            return Update("refused", diagnostics=errors, failed=True)
        try:
            snaps = self.resolver.resolve_more(program)
        except StaticErrors as e:
            return Update("refused", diagnostics=e.diagnostics, failed=True)
        if not redo:
            self.redo_stack.clear()
        update = Update("ran")
        first_line = len(self.lines) + 1
        chunk_lines = text.rstrip("\n").split("\n")
        if not program.stmts:  # comments only: kept in the session's text
            self.lines.extend(chunk_lines)
            return Update("empty")
        starts = [first_line] + [s.line for s in program.stmts[1:]]
        ends = starts[1:] + [first_line + len(chunk_lines)]
        for stmt, snap, start, end in zip(program.stmts, snaps, starts, ends, strict=True):
            unit_text = "\n".join(chunk_lines[start - first_line:end - first_line])
            self._run_unit(program, stmt, snap, len(self.lines), unit_text, update)
            self.lines.extend(unit_text.split("\n"))
        return update

    def _run_unit(self, program, stmt, snap, start: int, text: str, update: Update) -> None:
        if isinstance(stmt, SETUP):
            self.units.append(Unit(start, text, None, snap))
            return
        if self.interp is None:
            self.interp = Interpreter(program, self.resolver.result, self.model)
        interp, engine = self.interp, self.interp.engine
        interp.program = program
        mark = engine.mark()
        for name in engine.memcgs:
            update.memcgs_before.setdefault(name, engine.memcg_view(name))
        self.units.append(Unit(start, text, mark, snap))
        self._trim_undo()
        records: list[Record] = []
        stopped = False
        try:
            if isinstance(stmt, ast.Thread):
                records.extend(interp.thread(stmt))
            else:
                records.extend(interp.stmt(stmt, {}))
        except Stop:
            stopped = True
        finally:
            engine.set_thread("main")
        block = stmt.stmt if isinstance(stmt, ast.ExpectOutcome) else stmt
        if stopped and isinstance(block, BLOCKS) and records and records[-1].text != "}":
            # a block cut short would leave a window or a zap open: take it back whole
            engine.rollback_to(mark)
            note = Record(program, stmt, {}, "scenario", "(the block above)")
            note.messages.append("the block stopped before its end: rolled back to before it "
                                 "(LANGUAGE §4)")
            records.append(note)
        for rec in records:
            if STOP_MESSAGE in rec.messages:  # LANGUAGE §4: the REPL keeps the state, goes on
                rec.messages.remove(STOP_MESSAGE)
            for result in rec.results:
                for obj, field, _old, _new in result.changes:
                    if isinstance(obj, (Page, SwapEntry)):
                        update.touched.setdefault(obj.name, set()).add(field)
        if interp.failed or any(r.failed for r in records):
            update.failed = True
            self.failed = True
        interp.failed = False
        update.records.extend(records)

    def _trim_undo(self) -> None:
        marked = [u for u in self.units if u.mark is not None]
        if len(marked) > MAX_UNDO:
            old = marked[0]
            self.engine.release_mark(old.mark)
            old.mark = None
            self.units.remove(old)

    # -- meta commands ---------------------------------------------------------------------
    def meta(self, command: str) -> Update:
        words = command.split()
        name, args = (words[0], words[1:]) if words else ("help", [])
        handler = getattr(self, f"_meta_{name}", None)
        if handler is None:
            raise MetaError(f":{name} is not a command (:help lists them)")
        return handler(args)

    def _meta_help(self, args) -> Update:
        if not args:
            lines = ["statements:"]
            lines += [f"  {v.syntax:<44} {v.help}" for v in TABLE]
            lines += ["commands:"] + [f"  {text}" for text in META.values()]
            return Update("meta", lines=lines)
        verb = BY_NAME.get(args[0].lstrip(":")) or BY_NAME.get(args[0] + "_block")
        if verb is None:
            if args[0].lstrip(":") in META:
                return Update("meta", lines=[META[args[0].lstrip(":")]])
            raise MetaError(f"{args[0]} is not a statement or a command (:help lists them)")
        lines = [verb.syntax, f"  {verb.help}"]
        if verb.engine:
            lines.append(f"  runs Engine.{verb.engine} (docs/engine.md)")
        return Update("meta", lines=lines)

    def _meta_quit(self, args) -> Update:
        return Update("quit")

    _meta_exit = _meta_quit

    def _meta_reset(self, args) -> Update:
        self._start()
        return Update("meta", lines=[f"a fresh session under {self.model}"])

    def _meta_undo(self, args) -> Update:
        n = _count(args)
        if n > len(self.units):
            raise MetaError(f"only {len(self.units)} statement"
                            f"{'s' if len(self.units) != 1 else ''} to take back")
        undone = self.units[-n:]
        first = undone[0]
        marks = [u.mark for u in undone if u.mark is not None]
        if marks:
            self.engine.rollback_to(marks[0])
            for m in marks:
                self.engine.release_mark(m)
        self.resolver.restore(first.resolver)
        del self.units[-n:]
        del self.lines[first.start:]
        self.redo_stack.extend(u.text for u in reversed(undone))
        if not any(u.mark is not None for u in self.units):
            self.interp = None  # back before the first statement that needed the engine
        if self.diff_mark is not None and self.engine is not None:
            self.engine.release_mark(self.diff_mark)
        self.diff_mark = None
        return Update("meta", lines=[f"took back: {u.text.splitlines()[0]}"
                                     for u in reversed(undone)])

    def _meta_redo(self, args) -> Update:
        if not self.redo_stack:
            raise MetaError("nothing to redo")
        return self.execute(self.redo_stack.pop(), redo=True)

    def _meta_model(self, args) -> Update:
        if len(args) != 1 or args[0] not in AVAILABLE_MODELS:
            raise MetaError(f":model NAME, NAME one of {', '.join(AVAILABLE_MODELS)}")
        texts = [u.text for u in self.units]
        self.model_override = args[0]
        self._start()
        update = Update("meta", lines=[f"replayed {len(texts)} statement"
                                       f"{'s' if len(texts) != 1 else ''} under {args[0]}"])
        for text in texts:
            ran = self.execute(text)
            update.records.extend(r for r in ran.records if r.failed)
            update.diagnostics.extend(ran.diagnostics)
        return update

    def _meta_load(self, args) -> Update:
        if len(args) != 1:
            raise MetaError(":load FILE")
        try:
            text = read_source(args[0])
        except StaticErrors as e:
            raise MetaError(e.format()) from None
        _, errors = parse_recovering(text, args[0])
        if errors:
            return Update("refused", diagnostics=errors, failed=True)
        return self.execute(text)

    def _meta_save(self, args) -> Update:
        expect = "--expect" in args
        paths = [a for a in args if a != "--expect"]
        if len(paths) != 1:
            raise MetaError(":save [--expect] FILE")
        text = self.saved_text(expect)
        try:
            Path(paths[0]).write_text(text, encoding="utf-8")
        except OSError as e:
            raise MetaError(f"{paths[0]}: {e.strerror}") from None
        lines = [f"wrote {paths[0]} ({len(text.splitlines())} lines)"]
        if self.engine is not None and (self.engine.reservations
                                        or any(p.locker for p in self.engine.pages.values())):
            lines.append("note: a reservation or a page lock is still held: `memcglang run` "
                         "reports it as a scenario error at the end of the file")
        return Update("meta", lines=lines)

    def _meta_mark(self, args) -> Update:
        if self.engine is None:
            raise MetaError("nothing has run yet: the session's start is the mark")
        if self.diff_mark is not None:
            self.engine.release_mark(self.diff_mark)
        self.diff_mark = self.engine.mark()
        return Update("meta", lines=["marked: :diff shows the changes from here"])

    def _meta_diff(self, args) -> Update:
        if self.engine is None:
            return Update("meta", lines=["no changes"])
        marks = [u.mark for u in self.units if u.mark is not None]
        start = self.diff_mark if self.diff_mark is not None else (marks[0] if marks else None)
        if start is None:
            return Update("meta", lines=["no changes"])
        net: dict[tuple, list] = {}
        for obj, field, old, new in self.engine.j.since(start):
            key = (id(obj), field)
            if key in net:
                net[key][3] = new
            else:
                net[key] = [obj, field, old, new]
        lines = [text for obj, field, old, new in net.values() if old is not new and old != new
                 for text in [plain.change((obj, field, old, new))] if text is not None]
        since = ":mark" if self.diff_mark is not None else "the session's start"
        return Update("meta", lines=[f"changes since {since}:"] + ["  " + x for x in lines]
                      if lines else [f"no changes since {since}"])

    # -- the end ---------------------------------------------------------------------------
    def end(self) -> list[Record]:
        """The end of the session as the end of a file: `main` must hold no page lock or
        reservation (a scenario error otherwise)."""
        if self.interp is None:
            return []
        records: list[Record] = []
        try:
            records.extend(self.interp.end_thread("main", len(self.lines)))
        except Stop:
            self.failed = True
        return records

    def statements(self) -> int:
        return self.interp.statements if self.interp is not None else 0

    # -- saving ----------------------------------------------------------------------------
    def saved_text(self, expect: bool = False) -> str:
        head = [f"# models: {self.model}", "# saved from a memcglang repl session"]
        if self.resolver.result.model is None and self.model != DEFAULT_MODEL:
            head.append(f"model {self.model}")
        body = list(self.lines)
        if expect and self.engine is not None:
            body += ["", "# the state when the session was saved"] + expect_lines(self.engine)
        return "\n".join(head + body) + "\n"

    # -- completion ------------------------------------------------------------------------
    def completions(self, before: str) -> list[str]:
        """Words that may come next after `before` (the current line up to the cursor)."""
        if before.lstrip().startswith(":"):
            words = before.lstrip()[1:].split(" ")
            if len(words) <= 1:
                return [":" + m for m in META if m != "show"]
            if words[0] == "help":
                return [v.name for v in TABLE] + list(META)
            if words[0] == "model":
                return list(AVAILABLE_MODELS)
            return []
        words = before.split()
        if before and not before[-1].isspace():
            words = words[:-1]  # the word being typed
        while True:  # `only MODELS:` and `expect OUTCOME:` lead to a statement
            if len(words) >= 2 and words[0] in ("only", "expect") and words[1].endswith(":"):
                words = words[2:]
            elif words[:2] == ["expect", "error"] and len(words) >= 3 and words[2].endswith(":"):
                words = words[3:]
            else:
                break
        if not words or words[-1] == "{":
            return [v.name for v in TABLE if v.name not in ("expect_outcome", "only_block")]
        if words[0] == "expect":
            if len(words) == 1:
                return (["enomem:", "bug:", "violation:", "error", "cost"] + self.names("page")
                        + self.names("memcg") + self.names("entry"))
            kind = self.kind_of(words[1])
            fields = sorted(FIELDS.get(kind, ())) if kind else []
            return fields
        return self.names("page") + self.names("memcg") + self.names("entry") + list(KEYWORDS)


def _count(args) -> int:
    if not args:
        return 1
    if len(args) == 1 and args[0].isdigit() and int(args[0]) > 0:
        return int(args[0])
    raise MetaError(":undo [N], N a positive number")


PAGE_EXPECT = ("flags", "memcg", "refcount", "mapcount", "page", "isolated", "kind", "huge",
               "entry")
ENTRY_EXPECT = ("memcg", "count", "page")


def expect_lines(engine) -> list[str]:
    """`expect` lines that pin the whole current state (`:save --expect`)."""
    out = []
    for name in engine.memcgs:
        v = engine.memcg_view(name)
        fields = list(plain.MEMCG_FIELDS) + (["reported_usage"] if name == "root" else [])
        out.append(f"expect {name} " + " ".join(f"{f} {v[f]}" for f in fields))
    for objects, view, fields in ((engine.pages, engine.page_view, PAGE_EXPECT),
                                  (engine.entries, engine.entry_view, ENTRY_EXPECT)):
        for name, obj in objects.items():
            if obj.freed:
                out.append(f"expect {name} freed")
                continue
            v = view(name)
            out.append(f"expect {name} " + " ".join(f"{f} {v[f]}" for f in fields))
    c = engine.cost_view()
    out.append(f"expect cost res_counter {c['res_counter']} pc_lock {c['pc_lock']} "
               f"batches {c['batches']}")
    return out


def feed(session: Session, lines, emit) -> int:
    """Piped input: statements line by line (a block until it closes), meta commands too;
    emits the plain trace (the same lines `memcglang run --plain` prints), then the state and
    the verdict at the end. Returns the exit status: 0, 1 if anything failed, 2 if some input
    was refused."""
    header_done = False
    refused = False
    chunk: list[str] = []
    tally = plain.Tally()

    def header():
        nonlocal header_done
        if not header_done:
            emit(plain.header(session.filename, session.model, session.swap_account))
            header_done = True

    for raw in lines:
        chunk.append(raw.rstrip("\r\n"))
        text = "\n".join(chunk)
        if not session.is_complete(text) and not text.lstrip().startswith(":"):
            continue
        chunk = []
        update = session.execute(text)
        if update.kind == "quit":
            break
        if update.kind == "refused":
            refused = True
            for d in update.diagnostics:
                emit(d.format())
            session.skip(text)
            continue
        if update.records:
            header()
        for line in update.lines:
            emit(line)
        for rec in update.records:
            tally.add(rec)
            for line in plain.record_output(rec, session.engine):
                emit(line)
    if chunk:
        refused = True
        emit(f"{session.filename}:{len(session.lines) + 1}: error: the input ended inside a "
             "block (a `{` without its `}`)")
    header()
    end = session.end()
    for rec in end:
        for line in plain.record_lines(rec):
            emit(line)
    for line in plain.state_block(session.engine):
        emit(line)
    emit(tally.verdict(session.statements(), session.failed))
    return 2 if refused else (1 if session.failed else 0)

