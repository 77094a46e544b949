"""The plain trace (docs/trace-format.md): deterministic lines, no colour, no addresses."""

from __future__ import annotations

import json
import re

from memcglang.engine.state import (
    MISSING,
    PCG_NAMES,
    PG_NAMES,
    Cost,
    MemCgroup,
    Page,
    ResCounter,
    Reservation,
    SwapEntry,
    Window,
    Zap,
    decode,
)

FORMAT_VERSION = 1
MEMCG_FIELDS = ("usage", "memsw", "max_usage", "memsw_max_usage", "failcnt", "memsw_failcnt",
                "limit", "memsw_limit", "rss", "cache", "rss_huge", "swap", "pgpgin", "pgpgout",
                "css")


def header(filename: str, model: str, swap_account: bool) -> str:
    return (f"# memcglang trace {FORMAT_VERSION}: {filename}, model {model}, "
            f"swap accounting {'on' if swap_account else 'off'}")


def json_header(filename: str, model: str, swap_account: bool) -> str:
    return json.dumps({"format": "memcglang trace", "version": FORMAT_VERSION, "file": filename,
                       "model": model, "swap_accounting": swap_account}, sort_keys=True)


def value(obj, field: str, v) -> str:
    """A field value as the trace shows it."""
    if v is None:
        return "max" if field == "limit" else "none"
    if field == "pc_flags":
        return decode(v, PCG_NAMES)
    if field == "flags" and isinstance(obj, Page):
        return decode(v, PG_NAMES)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (Page, SwapEntry, MemCgroup)):
        return v.name
    if isinstance(v, tuple):
        return "(" + " ".join(value(obj, field, x) for x in v) + ")"
    if isinstance(v, int) or isinstance(v, str):
        return str(v)
    return type(v).__name__


FIELD_NAMES = {"pc_flags": "flags", "pc_memcg": "memcg", "flags": "page", "record": "memcg"}


def change(record) -> str | None:
    """One journal record as `OBJECT FIELD: old -> new`, or None for bookkeeping records."""
    obj, field, old, new = record
    if isinstance(obj, dict):
        if old is MISSING and isinstance(new, (Page, SwapEntry, MemCgroup)):
            kind = {Page: "page", SwapEntry: "swap entry", MemCgroup: "memcg"}[type(new)]
            return f"+ {kind} {new.name}"
        if isinstance(new, Reservation) and not new.local:
            who = new.memcg.name if new.memcg is not None else "NULL"
            return f"+ reservation of {new.page.name} by {new.thread}: {who}"
        if isinstance(old, Reservation) and not old.local:
            return f"- reservation of {old.page.name} by {old.thread}"
        return None  # windows, zaps and carried violations are bookkeeping
    if isinstance(obj, (Cost, Window, Zap)):
        return None
    if isinstance(obj, ResCounter):
        name = f"{obj.memcg.name} {obj.kind}"
        return f"{name}.{field}: {value(obj, field, old)} -> {value(obj, field, new)}"
    if field in ("locker", "head", "in_cache", "readahead", "replaced", "use_hierarchy",
                 "children", "migrating"):
        return None
    name = getattr(obj, "name", "?")
    label = FIELD_NAMES.get(field, field)
    return f"{name}.{label}: {value(obj, field, old)} -> {value(obj, field, new)}"


def event(ev) -> str:
    _pos, kind, name, args = ev
    if kind == "note":
        return f"note: {name}"
    return f"{name}({', '.join(str(a) for a in args if a != '')})"


def record_lines(rec, quiet: bool = False) -> list[str]:
    """The lines of one statement: `pos: text`, its events, its changes, its messages."""
    if quiet:
        if not rec.failed:
            return []
        return [f"{rec.pos}: {rec.text}", *("  " + m for m in _indent(rec.messages))]
    out = [f"{rec.pos}: {rec.text}"]
    for result in rec.results:
        out.extend(fold_tails(step_lines(result)))
    out.extend("  " + m for m in _indent(rec.messages))
    return out


TAIL = re.compile(r"\b([A-Za-z_]\w*)\.(\d+)\b")


def fold_tails(lines: list[str]) -> list[str]:
    """Fold a run of 3 or more consecutive tails of one huge page whose lines are the same
    but for the tail number into one, `H.[1-511]` (docs/trace-format.md): a split's 511 tails
    read as one line each, not 511."""
    groups: list[tuple[str | None, int, list[str]]] = []  # (head, tail, pattern lines)
    for line in lines:
        refs = set(TAIL.findall(line))
        if len(refs) == 1:
            head, n = next(iter(refs))
            pattern = line.replace(f"{head}.{n}", f"{head}.#")
            if groups and groups[-1][0] == head and groups[-1][1] == int(n):
                groups[-1][2].append(pattern)
                continue
            groups.append((head, int(n), [pattern]))
        else:
            groups.append((None, 0, [line]))
    out: list[str] = []
    i = 0
    while i < len(groups):
        head, first, pattern = groups[i]
        step = 1
        if i + 1 < len(groups) and groups[i + 1][1] == first - 1:
            step = -1  # a run freed last-first (release_pages' list) reads high to low
        j = i + 1
        while (head is not None and j < len(groups) and groups[j][0] == head
               and groups[j][1] == first + step * (j - i) and groups[j][2] == pattern):
            j += 1
        if head is None:
            out.extend(pattern)
        elif j - i >= 3:
            last = first + step * (j - i - 1)
            out.extend(p.replace(f"{head}.#", f"{head}.[{first}-{last}]") for p in pattern)
        else:
            for _, n, lines_ in groups[i:j]:
                out.extend(p.replace(f"{head}.#", f"{head}.{n}") for p in lines_)
        i = j
    return out


def step_lines(result) -> list[str]:
    """A step's kernel calls, each followed (indented) by the changes it made."""
    out: list[str] = []
    changes = result.changes
    k = 0
    for ev in result.events:
        pos = ev[0] - result.start
        while k < pos and k < len(changes):
            text = change(changes[k])
            if text is not None:
                out.append("    " + text if out else "  " + text)
            k += 1
        out.append("  " + event(ev))
    for r in changes[k:]:
        text = change(r)
        if text is not None:
            out.append("    " + text if out else "  " + text)
    return out


def _indent(messages: list[str]) -> list[str]:
    lines: list[str] = []
    for m in messages:
        lines.extend(m.splitlines())
    return lines


def state_lines(engine, target=None) -> list[str]:
    """The state: memcgs with counters and statistics, live pages, swap entries, cost."""
    out = []
    if target is None or target in engine.memcgs:
        for name in ([target] if target else engine.memcgs):
            v = engine.memcg_view(name)
            fields = " ".join(f"{f} {v[f]}" for f in MEMCG_FIELDS)
            if name == "root":
                fields += f" reported_usage {v['reported_usage']}"
            out.append(f"memcg {name}: {fields}")
    if target is None or target in engine.pages:
        for name in ([target] if target else engine.pages):
            v = engine.page_view(name)
            if v["freed"] and target is None:
                continue
            if v["freed"]:
                out.append(f"page {name}: freed")
                continue
            out.append(
                f"page {name}: flags {v['flags']} memcg {v['memcg']} refcount {v['refcount']} "
                f"mapcount {v['mapcount']} page {v['page']} isolated {v['isolated']} "
                f"kind {v['kind']} huge {v['huge']} entry {v['entry']}"
            )
    if target is None or target in engine.entries:
        for name in ([target] if target else engine.entries):
            v = engine.entry_view(name)
            if v["freed"] and target is None:
                continue
            out.append(f"swap entry {name}: memcg {v['memcg']} count {v['count']} "
                       f"page {v['page']}" + (" freed" if v["freed"] else ""))
    out = fold_tails(out)
    if target in (None, "cost"):
        c = engine.cost_view()
        out.append(f"cost: res_counter {c['res_counter']} pc_lock {c['pc_lock']} "
                   f"batches {c['batches']}")
    return out


def verdict(statements: int, events: int, passed: int, failed: int) -> str:
    return (f"{statements} statements, {events} events, {passed} expects passed, "
            f"{failed} failed")


class Tally:
    """The verdict line's totals, record by record (run, the REPL's piped input, diff)."""

    def __init__(self):
        self.events = self.passed = self.failed = 0

    def add(self, rec) -> None:
        self.events += sum(len(r.events) for r in rec.results)
        self.passed += rec.expects_passed
        self.failed += rec.expects_failed

    def verdict(self, statements: int, run_failed: bool | None = None) -> str:
        """The verdict line; with `run_failed`, marked ` -- FAILED` when the run failed."""
        line = verdict(statements, self.events, self.passed, self.failed)
        return line + (" -- FAILED" if run_failed else "")


def state_block(engine) -> list[str]:
    """The `state:` block that ends a plain trace (an engine that never ran shows none)."""
    return ["state:", *("  " + line for line in (state_lines(engine) if engine else ()))]


def record_output(rec, engine, quiet: bool = False) -> list[str]:
    """A record's lines as `run` prints them: the statement, its trace and messages, and
    for `show` the state lines of its target."""
    lines = record_lines(rec, quiet)
    if rec.outcome == "show" and not quiet:
        lines += ["  " + line for line in state_lines(engine, rec.show)]
    return lines


def json_verdict(verdict_line: str, failed: bool) -> str:
    return json.dumps({"verdict": verdict_line, "failed": failed}, sort_keys=True)


def record_json(rec) -> str:
    """One statement as a JSON object (one line)."""
    return json.dumps({
        "pos": rec.pos,
        "line": rec.line,
        "statement": rec.text,
        "outcome": rec.outcome,
        "events": [event(ev) for r in rec.results for ev in r.events],
        "changes": [c for r in rec.results for c in map(change, r.changes) if c is not None],
        "messages": _indent(rec.messages),
        "expects_passed": rec.expects_passed,
        "expects_failed": rec.expects_failed,
    }, sort_keys=True)
