"""The engine's state: pages, page_cgroups, memcgs, swap entries, and the journal every write
goes through.

One mutable `Machine`; every write is a `(object, field, old, new)` record in `Machine.log`.
That one mechanism gives the trace (the records of a step), atomic steps (roll back to the
step's mark), undo and backtracking (roll back to an older mark) and an incremental Zobrist
fingerprint of the state. Counters are kept in pages (the kernel's res_counter keeps bytes).
"""

from __future__ import annotations

from typing import Any

import attrs

# struct page flags we model (kernel spelling in names; values are ours)
PG_locked = 0x1
PG_lru = 0x2
PG_swapcache = 0x4

# struct page_cgroup flags: the 3.17 masks (v1 is modelled with the masks the code meant)
PCG_USED = 0x01
PCG_MEM = 0x02
PCG_MEMSW = 0x04
PCG_MIGRATION = 0x08  # legacy only (3.4-3.16 bit, shown as a mask here)

HPAGE_PMD_NR = 512
PAGE_SIZE = 4096
RES_COUNTER_MAX = None  # "max": no limit

PG_NAMES = ((PG_locked, "locked"), (PG_lru, "lru"), (PG_swapcache, "swapcache"))
PCG_NAMES = (
    (PCG_USED, "USED"), (PCG_MEM, "MEM"), (PCG_MEMSW, "MEMSW"), (PCG_MIGRATION, "MIGRATION"),
)


def decode(flags: int, names) -> str:
    """Decode a flag word the way drgn does: `lru|locked`, or `none`."""
    parts = [name for bit, name in names if flags & bit]
    return "|".join(parts) if parts else "none"


NO_WARNINGS: list = []  # shared and never appended to: a step's first WARN makes its own list


class _Missing:
    """The value of a dict slot that did not exist (object creation in the journal)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


_PLAIN = frozenset((int, str, bool, type(None)))


def fp_value(value):
    """The hashable stand-in of a field value: objects by their key (so that equal states
    made of different objects, as re-created by backtracking, hash alike)."""
    cls = value.__class__
    if cls in _PLAIN:
        return value
    if cls is tuple:
        return tuple(map(fp_value, value))
    key = getattr(value, "key", None)
    return value if key is None else key


_FP_SETS: dict = {}  # class -> frozenset of its FP_FIELDS


def fp_fields(cls) -> frozenset:
    found = _FP_SETS.get(cls)
    if found is None:
        found = _FP_SETS[cls] = frozenset(getattr(cls, "FP_FIELDS", ()))
    return found


@attrs.define(eq=False)
class ResCounter:
    """struct res_counter, in pages: usage, max_usage, limit, failcnt, parent."""

    kind: str  # "res" or "memsw"
    memcg: MemCgroup
    parent: ResCounter | None = None
    usage: int = 0
    max_usage: int = 0
    limit: int | None = RES_COUNTER_MAX
    failcnt: int = 0
    # derived (invariant checker): expected usage from page state over the hierarchy
    expected: int = 0

    FP_FIELDS = ("usage", "max_usage", "limit", "failcnt")

    @property
    def key(self) -> tuple[str, str]:
        return (self.memcg.name, self.kind)


@attrs.define(eq=False)
class Derived:
    """Per-memcg sums over page state, kept by the invariant checker (through the journal
    while a mark is held, directly otherwise).

    Not part of the fingerprint: they are a function of the rest of the state.
    """

    memcg: MemCgroup
    mem: int = 0  # sum nr(p) over pages holding a res charge (PCG_MEM) of this memcg
    memsw: int = 0  # likewise memsw (PCG_MEMSW)
    inflight: int = 0  # try_charge reservations not yet committed or cancelled
    inflight_memsw: int = 0
    deferred: int = 0  # uncharges held back by an open uncharge_start() window
    deferred_memsw: int = 0
    used_anon: int = 0  # sum nr(p) over PCG_USED anon pages
    used_file: int = 0
    used_huge: int = 0  # 512 per unsplit THP head with PCG_USED
    used_entries: int = 0  # number of PCG_USED pages (a THP counts 1)
    split_adj: int = 0  # tails created by split_huge_page while charged here (I11)
    recs: int = 0  # swap entries whose swap_cgroup record names this memcg
    migration_refs: int = 0  # css references held by legacy migration (prepare..end)


@attrs.define(eq=False)
class MemCgroup:
    """struct mem_cgroup: its two res_counters, statistics (local) and css references."""

    name: str
    parent: MemCgroup | None
    use_hierarchy: bool
    id: int
    res: ResCounter = attrs.field(init=False)
    memsw: ResCounter = attrs.field(init=False)
    d: Derived = attrs.field(init=False)
    cache: int = 0
    rss: int = 0
    rss_huge: int = 0
    swap: int = 0
    pgpgin: int = 0
    pgpgout: int = 0
    css: int = 0  # references held by swap records (and legacy migration)
    children: tuple = ()

    # pgpgin/pgpgout are event counters: sums in the order of events, not state (two paths to
    # one state may count them differently), so outside the fingerprint, like the cost counters
    FP_FIELDS = ("use_hierarchy", "cache", "rss", "rss_huge", "swap", "css", "children")
    FP_CHILDREN = ("res", "memsw")

    def __attrs_post_init__(self) -> None:
        self.res = ResCounter("res", self)
        self.memsw = ResCounter("memsw", self)
        self.d = Derived(self)

    @property
    def key(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<memcg {self.name}>"


@attrs.define(eq=False)
class Page:
    """struct page and its struct page_cgroup, as far as memcg accounting sees them."""

    name: str
    kind: str  # "anon", "file", "shmem"
    huge: bool = False
    refcount: int = 1
    mapcount: int = 0
    mapping: str | None = None  # None, "anon" (anon_vma) or "file" (address_space)
    flags: int = 0  # PG_locked | PG_lru | PG_swapcache
    in_cache: bool = False  # in the page cache (file/shmem radix tree)
    entry: SwapEntry | None = None  # while PG_swapcache
    isolated: bool = False
    locker: str | None = None  # the thread holding PG_locked
    pc_flags: int = 0
    pc_memcg: MemCgroup | None = None  # raw pc->mem_cgroup, stale included; None = NULL
    freed: bool = False
    replaced: bool = False  # the old page of a migration or page-cache replacement
    readahead: bool = False  # created by swap readahead (read_swap_cache_async)
    head: Page | None = None  # the head page, for tails of a split THP
    # legacy: "old" / "new" between mem_cgroup_prepare_migration and _end_migration (the new
    # page is committed for statistics only and holds no counter charge until the end)
    migrating: str | None = None

    FP_FIELDS = (
        "kind", "huge", "refcount", "mapcount", "mapping", "flags", "in_cache", "entry",
        "isolated", "locker", "pc_flags", "pc_memcg", "freed", "replaced", "readahead",
        "migrating",
    )

    @property
    def key(self) -> str:
        return self.name

    @property
    def nr(self) -> int:
        return HPAGE_PMD_NR if self.huge else 1

    @property
    def anon(self) -> bool:
        return self.kind == "anon"

    def dump(self) -> str:
        """Render the page the way dump_page() does, plus its page_cgroup."""
        memcg = self.pc_memcg.name if self.pc_memcg is not None else "NULL"
        entry = f" entry={self.entry.name}" if self.entry is not None else ""
        state = "freed " if self.freed else ""
        return (
            f"page:{self.name} {state}count:{self.refcount} mapcount:{self.mapcount} "
            f"mapping:{self.mapping or 'NULL'} kind:{self.kind}{' huge' if self.huge else ''}"
            f"{entry}\n"
            f"page flags: {decode(self.flags, PG_NAMES)}"
            f"{' isolated' if self.isolated else ''}\n"
            f"pc->flags: {decode(self.pc_flags, PCG_NAMES)} pc->mem_cgroup:{memcg}"
        )

    def __repr__(self) -> str:
        return f"<page {self.name}>"


@attrs.define(eq=False)
class SwapEntry:
    """A swap slot: its pte/shmem reference count, the swap cache's page, the swap_cgroup record."""

    name: str
    count: int = 0  # pte references; SWAP_HAS_CACHE is `page is not None`
    page: Page | None = None
    record: MemCgroup | None = None
    freed: bool = False

    FP_FIELDS = ("count", "page", "record", "freed")

    @property
    def key(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<swap entry {self.name}>"


@attrs.define(eq=False)
class Reservation:
    """A successful mem_cgroup_try_charge not yet committed or cancelled.

    `memcg` None is the kernel's NULL memcg (a swap-cache page already charged).
    """

    thread: str
    page: Page
    memcg: MemCgroup | None
    nr: int
    memsw: bool  # whether try_charge also charged memsw
    # a composite's own charge between its try_charge and commit phases (the kernel's local
    # `memcg` variable): state the invariants count, not a line of the trace
    local: bool = False

    FP_FIELDS = ("memcg", "nr", "memsw")

    @property
    def key(self) -> tuple[str, str]:
        return (self.thread, self.page.name)


@attrs.define(eq=False)
class Window:
    """current->memcg_batch: a thread's mem_cgroup_uncharge_start()/end() window (v1, legacy)."""

    thread: str
    depth: int = 0
    memcg: MemCgroup | None = None
    nr_pages: int = 0
    memsw_nr_pages: int = 0

    FP_FIELDS = ("depth", "memcg", "nr_pages", "memsw_nr_pages")

    @property
    def key(self) -> tuple[str, str]:
        return ("window", self.thread)


@attrs.define(eq=False)
class Zap:
    """An open `zap { }`: the pte references its unmaps deferred to the final release_pages()."""

    thread: str
    pages: tuple = ()

    FP_FIELDS = ("pages",)

    @property
    def key(self) -> tuple[str, str]:
        return ("zap", self.thread)


@attrs.define(eq=False)
class Cost:
    """Cost counters (LANGUAGE §5): journaled, so rollback restores them, but commutative, so
    outside the fingerprint (no FP_FIELDS)."""

    res_counter: int = 0
    pc_lock: int = 0
    batches: int = 0


class Journal:
    """The write log: `(object, field, old, new)` records, with marks to roll back to.

    A dict slot is journaled with the dict as the object and the key as the field; `MISSING`
    stands for an absent slot. The Zobrist fingerprint folds records lazily (`fingerprint()`),
    so a run that never asks for it pays nothing for it.
    """

    __slots__ = ("log", "base", "marks", "_fp", "_fp_pos", "track_fp", "created")

    def __init__(self, track_fp: bool = True):
        self.log: list[tuple] = []
        self.base = 0  # absolute index of log[0] (records before it were truncated)
        self.marks: list[int] = []  # absolute positions held by undo / backtracking
        self._fp = 0
        self._fp_pos = 0  # absolute index up to which records are folded into _fp
        self.track_fp = track_fp
        self.created: dict = {}  # object -> Zobrist hash of its fields at creation

    # -- writes --------------------------------------------------------------------------
    def w(self, obj, field: str, new) -> None:
        old = getattr(obj, field)
        if old is new:
            return
        self.log.append((obj, field, old, new))
        setattr(obj, field, new)

    def put(self, d: dict, key, new) -> None:
        old = d.get(key, MISSING)
        if old is new:
            return
        self.log.append((d, key, old, new))
        if self.track_fp and old is MISSING and hasattr(new, "FP_FIELDS"):
            self.created[new] = object_hash(new)
        if new is MISSING:
            del d[key]
        else:
            d[key] = new

    # -- marks and rollback --------------------------------------------------------------
    @property
    def pos(self) -> int:
        return self.base + len(self.log)

    def rollback(self, pos: int, fp: int | None = None) -> None:
        """Undo every record written after absolute position `pos` (`fp`: the fingerprint
        there, when the caller kept it)."""
        if pos < self.base:
            raise ValueError("journal was truncated past that mark")
        log = self.log
        cut = pos - self.base
        if fp is not None:
            self._fp, self._fp_pos = fp, pos
        elif self._fp_pos > pos:
            self._fold(log[cut : self._fp_pos - self.base])  # xor is its own inverse
            self._fp_pos = pos
        created = self.created
        for obj, field, old, new in reversed(log[cut:]):
            if obj.__class__ is dict:
                if old is MISSING:
                    del obj[field]
                    if created:
                        created.pop(new, None)  # its creation is undone
                else:
                    obj[field] = old
            else:
                setattr(obj, field, old)
        del log[cut:]

    def since(self, pos: int) -> list[tuple]:
        return self.log[pos - self.base :]

    def truncate(self) -> None:
        """Drop records no mark needs any more (fold them into the fingerprint first)."""
        if not self.marks and not self.track_fp:
            self.base += len(self.log)
            self._fp_pos = self.base
            self.log.clear()
            return
        keep_from = min(self.marks) if self.marks else self.pos
        cut = keep_from - self.base
        if cut <= 0:
            return
        if self.track_fp and self._fp_pos < keep_from:
            self._fold(self.log[self._fp_pos - self.base : cut])
            self._fp_pos = keep_from
        elif not self.track_fp:
            self._fp_pos = max(self._fp_pos, keep_from)
        del self.log[:cut]
        self.base = keep_from

    # -- fingerprint ---------------------------------------------------------------------
    def fingerprint(self) -> int:
        if not self.track_fp:
            raise RuntimeError("fingerprint tracking is off for this machine")
        end = self.pos
        if self._fp_pos < end:
            self._fold(self.log[self._fp_pos - self.base :])
            self._fp_pos = end
        return self._fp

    def _fold(self, records) -> None:
        fp = self._fp
        for obj, field, old, new in records:
            if obj.__class__ is dict:
                # object creation/removal: the object's fields at creation are in its record
                # an object enters with its fields at creation and leaves with its fields
                # now (nothing writes to an object after it left its dict)
                if old is not MISSING and hasattr(old, "FP_FIELDS"):
                    fp ^= object_hash(old)
                if new is not MISSING:
                    fp ^= self.created.get(new, 0)
                continue
            fields = _FP_SETS.get(obj.__class__)
            if fields is None:
                fields = fp_fields(obj.__class__)
            if field not in fields:
                continue
            key = obj.key
            fp ^= hash((key, field, fp_value(old))) ^ hash((key, field, fp_value(new)))
        self._fp = fp


def full_fingerprint(*tables: dict) -> int:
    """The fingerprint recomputed from scratch over the objects in `tables` (for checking the
    incremental one)."""
    fp = 0
    for table in tables:
        for obj in table.values():
            fp ^= object_hash(obj)
    return fp


def object_hash(obj) -> int:
    """Zobrist contribution of an object's fingerprinted fields as they are now."""
    key = obj.key
    h = hash(("object", key))
    for field in obj.FP_FIELDS:
        h ^= hash((key, field, fp_value(getattr(obj, field))))
    for child in getattr(obj, "FP_CHILDREN", ()):
        h ^= object_hash(getattr(obj, child))
    return h
