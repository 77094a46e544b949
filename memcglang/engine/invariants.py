"""The invariants of SEMANTICS §5, checked incrementally after every step.

The checker reads the journal records a step wrote, so its cost follows the step's changes,
not the number of pages. From the records it keeps per-memcg sums over page state (`Derived`:
pages holding res/memsw charges, USED pages by type, swap records, reservations, deferred
uncharges) and the expected usage of every res_counter over its hierarchy; then it checks the
objects the step touched. A violation names the invariant, the object, and both numbers.
Violations are kept and carried: one already reported with the same discrepancy is not new.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memcglang.engine.errors import InvariantViolation
from memcglang.engine.state import (
    HPAGE_PMD_NR,
    MISSING,
    NO_WARNINGS,
    PCG_USED,
    MemCgroup,
    Page,
    PG_locked,
    PG_lru,
    PG_swapcache,
    ResCounter,
    Reservation,
    SwapEntry,
    Window,
)

if TYPE_CHECKING:
    from memcglang.engine.mm import Engine

CONTRIB_FIELDS = frozenset(("pc_flags", "pc_memcg", "huge", "migrating"))
RES_SUMS = frozenset(("mem", "inflight", "deferred"))  # the Derived sums res holds
MEMSW_SUMS = frozenset(("memsw", "recs", "inflight_memsw", "deferred_memsw"))
# the page fields I3/I4 read (refcount, locker, isolated, entry, in_cache, mapping do not)
PAGE_CHECK_FIELDS = frozenset(
    ("pc_flags", "pc_memcg", "huge", "freed", "mapcount", "flags", "readahead", "replaced",
     "migrating")
)
WINDOW_FIELDS = frozenset(("memcg", "nr_pages", "memsw_nr_pages"))
MEMCG_STAT_FIELDS = frozenset(("cache", "rss", "rss_huge", "swap", "pgpgin", "pgpgout", "css"))


class Checker:
    """Keeps the derived sums and checks I1-I11 on what a step changed."""

    def __init__(self, mm: Engine):
        self.mm = mm
        self.write = mm.j.w

    # -- page contributions -----------------------------------------------------------------
    def contrib(self, kind: str, pc_flags: int, memcg: MemCgroup | None, huge: bool,
                migrating: str | None = None):
        """What one page adds to its memcg's sums: (memcg, mem, memsw, anon, file, huge, used)."""
        if memcg is None or not pc_flags:
            return None
        res, memsw = self.mm.model.holds_charge(pc_flags, migrating)
        nr = HPAGE_PMD_NR if huge else 1
        used = pc_flags & PCG_USED
        anon = kind == "anon"
        return (
            memcg,
            nr if res else 0,
            nr if memsw else 0,
            nr if used and anon else 0,
            nr if used and not anon else 0,
            HPAGE_PMD_NR if used and huge else 0,
            1 if used else 0,
        )

    def _add(self, obj, field: str, delta: int, touched: dict) -> None:
        """Add to one of a memcg's sums; note what it does to its res and memsw charges."""
        if delta:
            self.write(obj, field, getattr(obj, field) + delta)
            acc = touched.get(obj.memcg)
            if acc is None:
                acc = touched[obj.memcg] = [0, 0]
            if field in RES_SUMS:
                acc[0] += delta
            elif field in MEMSW_SUMS:
                acc[1] += delta

    def _apply_page(self, c, sign: int, touched: dict) -> None:
        if c is None:
            return
        d = c[0].d
        add = self._add
        add(d, "mem", sign * c[1], touched)
        add(d, "memsw", sign * c[2], touched)
        add(d, "used_anon", sign * c[3], touched)
        add(d, "used_file", sign * c[4], touched)
        add(d, "used_huge", sign * c[5], touched)
        add(d, "used_entries", sign * c[6], touched)

    # -- the check --------------------------------------------------------------------------
    def check(self, records: list) -> list[InvariantViolation]:
        """Check what the step that wrote `records` changed; return the new violations."""
        # fast path: a step that wrote only page fields no accounting sum depends on
        pages: set[Page] = set()
        for rec in records:
            obj = rec[0]
            if obj.__class__ is not Page:
                return self._check(records)
            field = rec[1]
            if field in PAGE_CHECK_FIELDS:
                if field in CONTRIB_FIELDS:
                    return self._check(records)
                pages.add(obj)
        mm = self.mm
        warnings = mm.warnings
        if not pages and not warnings:
            return []
        mm.warnings = NO_WARNINGS
        found: list[InvariantViolation] = list(warnings)
        check_page = self.check_page
        for page in pages:
            check_page(page, found)
        if not found and not mm.known:
            return found
        return self._new_ones(found, (), pages, ())

    def _check(self, records: list) -> list[InvariantViolation]:
        mm = self.mm
        # The derived sums are state the checker keeps; they go through the journal only when
        # a mark (undo, backtracking) may roll back past this step. Without one, nothing can:
        # a refused step is rolled back before the checker runs.
        self.write = mm.j.w if mm.j.marks else setattr
        pages: set[Page] = set()
        page_olds: dict[Page, dict] = {}  # pages whose accounting fields changed
        window_olds: dict[Window, dict] = {}
        entries: dict[SwapEntry, dict] = {}  # entry -> its record before the step
        memcgs: set[MemCgroup] = set()
        res_deltas: list[tuple[Reservation, int]] = []
        for obj, field, old, new in records:
            cls = obj.__class__
            if cls is Page:
                pages.add(obj)
                if field in CONTRIB_FIELDS:
                    olds = page_olds.get(obj)
                    if olds is None:
                        page_olds[obj] = {field: old}
                    elif field not in olds:
                        olds[field] = old
            elif cls is ResCounter:
                if field != "expected":
                    memcgs.add(obj.memcg)
            elif cls is MemCgroup:
                if field in MEMCG_STAT_FIELDS:
                    memcgs.add(obj)
            elif cls is SwapEntry:
                olds = entries.get(obj)
                if olds is None:
                    olds = entries[obj] = {}
                if field == "record" and field not in olds:
                    olds[field] = old
            elif cls is Window:
                olds = window_olds.setdefault(obj, {})
                if field in WINDOW_FIELDS and field not in olds:
                    olds[field] = old
            elif cls is dict:
                if old is MISSING and new.__class__ is Page:
                    pages.add(new)
                    page_olds[new] = {"_created": True}
                elif new.__class__ is Reservation:
                    res_deltas.append((new, 1))
                    if old is not MISSING:
                        res_deltas.append((old, -1))
                elif old.__class__ is Reservation:
                    res_deltas.append((old, -1))
                elif old is MISSING and new.__class__ is SwapEntry:
                    entries.setdefault(new, {"record": None})
                elif old is MISSING and new.__class__ is Window:
                    window_olds.setdefault(new, {"memcg": None, "nr_pages": 0, "memsw_nr_pages": 0})

        touched: dict[MemCgroup, list[int]] = {}  # memcg -> [res delta, memsw delta]
        # pages: old contribution out, new in
        for page, olds in page_olds.items():
            if olds.get("_created"):
                old_c = None
                if page.head is not None and page.pc_flags & PCG_USED:
                    self._add(page.pc_memcg.d, "split_adj", 1, touched)
            else:
                old_c = self.contrib(
                    page.kind,
                    olds.get("pc_flags", page.pc_flags),
                    olds.get("pc_memcg", page.pc_memcg),
                    olds.get("huge", page.huge),
                    olds.get("migrating", page.migrating),
                )
            new_c = self.contrib(page.kind, page.pc_flags, page.pc_memcg, page.huge,
                                 page.migrating)
            if old_c != new_c:
                self._apply_page(old_c, -1, touched)
                self._apply_page(new_c, 1, touched)
        # swap records
        for entry, olds in entries.items():
            old_record = olds.get("record", entry.record)
            if old_record is not entry.record:
                if old_record is not None:
                    self._add(old_record.d, "recs", -1, touched)
                if entry.record is not None:
                    self._add(entry.record.d, "recs", 1, touched)
        # reservations in flight
        for r, sign in res_deltas:
            pages.add(r.page)  # I4 allows a mapped uncharged page only while it is reserved
            if r.memcg is not None:
                self._add(r.memcg.d, "inflight", sign * r.nr, touched)
                if r.memsw:
                    self._add(r.memcg.d, "inflight_memsw", sign * r.nr, touched)
        # uncharges held back by open windows
        for win, olds in window_olds.items():
            old_m = olds.get("memcg", win.memcg)
            old_n = olds.get("nr_pages", win.nr_pages)
            old_s = olds.get("memsw_nr_pages", win.memsw_nr_pages)
            if old_m is not None:
                self._add(old_m.d, "deferred", -old_n, touched)
                self._add(old_m.d, "deferred_memsw", -old_s, touched)
            if win.memcg is not None:
                self._add(win.memcg.d, "deferred", win.nr_pages, touched)
                self._add(win.memcg.d, "deferred_memsw", win.memsw_nr_pages, touched)
        # expected counter usage over the hierarchy
        for memcg, (res, memsw) in touched.items():
            memcgs.add(memcg)
            self._propagate(memcg, res, memsw, memcgs)

        found: list[InvariantViolation] = list(mm.warnings)
        mm.warnings = NO_WARNINGS
        # I10 can fail only at a memcg whose counters are off (I1/I2) or at its counter parent:
        # a counter's expected usage is its own charges plus its chained children's
        hierarchy: set[MemCgroup] = set()
        for memcg in memcgs:
            self.check_memcg(memcg, found)
            if memcg.res.usage != memcg.res.expected or (
                    memcg.memsw.usage != memcg.memsw.expected):
                hierarchy.add(memcg)
                if memcg.res.parent is not None:
                    hierarchy.add(memcg.res.parent.memcg)
        for memcg in hierarchy:
            self.check_hierarchy(memcg, found)
        for page in pages:
            self.check_page(page, found)
        for entry in entries:
            self.check_entry(entry, found)
        if not found and not mm.known:
            return found
        return self._new_ones(found, memcgs, pages, entries)

    def local(self, memcg: MemCgroup) -> tuple[int, int]:
        """What memcg's own pages, records, reservations and windows hold in res and memsw."""
        if memcg.parent is None and not self.mm.model.root_charged:
            return 0, 0  # pages of root hold no counter charge (3.17, legacy)
        d = memcg.d
        res = d.mem + d.inflight + d.deferred
        memsw = d.memsw + d.recs + d.inflight_memsw + d.deferred_memsw
        return res, (memsw if self.mm.swap_account else 0)

    def _propagate(self, memcg: MemCgroup, res: int, memsw: int, out: set) -> None:
        """Add the change of memcg's own charges to the expected usage of its counter chain."""
        if memcg.parent is None and not self.mm.model.root_charged:
            return  # pages of root hold no counter charge (3.17, legacy)
        if not self.mm.swap_account:
            memsw = 0
        w = self.write
        for counter, delta in ((memcg.res, res), (memcg.memsw, memsw)):
            if not delta:
                continue
            c = counter
            while c is not None:
                w(c, "expected", c.expected + delta)
                out.add(c.memcg)
                c = c.parent

    # -- per-object checks ------------------------------------------------------------------
    def check_memcg(self, m: MemCgroup, found: list) -> None:
        mm = self.mm
        d = m.d
        name = m.name
        if m.res.usage != m.res.expected:
            found.append(InvariantViolation(
                "I1", name, "usage", m.res.usage, m.res.expected,
                "res usage differs from the charges its pages, reservations and windows hold"))
        if mm.swap_account:
            if m.memsw.usage != m.memsw.expected:
                found.append(InvariantViolation(
                    "I2", name, "memsw", m.memsw.usage, m.memsw.expected,
                    "memsw usage differs from its pages' memsw charges plus swap records"))
        elif m.memsw.usage:
            found.append(InvariantViolation(
                "I2", name, "memsw", m.memsw.usage, 0, "memsw is charged with swap accounting off"))
        for field, expected in (
            ("rss", d.used_anon), ("cache", d.used_file), ("rss_huge", d.used_huge),
        ):
            actual = getattr(m, field)
            if actual != expected:
                found.append(InvariantViolation(
                    "I5", name, field, actual, expected,
                    "statistic differs from its charged pages"))
        if m.swap != (d.recs if mm.swap_account else 0):
            found.append(InvariantViolation(
                "I5", name, "swap", m.swap, d.recs, "SWAP differs from the swap records"))
        if m.css < d.recs + d.migration_refs:
            found.append(InvariantViolation(
                "I6", name, "css", m.css, d.recs + d.migration_refs,
                "fewer css references than swap records"))
        for counter, label in ((m.res, "usage"), (m.memsw, "memsw")):
            if counter.limit is not None and counter.usage > counter.limit:
                found.append(InvariantViolation(
                    "I8", name, label, counter.usage, f"<= {counter.limit}",
                    "usage over its limit"))
            if counter.max_usage < counter.usage:
                found.append(InvariantViolation(
                    "I9", name, f"{label} max_usage", counter.max_usage, f">= {counter.usage}",
                    "max_usage below usage"))
        if m.res.limit is not None and m.memsw.limit is not None and m.res.limit > m.memsw.limit:
            found.append(InvariantViolation(
                "I8", name, "limit", m.res.limit, f"<= {m.memsw.limit}", "limit above memsw_limit"))
        events = m.pgpgin - m.pgpgout
        expected_events = d.used_entries - d.split_adj
        if events != expected_events:
            found.append(InvariantViolation(
                "I11", name, "pgpgin-pgpgout", events, expected_events,
                "charge events differ from the charged pages"))

    def check_hierarchy(self, m: MemCgroup, found: list) -> None:
        """I10: a hierarchical parent holds its own charges plus its chained children's."""
        chained = [c for c in m.children if c.res.parent is m.res]
        if not chained:
            return
        name = m.name
        own_res, own_memsw = self.local(m)
        kids = sum(c.res.usage for c in chained)
        if m.res.usage - kids != own_res:
            found.append(InvariantViolation(
                "I10", name, "usage", m.res.usage, own_res + kids,
                "a hierarchical parent must hold its own charges plus its children's"))
        if self.mm.swap_account:
            kids = sum(c.memsw.usage for c in chained)
            if m.memsw.usage - kids != own_memsw:
                found.append(InvariantViolation(
                    "I10", name, "memsw", m.memsw.usage, own_memsw + kids,
                    "a hierarchical parent must hold its own charges plus its children's"))

    def check_page(self, page: Page, found: list) -> None:
        model = self.mm.model
        if page.pc_flags == model.charged_flags and not page.freed:
            return  # the common case: a live, fully charged page
        problem = model.flag_problems(page)
        if problem:
            found.append(InvariantViolation(
                "I4" if page.freed else "I3", page.name, "flags", page.pc_flags, "consistent",
                problem))
        if page.freed or page.pc_flags & PCG_USED:
            return
        if page.mapcount > 0 and not self._charge_pending(page):
            if not (page.flags & PG_locked and page.flags & PG_swapcache):
                found.append(InvariantViolation(
                    "I4", page.name, "charge", "uncharged", "charged",
                    f"a mapped user page must be charged (mapcount {page.mapcount})"))
        if (
            model.check_lru_uncharged
            and page.flags & PG_lru
            and not page.readahead
            and not page.flags & PG_swapcache
            and not page.replaced
        ):
            found.append(InvariantViolation(
                "I4", page.name, "charge", "uncharged", "charged",
                "an uncharged page on the LRU is neither a swap-readahead nor a replaced page"))

    def _charge_pending(self, page: Page) -> bool:
        return any(r.page is page for r in self.mm.reservations.values())

    def check_entry(self, entry: SwapEntry, found: list) -> None:
        if entry.record is None:
            return
        if not self.mm.swap_account:
            found.append(InvariantViolation(
                "I6", entry.name, "memcg", entry.record.name, "none",
                "a swap record with swap accounting off"))
        elif entry.freed or entry.count == 0:
            found.append(InvariantViolation(
                "I6", entry.name, "memcg", entry.record.name, "none",
                "the swap record outlives the entry's pte references"))

    # -- carried violations -----------------------------------------------------------------
    def _new_ones(self, found, memcgs, pages, entries) -> list[InvariantViolation]:
        """Report what is new, in a fixed order (the objects were met in set order); forget
        carried violations the step's objects no longer show."""
        mm = self.mm
        known = mm.known
        new: list[InvariantViolation] = []
        seen = set()
        found.sort(key=lambda v: (v.obj, int(v.inv[1:]), v.field))
        for v in found:
            key = v.key
            seen.add(key)
            value = _discrepancy(v)
            if v.inv == "I9" and v.field in ("usage", "memsw"):
                new.append(v)  # an uncharge WARN happens, it is not a state
                continue
            if known.get(key, MISSING) != value:
                mm.j.put(known, key, value)
                new.append(v)
        if known:
            names = {m.name for m in memcgs} | {p.name for p in pages} | {e.name for e in entries}
            for key in [k for k in known if k[1] in names and k not in seen]:
                mm.j.put(known, key, MISSING)
        return new


def _discrepancy(v: InvariantViolation):
    if isinstance(v.actual, int) and isinstance(v.expected, int):
        return v.actual - v.expected
    return (v.actual, v.expected, v.detail)
