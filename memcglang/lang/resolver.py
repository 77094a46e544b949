"""Static checks between parsing and running: every error of a file, reported at once.

Setup order (LANGUAGE §3.1), names and their kinds (a page, a swap entry, a memcg, a thread:
one namespace, never rebound), names used before they exist or never bound ("did you mean"),
sizes that are not whole pages, `repeat` counts and variables, thread structure (§3.7),
and `expect` fields and values against their target (§3.6).

Names written with templates (`P{i}`, `P{i+1}`) bind and match name *families*: whether a
particular `P7` exists is known only when the repeat runs, and the interpreter reports it
with `file:line[i=7]`.
"""

from __future__ import annotations

import difflib
import re

import attrs

from memcglang.lang import ast
from memcglang.lang.ast import TEMPLATE
from memcglang.lang.diagnostics import Diagnostic, StaticErrors
from memcglang.lang.verbs import BY_CLASS, ENTRY, MEMCG, PAGE

MAX_REPEAT = 1_000_000
MAX_STATEMENTS = 10_000_000  # statements a file may run, repeats unrolled (about 3 min)
SETUP = (ast.Model, ast.Swapaccount, ast.Memcg)
PAGE_FIELDS = {"flags", "memcg", "refcount", "mapcount", "page", "isolated", "kind", "huge",
               "entry", "freed"}
MEMCG_FIELDS = {"usage", "memsw", "max_usage", "memsw_max_usage", "failcnt", "memsw_failcnt",
                "limit", "memsw_limit", "rss", "cache", "rss_huge", "swap", "pgpgin", "pgpgout",
                "css", "reported_usage"}
ENTRY_FIELDS = {"memcg", "count", "page", "freed"}
COST_FIELDS = {"res_counter", "pc_lock", "batches"}
FIELDS = {PAGE: PAGE_FIELDS, MEMCG: MEMCG_FIELDS, ENTRY: ENTRY_FIELDS, "cost": COST_FIELDS}
PCG_FLAGS = {"USED", "MEM", "MEMSW", "MIGRATION"}
PG_FLAGS = {"lru", "locked", "swapcache"}
SIZE = re.compile(r"(-?)([0-9]{1,18})([KkMmGg]?)")  # more digits: no size, an error
UNIT = {"": None, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
PAGE_SIZE = 4096
# the tails of a split huge page: P.1 ... P.511
TAIL = r"\.(?:[1-9]|[1-9][0-9]|[1-4][0-9][0-9]|50[0-9]|51[01])"


def size_in_pages(text: str) -> int | None:
    """`16` pages, `64K`/`2M`/`1G` bytes (whole pages only); None if not whole pages."""
    m = SIZE.fullmatch(text)
    if not m:
        return None
    sign = -1 if m.group(1) else 1
    n = int(m.group(2))
    unit = UNIT[m.group(3).lower()]
    if unit is None:
        return sign * n
    if n * unit % PAGE_SIZE:
        return None
    return sign * n * unit // PAGE_SIZE


@attrs.define
class Resolution:
    """What the resolver learnt that the interpreter needs."""

    model: str | None = None
    swapaccount: bool = True
    threads: list[str] = attrs.Factory(list)


def a(kind: str) -> str:
    """`a page`, `an entry`."""
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _shape(text: str) -> str:
    return TEMPLATE.sub("{}", text)


def _pattern(text: str) -> re.Pattern:
    """The concrete names a templated name can stand for."""
    parts = TEMPLATE.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 3 == 0:
            out.append(re.escape(part))
        elif i % 3 == 1:
            out.append("-?[0-9]+")
    return re.compile("".join(out))


@attrs.define
class Names:
    """Bound names: concrete ones and families (templated names, split tails)."""

    concrete: dict[str, tuple[str, int]] = attrs.Factory(dict)  # name -> (kind, line)
    families: list[tuple[str, re.Pattern, str, int]] = attrs.Factory(list)  # shape, re, kind, line

    def copy(self) -> Names:
        return Names(dict(self.concrete), list(self.families))

    def lookup(self, text: str) -> tuple[str, int] | None:
        if "{" not in text:
            found = self.concrete.get(text)
            if found:
                return found
            for _family, pattern, kind, line in self.families:
                if pattern.fullmatch(text):
                    return kind, line
            return None
        shape = _shape(text)
        pattern = _pattern(text)
        instance = TEMPLATE.sub("1", text)  # e.g. H.{i+1} -> H.1, for the split-tail families
        for fam_shape, fam_pattern, kind, line in self.families:
            if fam_shape == shape or fam_pattern.fullmatch(instance):
                return kind, line
        for name, (kind, line) in self.concrete.items():
            if pattern.fullmatch(name):
                return kind, line
        return None

    def bind(self, text: str, kind: str, line: int) -> None:
        if "{" in text:
            self.families.append((_shape(text), _pattern(text), kind, line))
        else:
            self.concrete[text] = (kind, line)

    def bind_family(self, regex: str, kind: str, line: int) -> None:
        self.families.append((regex, re.compile(regex), kind, line))

    def of_kind(self, kind: str) -> list[str]:
        names = [n for n, (k, _) in self.concrete.items() if k == kind]
        return names + [shape for shape, _p, k, _l in self.families if k == kind]


class Resolver:
    def __init__(self, program: ast.Program, max_repeat: int = MAX_REPEAT,
                 max_statements: int = MAX_STATEMENTS):
        self.program = program
        self.max_repeat = max_repeat
        self.max_statements = max_statements
        # names a swapin/readahead `as Q` bound (LANGUAGE §3.4: E's swap-cache page): in the
        # thread being resolved, and in the threads before it
        self.thread_may: set[str] = set()
        self.may_bound: set[str] = set()
        self.errors: list[Diagnostic] = []
        self.result = Resolution()
        self.names = Names()
        self.names.bind("root", MEMCG, 0)
        self.setup_done = False
        self.seen_model: ast.Model | None = None
        self.seen_swapaccount: ast.Swapaccount | None = None
        self.memcgs_declared = 0
        self.in_threads = False
        self.thread_base: Names | None = None  # the names before the first thread block
        self.all_thread_names: Names | None = None
        self.later: dict[str, int] = {}  # names some statement binds -> its first line
        self._scan(program.stmts)

    def _scan(self, stmts) -> None:
        """What the whole file says up front: its swapaccount, and where each name is bound
        (so a name used before its binding is told apart from a name never bound)."""
        for stmt in stmts:
            if isinstance(stmt, ast.Swapaccount):  # memsw_limit checks need it
                self.result.swapaccount = stmt.on
            verb = BY_CLASS.get(type(stmt))
            for attr, _kind in (verb.binds + verb.may_bind) if verb else ():
                name = getattr(stmt, attr)
                if name is not None:
                    self.later.setdefault(name.text, name.line)
            if isinstance(stmt, ast.Memcg):
                self.later.setdefault(stmt.path.text, stmt.line)
            for attr in ("body",):
                if hasattr(stmt, attr):
                    self._scan(getattr(stmt, attr))
            for attr in ("stmt",):
                if hasattr(stmt, attr):
                    self._scan((getattr(stmt, attr),))

    # -- incremental use (the REPL) ---------------------------------------------------------
    def snapshot(self) -> tuple:
        """What resolving more statements can change, to put back with `restore`."""
        base, seen = self.thread_base, self.all_thread_names
        return (self.names.copy(), self.setup_done, self.seen_model, self.seen_swapaccount,
                self.memcgs_declared, self.in_threads, base.copy() if base else None,
                seen.copy() if seen else None,
                attrs.evolve(self.result, threads=list(self.result.threads)),
                set(self.may_bound))

    def restore(self, snap: tuple) -> None:
        (self.names, self.setup_done, self.seen_model, self.seen_swapaccount,
         self.memcgs_declared, self.in_threads, self.thread_base, self.all_thread_names,
         self.result, self.may_bound) = snap
        self.names = self.names.copy()  # the snapshot stays reusable
        self.may_bound = set(self.may_bound)

    def resolve_more(self, program: ast.Program) -> list[tuple]:
        """Resolve `program`'s statements after everything resolved so far (a REPL line);
        the snapshot before each top-level statement. On errors nothing is kept and
        StaticErrors is raised."""
        before = self.snapshot()
        self.program = program
        self.errors = []
        self.later = {}
        self._scan(program.stmts)
        snaps = []
        for stmt in program.stmts:
            snaps.append(self.snapshot() if snaps else before)
            self.top(stmt)
        if self.errors:
            self.restore(before)
            raise StaticErrors(self.errors)
        return snaps

    # -- reporting --------------------------------------------------------------------------
    def error(self, line: int, col: int, width: int, message: str, hint: str | None = None):
        self.errors.append(
            Diagnostic(self.program.filename, line, col, message, self.program.line(line),
                       width, hint)
        )

    def error_at(self, node, message: str, hint: str | None = None, width: int | None = None):
        if width is None:
            width = len(getattr(node, "text", "")) or 1
        self.error(node.line, node.col, width, message, hint)

    # -- entry ------------------------------------------------------------------------------
    def resolve(self) -> Resolution:
        total = 0
        for stmt in self.program.stmts:
            self.top(stmt)
            total += unrolled(stmt)
            if total > self.max_statements:
                self.error_at(stmt, f"the file would run {total:,} statements by here; the "
                              f"bound is {self.max_statements:,}",
                              "lower the repeat counts: a file runs at most that many "
                              "statements (about three minutes)",
                              width=self._verb_width(stmt))
                break
        if self.errors:
            raise StaticErrors(self.errors)
        return self.result

    def top(self, stmt: ast.Stmt) -> None:
        if isinstance(stmt, ast.Thread):
            self.thread(stmt)
            return
        if self.in_threads and not postcondition(stmt):
            self.error_at(stmt, "after the thread blocks only `expect` and `show` may follow",
                          "a file with threads is: setup, thread blocks, postconditions",
                          width=self._verb_width(stmt))
        self.stmt(stmt, env=())

    def thread(self, stmt: ast.Thread) -> None:
        if not self.in_threads:
            self.in_threads = True
            self.thread_base = self.names.copy()
            self.all_thread_names = Names()
        self.setup_done = True
        name = stmt.name
        if not self.check_vars(name, ()):
            return
        if name.text == "main":
            self.error_at(name, "`main` is the setup's thread (LANGUAGE §3.7)",
                          "name the thread after what it does: `thread kswapd {`")
            return
        self.bind(name, "thread")
        self.result.threads.append(name.text)
        outer = self.names
        self.names = self.thread_base.copy()
        self.names.concrete.update(
            {k: v for k, v in outer.concrete.items() if v[0] == "thread"}
        )
        self.thread_may = set()
        for inner in stmt.body:
            self.stmt(inner, env=())
        # names bound in threads are visible to the postcondition; one namespace, so a name
        # bound by two threads is bound twice (but two `swapin E as Q` name one page)
        merged = outer
        for k, v in self.names.concrete.items():
            if k in self.thread_may and k in self.may_bound and (
                    self.all_thread_names.concrete[k][0] == v[0]):
                continue
            if k in self.all_thread_names.concrete and v != self.all_thread_names.concrete[k]:
                line = v[1]
                col = self.program.line(line).find(k) + 1 or 1
                kind, first = self.all_thread_names.concrete[k]
                self.error(line, col, len(k), f"{k} is already bound ({a(kind)}, on line {first})",
                           "a name is bound once and never reused, in any thread")
            elif k not in self.thread_base.concrete:
                self.all_thread_names.concrete[k] = v
            merged.concrete.setdefault(k, v)
        merged.families.extend(f for f in self.names.families if f not in merged.families)
        self.names = merged
        self.may_bound |= self.thread_may

    # -- statements -------------------------------------------------------------------------
    def stmt(self, stmt: ast.Stmt, env: tuple[str, ...], in_zap: bool = False) -> None:
        if isinstance(stmt, SETUP):
            self.setup(stmt)
            return
        self.setup_done = True
        if isinstance(stmt, ast.Thread):
            self.error_at(stmt, "a thread block stands at the top level only",
                          width=self._verb_width(stmt))
            return
        if isinstance(stmt, ast.Repeat):
            self.repeat(stmt, env, in_zap)
            return
        if isinstance(stmt, (ast.Zap, ast.Batch, ast.OnlyBlock)):
            if isinstance(stmt, ast.Zap) and in_zap:
                self.error_at(stmt, "zap blocks do not nest", width=3)
            for inner in stmt.body:
                self.stmt(inner, env, in_zap or isinstance(stmt, ast.Zap))
            return
        if isinstance(stmt, ast.Only):
            self.stmt(stmt.stmt, env, in_zap)
            return
        if isinstance(stmt, ast.ExpectOutcome):
            inner = stmt.stmt
            if isinstance(inner, (ast.Expect, ast.ExpectOutcome, ast.Show, ast.Only)):
                self.error_at(inner, "`expect …:` takes a statement that changes the state",
                              width=self._verb_width(inner))
                return
            if isinstance(inner, (ast.Repeat, ast.Thread, ast.OnlyBlock)):
                self.error_at(inner, "`expect …:` takes a statement, or a zap or batch block "
                              "(whose end it judges), not this block",
                              width=self._verb_width(inner),
                              hint="put `expect …:` on a statement inside the block")
                return
            self.stmt(inner, env, in_zap)
            return
        if isinstance(stmt, ast.Expect):
            self.expect(stmt, env)
            return
        if isinstance(stmt, ast.Show):
            if stmt.target is not None and not isinstance(stmt.target, ast.Cost):
                self.target_kind(stmt.target, env)
            return
        self.action(stmt, env)

    def _verb_width(self, stmt: ast.Stmt) -> int:
        line = self.program.line(stmt.line)
        m = re.match(r"[A-Za-z_]+", line[stmt.col - 1 :])
        return len(m.group(0)) if m else 1

    def setup(self, stmt: ast.Stmt) -> None:
        verb = BY_CLASS[type(stmt)].name
        if self.setup_done:
            self.error_at(stmt, f"`{verb}` must come before every other statement",
                          "setup statements (model, swapaccount, memcg) open the file",
                          width=len(verb))
        if isinstance(stmt, ast.Model):
            if self.seen_model:
                self.error_at(stmt, "`model` is given twice",
                              f"the first is on line {self.seen_model.line}", width=5)
            self.seen_model = stmt
            self.result.model = stmt.model
        elif isinstance(stmt, ast.Swapaccount):
            if self.seen_swapaccount:
                self.error_at(stmt, "`swapaccount` is given twice",
                              f"the first is on line {self.seen_swapaccount.line}", width=11)
            self.seen_swapaccount = stmt
        else:
            self.memcg(stmt)

    def memcg(self, stmt: ast.Memcg) -> None:
        path = stmt.path
        names = [n.text for n in path.names]
        if names[0] == "root" and len(names) > 1:
            names = names[1:]
        for n in path.names:
            if n.templated:
                self.error_at(n, "a memcg is declared with a plain name")
                return
        self.memcgs_declared += 1
        if names == ["root"]:
            if self.memcgs_declared > 1:
                self.error_at(path, "`memcg root` must be the first memcg statement")
            for s in stmt.settings:
                if s.key != "hierarchy":
                    self.error_at(s, "limits cannot be set on root", width=len(s.key))
            return
        parent = "/".join(names[:-1])
        if parent and parent not in self.names.concrete:
            self.error_at(path, f"memcg {parent} is not declared before {'/'.join(names)}",
                          f"declare `memcg {parent}` first")
        full = "/".join(names)
        self.bind(ast.Name(full, path.line, path.col), MEMCG, width=len(path.text))
        self.settings(stmt.settings)

    def settings(self, settings) -> None:
        for s in settings:
            if s.key in ("limit", "memsw_limit") and s.value != "max":
                pages = size_in_pages(s.value)
                if pages is None or pages < 0:
                    self.error(s.line, s.col, len(s.key) + 1 + len(s.value),
                               f"{s.key}={s.value} is not a whole number of pages",
                               "a size is a page count (16), bytes in whole 4K pages "
                               "(64K, 2M, 1G), or max")
            if s.key == "memsw_limit" and not self.result.swapaccount:
                self.error(s.line, s.col, len(s.key), "memsw_limit needs swap accounting",
                           "remove `swapaccount off`")

    def repeat(self, stmt: ast.Repeat, env: tuple[str, ...], in_zap: bool) -> None:
        count_ok = stmt.count_text.isdigit()
        if not count_ok or stmt.count > self.max_repeat:
            col = stmt.col + len("repeat ")
            self.error(stmt.line, col, len(stmt.count_text),
                       f"repeat count {stmt.count_text} must be a whole number from 0 to "
                       f"{self.max_repeat:,}")
        var = stmt.var.text
        if var in env:
            self.error_at(stmt.var, f"the repeat variable {var} is already in use here",
                          "nested repeats need distinct variables")
        for inner in stmt.body:
            self.stmt(inner, env + (var,), in_zap)

    # -- names ------------------------------------------------------------------------------
    def bind(self, name: ast.Name, kind: str, width: int | None = None) -> None:
        found = self.names.lookup(name.text) if not name.templated else None
        if found is None and name.templated:
            found = next(
                ((k, line) for shape, _p, k, line in self.names.families
                 if shape == _shape(name.text)), None)
        if found is not None:
            old_kind, line = found
            what = f"{a(old_kind)}, on line {line}" if line else "the root memcg"
            self.error_at(name, f"{name.text} is already bound ({what})",
                          "a name is bound once and never reused", width=width)
            return
        self.names.bind(name.text, kind, name.line)

    def check_vars(self, name: ast.Name, env: tuple[str, ...]) -> bool:
        for var in name.variables():
            if var not in env:
                self.error_at(name, f"{{{var}}} is used outside a `repeat … as {var}`")
                return False
        return True

    def use(self, name: ast.Name, kind: str, env: tuple[str, ...]) -> None:
        if not self.check_vars(name, env):
            return
        found = self.names.lookup(name.text)
        kinds = kind.split("|")
        if found is None:
            if name.text in self.later and self.later[name.text] >= name.line:
                self.error_at(name, f"{name.text} is used before it exists",
                              f"it is bound on line {self.later[name.text]}")
                return
            candidates = [c for k in kinds for c in self.names.of_kind(k)]
            close = difflib.get_close_matches(name.text, candidates, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else None
            self.error_at(name, f"unknown {' or '.join(kinds)} {name.text}", hint)
            return
        if found[0] not in kinds:
            self.wrong_kind(name, found[0], kinds)

    def wrong_kind(self, node, actual: str, wanted) -> None:
        """`P is a page, not an entry`."""
        self.error_at(node, f"{node.text} is {a(actual)}, not {' or '.join(a(k) for k in wanted)}")

    def use_memcg(self, path: ast.Path, env: tuple[str, ...]) -> None:
        names = list(path.names)
        if len(names) > 1 and names[0].text == "root":
            names = names[1:]
        text = "/".join(n.text for n in names)
        for n in names:
            if not self.check_vars(n, env):
                return
        found = self.names.lookup(text)
        if found is None:
            close = difflib.get_close_matches(text, self.names.of_kind(MEMCG), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "declare it with `memcg`"
            self.error_at(path, f"unknown memcg {path.text}", hint)
        elif found[0] != MEMCG:
            self.wrong_kind(path, found[0], (MEMCG,))

    def action(self, stmt: ast.Stmt, env: tuple[str, ...]) -> None:
        verb = BY_CLASS[type(stmt)]
        for attr, kind in verb.uses:
            value = getattr(stmt, attr)
            if value is None:
                continue
            if kind == MEMCG:
                self.use_memcg(value, env)
            elif isinstance(value, tuple):
                for name in value:
                    self.use(name, kind, env)
            else:
                self.use(value, kind, env)
        if isinstance(stmt, ast.Set):
            if stmt.path.text in ("root", "root/"):
                self.error_at(stmt.path, "limits cannot be set on root")
            self.settings(stmt.settings)
        for attr, kind in verb.may_bind:  # swapin/readahead `as Q`: Q may exist already
            name = getattr(stmt, attr)
            if not self.check_vars(name, env):
                continue
            found = self.names.lookup(name.text)
            if found is None:
                self.names.bind(name.text, kind, name.line)
                self.thread_may.add(name.text)
            elif found[0] != kind:
                self.wrong_kind(name, found[0], (kind,))
        for attr, kind in verb.binds:
            name = getattr(stmt, attr)
            if name is not None and self.check_vars(name, env):
                self.bind(name, kind)
        if isinstance(stmt, ast.Split):
            base = stmt.page.text
            regex = re.escape(base) if "{" not in base else _pattern(base).pattern
            self.names.bind_family(regex + TAIL, PAGE, stmt.line)

    # -- expect -----------------------------------------------------------------------------
    def target_kind(self, target, env) -> str | None:
        if isinstance(target, ast.Cost):
            return "cost"
        if len(target.names) > 1:
            self.use_memcg(target, env)
            return MEMCG
        name = target.names[0]
        if not self.check_vars(name, env):
            return None
        found = self.names.lookup(name.text)
        if found is None:
            candidates = self.names.of_kind(PAGE) + self.names.of_kind(ENTRY) + \
                self.names.of_kind(MEMCG)
            close = difflib.get_close_matches(name.text, candidates, n=1, cutoff=0.6)
            self.error_at(name, f"unknown name {name.text}",
                          f"did you mean {close[0]}?" if close else None)
            return None
        if found[0] == "thread":
            self.error_at(name, f"{name.text} is a thread; expect a page, memcg or swap entry")
            return None
        return found[0]

    def expect(self, stmt: ast.Expect, env) -> None:
        kind = self.target_kind(stmt.target, env)
        if kind is None:
            return
        allowed = FIELDS[kind]
        for check in stmt.checks:
            if check.field not in allowed:
                self.error(check.line, check.col, len(check.field),
                           f"{check.field} is not a field of {a(kind)}",
                           f"{kind} fields: {', '.join(sorted(allowed))}")
                continue
            self.value(kind, check, env)

    def value(self, kind: str, check: ast.Check, env) -> None:
        field, v = check.field, check.value
        if field == "freed":
            return
        if v is None:
            return

        def bad(expected: str):
            self.error(v.line, v.col, len(v.text), f"{v.text} is not a value of {field}",
                       f"expected {expected}")

        if field == "flags":
            words = v.text.split("|")
            if v.text != "none" and not set(words) <= PCG_FLAGS:
                bad("PCG flags joined by | (USED|MEM|MEMSW, MIGRATION) or none")
        elif field == "page" and kind == PAGE:
            words = v.text.split("|")
            if v.text != "none" and not set(words) <= PG_FLAGS:
                bad("page flags joined by | (lru, locked, swapcache) or none")
        elif field in ("isolated", "huge"):
            if v.text not in ("yes", "no"):
                bad("yes or no")
        elif field == "kind":
            if v.text not in ("anon", "file", "shmem"):
                bad("anon, file or shmem")
        elif field == "memcg":
            if v.text != "none":
                if v.kind != "path":
                    bad("a memcg or none")
                else:
                    self.use_memcg(v.path, env)
        elif field == "entry" or (field == "page" and kind == ENTRY):
            if v.text != "none":
                if v.kind != "path" or len(v.path.names) != 1:
                    bad("a name or none")
                else:
                    self.use(v.path.names[0], ENTRY if field == "entry" else PAGE, env)
        elif field in ("limit", "memsw_limit"):
            if v.text != "max" and (v.kind != "number" or size_in_pages(v.text) is None):
                bad("a size (pages, or whole 4K pages in K/M/G) or max")
        elif v.kind != "number":
            bad("a number")
        elif kind == MEMCG and size_in_pages(v.text) is None:
            bad("a number of pages, or bytes in whole 4K pages (12K)")
        elif kind != MEMCG and not re.fullmatch(r"-?[0-9]{1,18}", v.text):
            bad("a number of at most 18 digits" if re.fullmatch(r"-?[0-9]+", v.text)
                else "a number")


def unrolled(stmt: ast.Stmt) -> int:
    """How many statements `stmt` runs, its repeats unrolled (a block's braces count one each)."""
    if isinstance(stmt, ast.Repeat):
        return stmt.count * sum(map(unrolled, stmt.body))
    if isinstance(stmt, ast.Only):
        return unrolled(stmt.stmt)
    body = getattr(stmt, "body", None)
    if body is not None:
        return 2 + sum(map(unrolled, body))
    return 1


def resolve(program: ast.Program, max_repeat: int = MAX_REPEAT) -> Resolution:
    """Check a parsed program; raise StaticErrors with every error found."""
    return Resolver(program, max_repeat).resolve()


def postcondition(stmt: ast.Stmt) -> bool:
    """`expect` and `show`, also under `only` (what may follow the thread blocks)."""
    if isinstance(stmt, ast.Only):
        return postcondition(stmt.stmt)
    if isinstance(stmt, ast.OnlyBlock):
        return all(postcondition(s) for s in stmt.body)
    return isinstance(stmt, (ast.Expect, ast.Show))
