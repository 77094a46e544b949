"""The kernel paths `hunt` strings together, each with the caller's contract it respects.

A path is what a real system runs between two quiet moments (no page locked, none isolated,
no charge in flight, no zap or batch open): a fault, a COW, a read into the page cache, a
truncation, reclaim of one page, a swap-in, a migration, a FUSE page replacement, a walker's
reference taken or dropped, charge moving, a THP split, a limit written. Each kind has

* `pick(world, rng)`: its arguments, drawn from the pages and entries for which the kernel
  would run it (None when there are none);
* `valid(world, args)`: whether the kernel would run it with these arguments now. The
  shrinker asks this again after every deletion, so a shrunk scenario is still made of
  paths the kernel could run;
* `stmts(args)`: the statements of the language that replay it.

The contracts are the callers' (mm/memory.c, mm/vmscan.c, mm/migrate.c, fs/fuse/dev.c, ...),
cited at each kind. A statement the engine refuses as an mm-contract break is a bug of this
module, never a finding.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from memcglang.engine import Engine
from memcglang.engine.state import PCG_USED, Page, PG_locked, PG_lru, PG_swapcache


@attrs.frozen
class Stmt:
    """One statement: the engine method it calls and the method's arguments."""

    method: str
    args: tuple = ()

    @property
    def text(self) -> str:
        return render(self.method, self.args)


def render(method: str, a: tuple) -> str:
    """The statement of the language that makes this engine call (the inverse of the
    interpreter's `engine_call`)."""
    if method in ("zap_begin", "batch_begin"):
        return method[:-6] + " {"
    if method in ("zap_end", "batch_end"):
        return "}"
    if method == "fault":
        return f"fault {a[0]} in {a[1]}" + (" huge" if a[2] else "")
    if method == "cache":
        return f"cache {a[0]} in {a[1]}"
    if method in ("try_charge", "charge"):
        return f"{method} {a[0]} to {a[1]}"
    if method == "cow":
        return f"cow {a[0]} to {a[1]} in {a[2]}"
    if method == "reclaim":
        return f"reclaim {a[0]}" + (f" as {a[1]}" if a[1] else "")
    if method == "swapin":
        entry, name, memcg, reuse = a
        return (f"swapin {entry} as {name}" + (f" in {memcg}" if memcg else "")
                + (" reuse" if reuse else ""))
    if method == "readahead":
        return f"readahead {a[0]} as {a[1]}"
    if method == "alloc":
        return f"alloc {a[0]} {a[1]}"
    if method == "migrate":
        return f"migrate {a[0]} to {a[1]}" + (" fail" if a[2] else "")
    if method == "replace_cache":
        return f"replace_cache {a[0]} with {a[1]}"
    if method == "move":
        return f"move {a[0]} to {a[1]}"
    if method == "set_limits":
        return f"set {a[0]} limit={size(a[1])}"
    return " ".join((method, *a))  # map, unmap, get, put, lock, unlock, ..., release, free_swap


def size(value: int | None) -> str:
    return "max" if value is None else str(value)


@attrs.define
class World:
    """The engine of one run, plus what the paths remember: the references walkers hold."""

    engine: Engine
    memcgs: tuple[str, ...]  # the non-root memcgs a task can be in
    pins: dict[str, int] = attrs.Factory(dict)
    n: int = 0
    focus: set[str] | None = None  # a race draws its paths over these pages only

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def live(self, pred: Callable[[Page], bool]) -> list[Page]:
        if self.focus is not None:
            pages = (self.engine.pages[n] for n in sorted(self.focus))
            return [p for p in pages if not p.freed and pred(p)]
        return [p for p in self.engine.pages.values() if not p.freed and pred(p)]

    def page(self, name: str) -> Page | None:
        p = self.engine.pages.get(name)
        return None if p is None or p.freed else p

    def entries(self, pred) -> list:
        return [e for e in self.engine.entries.values() if not e.freed and pred(e)]

    def pinned(self) -> list[str]:
        return [name for name, n in self.pins.items() if n > 0]


@attrs.frozen
class Kind:
    name: str
    weight: int
    pick: Callable[[World, random.Random], tuple | None]
    valid: Callable[[World, tuple], bool] | None  # None: `part` judges each page
    stmts: Callable[[tuple], list[Stmt]]
    # what the path does to the walkers' references (pins), after it ran
    pins: Callable[[tuple], dict[str, int]] = lambda args: {}
    # a path over several pages (zap, release, batch): whether one of them may still be in it
    part: Callable[[World, object], bool] | None = None
    # what the path does instead of its rest when statement i ends in an error value (the
    # kernel's failure path); None: an error ends nothing (the statement was the last, or
    # the path goes on as the kernel does)
    recover: Callable[[tuple, int], list[Stmt]] | None = None

    def repair(self, w: World, args: tuple) -> tuple | None:
        """The arguments with which the kernel would run this path now: as they are, or, for
        a path over several pages, those pages still fit for it; None when it would not run
        (a deletion while shrinking took its page away)."""
        if self.part is None:
            return args if self.valid(w, args) else None
        return tuple(a for a in args if self.part(w, a)) or None


def choice(rng: random.Random, items: list):
    return rng.choice(items) if items else None


def holds(p: Page | None, pred) -> bool:
    return p is not None and bool(pred(p))


def quiet(p: Page) -> bool:
    """Not locked, not isolated: every page is, between two paths."""
    return not p.flags & PG_locked and not p.isolated


# -- fault, cache, fork --------------------------------------------------------------------------
def pick_fault(w: World, rng):
    """do_anonymous_page / THP fault: a task of any memcg touches new anon memory."""
    return (w.fresh("P"), rng.choice(w.memcgs), rng.random() < 0.04)


def pick_cache(w: World, rng):
    """A read into the page cache (add_to_page_cache_lru), charged to the reader's memcg."""
    return (w.fresh("F"), rng.choice(w.memcgs))


def can_map(p: Page) -> bool:
    """fork's copy_one_pte (an anon page that is mapped), or filemap_fault of a page in the
    page cache: one more pte and its reference."""
    return quiet(p) and ((p.mapping == "anon" and p.mapcount > 0)
                          or (p.in_cache and p.kind == "file"))


def pick_map(w: World, rng):
    p = choice(rng, w.live(can_map))
    return None if p is None else (p.name,)


def can_cow(p: Page) -> bool:
    """do_wp_page copies a mapped page: a file page of a private mapping always; an anon page
    only when reuse_swap_page finds it shared (page_mapcount + page_swapcount > 1)."""
    if not quiet(p) or p.mapcount <= 0 or p.huge or p.kind == "shmem":
        return False
    if p.kind == "file":
        return True
    swapcount = p.entry.count if p.flags & PG_swapcache and p.entry is not None else 0
    return p.mapcount + swapcount > 1


def pick_cow(w: World, rng):
    p = choice(rng, w.live(can_cow))
    return None if p is None else (p.name, w.fresh("P"), rng.choice(w.memcgs))


# -- munmap and exit -----------------------------------------------------------------------------
def mapped(p: Page) -> bool:
    return quiet(p) and p.mapcount > 0


def pick_unmap(w: World, rng):
    p = choice(rng, w.live(mapped))
    return None if p is None else (p.name,)


def pick_zap(w: World, rng):
    """unmap_page_range over a range of several mapped pages (munmap, exit)."""
    pages = w.live(mapped)
    if not pages:
        return None
    return tuple(p.name for p in rng.sample(pages, min(len(pages), rng.randint(1, 4))))


def zap_stmts(args) -> list[Stmt]:
    return [Stmt("zap_begin"), *(Stmt("unmap", (n,)) for n in args), Stmt("zap_end")]


# -- the page cache ------------------------------------------------------------------------------
def cached(p: Page) -> bool:
    return quiet(p) and p.in_cache and not p.huge


def pick_truncate(w: World, rng):
    """truncate_inode_pages_range over one page of the cache."""
    p = choice(rng, w.live(cached))
    return None if p is None else (p.name,)


def reclaimable(p: Page) -> bool:
    """shrink_page_list takes an LRU page that page_mapping() finds: anon (it goes to the swap
    cache first), in the swap cache (a readahead page has no anon_vma yet) or in the page
    cache; a page whose mapping is gone is kept, not reclaimed."""
    return (quiet(p) and p.flags & PG_lru and not p.huge and p.kind != "shmem"
            and (p.mapping == "anon" or p.in_cache or p.flags & PG_swapcache))


def needs_entry(p: Page) -> bool:
    return p.anon and not p.flags & PG_swapcache


def pick_reclaim(w: World, rng):
    p = choice(rng, w.live(reclaimable))
    if p is None:
        return None
    return (p.name, w.fresh("E") if needs_entry(p) else None)


def valid_reclaim(w: World, args) -> bool:
    p = w.page(args[0])
    return holds(p, reclaimable) and (args[1] is not None) == needs_entry(p)


# -- swap ----------------------------------------------------------------------------------------
def swapped(e) -> bool:
    """A swap pte references the entry."""
    return e.count > 0


def swap_pte(w: World, name: str):
    """The live entry of that name that a swap pte references, or None."""
    e = w.engine.entries.get(name)
    return e if e is not None and not e.freed and swapped(e) else None


def pick_swapin(w: World, rng):
    """do_swap_page: a task of any memcg (or of none given: root) faults on a swap pte; a
    write fault reuses the page (reuse_swap_page)."""
    e = choice(rng, w.entries(swapped))
    if e is None:
        return None
    name = e.page.name if e.page is not None else w.fresh("Q")
    memcg = rng.choice(w.memcgs) if rng.random() < 0.9 else None
    return (e.name, name, memcg, rng.random() < 0.5)


def valid_swapin(w: World, args) -> bool:
    e = swap_pte(w, args[0])
    if e is None:
        return False
    if e.page is not None:
        return e.page.name == args[1] and quiet(e.page)
    return args[1] not in w.engine.pages


def pick_readahead(w: World, rng):
    """swapin_readahead brings in a neighbouring entry nobody faulted on yet."""
    e = choice(rng, w.entries(lambda e: swapped(e) and e.page is None))
    return None if e is None else (e.name, w.fresh("R"))


def valid_readahead(w: World, args) -> bool:
    e = swap_pte(w, args[0])
    return e is not None and e.page is None


def pick_free_swap(w: World, rng):
    """zap_pte_range over a swap pte (munmap or exit of a swapped-out page):
    free_swap_and_cache. When that was the entry's last pte reference and its swap-cache page
    is not mapped, the page is looked up, trylocked (between two paths nobody holds it),
    deleted from the swap cache and released (perhaps its last reference)."""
    e = choice(rng, w.entries(swapped))
    if e is None:
        return None
    return (e.name, cache_freed(e))


def cache_freed(e) -> str | None:
    """The swap-cache page free_swap_and_cache takes out with the entry's last reference."""
    p = e.page
    if e.count == 1 and p is not None and not p.mapcount and quiet(p):
        return p.name
    return None


def valid_free_swap(w: World, args) -> bool:
    e = swap_pte(w, args[0])
    return e is not None and cache_freed(e) == args[1]


def free_swap_stmts(args) -> list[Stmt]:
    entry, page = args
    out = [Stmt("free_swap", (entry,))]
    if page is not None:
        out += [Stmt("get", (page,)), Stmt("lock", (page,)),
                Stmt("delete_from_swap_cache", (page,)), Stmt("unlock", (page,)),
                Stmt("put", (page,))]
    return out


# -- migration -----------------------------------------------------------------------------------
def migratable(p: Page) -> bool:
    """Some migrate_pages caller isolates any LRU page: memory hot-remove's do_migrate_range
    takes every page of the range (an orphaned page "can be picked up due to memory
    offlining", __unmap_and_move); compaction and mbind/NUMA balancing take fewer. THPs are
    split first."""
    return quiet(p) and p.flags & PG_lru and not p.huge and p.kind != "shmem"


def pick_migrate(w: World, rng):
    p = choice(rng, w.live(migratable))
    return None if p is None else (p.name, w.fresh("N"), p.kind, rng.random() < 0.15)


def migrate_stmts(args) -> list[Stmt]:
    old, new, kind, fail = args
    return [Stmt("isolate", (old,)), Stmt("alloc", (new, kind)),
            Stmt("migrate", (old, new, fail))]


# -- replace_page_cache_page (FUSE splice: fuse_try_move_page) -----------------------------------
def replaceable(p: Page) -> bool:
    """The old page: in the page cache and not mapped (fuse_try_move_page's WARN_ON checks)."""
    return cached(p) and p.kind == "file" and p.mapcount == 0


def stealable(p: Page) -> bool:
    """A page another file's splice steals (page_cache_pipe_buf_steal -> remove_mapping): in
    the page cache, unmapped, nobody else holding it; it stays on the LRU, and
    fuse_check_page takes it (count 1, no mapping, LRU allowed)."""
    return replaceable(p) and p.refcount == 1 and p.flags & PG_lru


def pick_replace(w: World, rng):
    """The old page: a page of the cache (as a readahead left it, on the LRU), or (40%) the
    page fuse_readpages has just added (read_cache_pages: charged, in the cache, locked,
    still in the per-CPU LRU pagevec: not PageLRU yet). The new page: fresh, or (30%) stolen
    from another file's cache."""
    if rng.random() < 0.4:
        old = (w.fresh("F"), rng.choice(w.memcgs))
    else:
        page = choice(rng, w.live(replaceable))
        if page is None:
            return None
        old = (page.name, None)
    legacy = w.engine.model.name == "legacy"
    if rng.random() < 0.3:
        stolen = choice(rng, w.live(lambda p: p.name != old[0] and stealable(p)))
        if stolen is not None:
            return (*old, stolen.name, True, legacy)
    return (*old, w.fresh("G"), False, legacy)


def valid_replace(w: World, args) -> bool:
    old, memcg, new, steal, _ = args
    if memcg is None and not holds(w.page(old), replaceable):
        return False
    if memcg is not None and (old in w.engine.pages or memcg not in w.engine.memcgs):
        return False
    if steal:
        return holds(w.page(new), stealable)
    return new not in w.engine.pages


def read_stmts(page: str, memcg: str, legacy: bool) -> list[Stmt]:
    """add_to_page_cache_lru of a new page, its LRU add still in the pagevec: 3.17 and v1
    try_charge, insert, commit (__add_to_page_cache_locked); legacy charges first
    (mem_cgroup_charge_file), then inserts."""
    out = [Stmt("alloc", (page, "file")), Stmt("lock", (page,))]
    if legacy:
        return out + [Stmt("charge", (page, memcg)), Stmt("add_to_cache", (page,))]
    return out + [Stmt("try_charge", (page, memcg)), Stmt("add_to_cache", (page,)),
                  Stmt("commit", (page,))]


def recover_replace(args, i: int) -> list[Stmt]:
    """The charge of the request's new page failed (-ENOMEM): add_to_page_cache_lru gives the
    page back (__clear_page_locked, page_cache_release) and the read fails."""
    return [Stmt("unlock", (args[0],)), Stmt("put", (args[0],))]


def replace_stmts(args) -> list[Stmt]:
    """The request's page locked and held (as fuse_readpages has it), the new page locked,
    the replacement, the new page onto the LRU (a page that was not on it), the old page
    unlocked and released, the new one unlocked when the request ends and the pipe buffer's
    reference dropped (fuse_try_move_page's page_cache_get(newpage) and the request's put
    cancel out and are left out)."""
    old, memcg, new, steal, legacy = args
    if memcg is None:
        out = [Stmt("get", (old,)), Stmt("lock", (old,))]
    else:  # read_cache_pages' new page: the request holds it (the allocation's reference)
        out = read_stmts(old, memcg, legacy)
    if steal:
        out += [Stmt("get", (new,)), Stmt("lock", (new,)), Stmt("delete_from_cache", (new,))]
    else:
        out += [Stmt("alloc", (new, "file")), Stmt("lock", (new,))]
    out.append(Stmt("replace_cache", (old, new)))
    if not steal:
        out.append(Stmt("lru_add", (new,)))
    return out + [Stmt("unlock", (old,)), Stmt("put", (old,)), Stmt("unlock", (new,)),
                  Stmt("put", (new,))]


# -- a walker's references (GUP, a pfn walker, a page-cache lookup) ------------------------------
MAX_PINS = 3


def pick_pin(w: World, rng):
    """get_page_unless_zero by a walker (memory-failure, hot-remove, GUP): it holds the page
    across other paths."""
    if sum(w.pins.values()) >= MAX_PINS:
        return None
    p = choice(rng, w.live(lambda p: p.refcount > 0 and quiet(p)))
    return None if p is None else (p.name,)


def valid_pin(w: World, args) -> bool:
    return holds(w.page(args[0]), lambda p: p.refcount > 0)


def pick_unpin(w: World, rng):
    """The walker drops its reference (put_page: perhaps the last one)."""
    name = choice(rng, w.pinned())
    return None if name is None else (name,)


def puts(args) -> list[str]:
    """The walker references a path drops: its page names, or the pages of its ("put", P)."""
    return [a if isinstance(a, str) else a[1] for a in args
            if isinstance(a, str) or a[0] == "put"]


def held(w: World, name: str) -> bool:
    return w.pins.get(name, 0) > 0


def pick_release(w: World, rng):
    """release_pages over the pages a walker held (a pagevec of lookups)."""
    names = w.pinned()
    if not names:
        return None
    return tuple(rng.sample(names, min(len(names), rng.randint(1, 3))))


def pick_batch(w: World, rng):
    """An uncharge-batching window (v1 and legacy: mem_cgroup_uncharge_start/end, as
    truncate_inode_pages_range and the pagevec releases have) around walker puts and
    truncations."""
    ops = [("put", n) for n in w.pinned()] + [("truncate", p.name) for p in w.live(cached)]
    if not ops:
        return None
    return tuple(rng.sample(ops, min(len(ops), rng.randint(1, 3))))


def batch_part(w: World, op) -> bool:
    return held(w, op[1]) if op[0] == "put" else holds(w.page(op[1]), cached)


def batch_stmts(args) -> list[Stmt]:
    return [Stmt("batch_begin"), *(Stmt(op, (n,)) for op, n in args), Stmt("batch_end")]


def unpins(args) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in puts(args):
        out[name] = out.get(name, 0) - 1
    return out


# -- charge moving, THP split, limits ------------------------------------------------------------
def movable(p: Page) -> bool:
    """mem_cgroup_move_charge_pte_range: a mapped page charged to the moving task's memcg,
    isolated from the LRU for the move."""
    return (mapped(p) and p.flags & PG_lru and p.pc_flags & PCG_USED
            and p.pc_memcg is not None and p.pc_memcg.parent is not None)


def pick_move(w: World, rng):
    targets = [(p.name, p.pc_memcg.name) for p in w.live(movable)]
    targets += [(e.name, e.record.name) for e in w.entries(
        lambda e: swapped(e) and e.record is not None and e.record.parent is not None)]
    rng.shuffle(targets)
    for name, frm in targets:
        others = [m for m in w.memcgs if m != frm]
        if others:
            return (name, rng.choice(others))
    return None


def valid_move(w: World, args) -> bool:
    name, to = args
    if name in w.engine.entries:
        e = swap_pte(w, name)
        return (e is not None and e.record is not None and e.record.parent is not None
                and e.record.name != to)
    p = w.page(name)
    return holds(p, movable) and p.pc_memcg.name != to


def splittable(p: Page) -> bool:
    return mapped(p) and p.huge and p.mapping == "anon"


def pick_split(w: World, rng):
    p = choice(rng, w.live(splittable))
    return None if p is None else (p.name,)


def pick_limit(w: World, rng):
    """A write to memory.limit_in_bytes: near the usage, or back to max."""
    path = rng.choice(w.memcgs)
    m = w.engine.memcgs[path]
    if m.memsw.limit is not None:
        return None  # res may not pass memsw's limit: leave such a memcg as declared
    limit = None if rng.random() < 0.25 else max(0, m.res.usage + rng.randint(-1, 4))
    return (path, limit)


def pick_walker(w: World, rng):
    """get_page_unless_zero, some work, put_page: a pfn walker (memory-failure, hot-remove's
    do_migrate_range) or a GUP pin soon dropped. Sequentially a no-op: races only."""
    p = choice(rng, w.live(quiet))
    return None if p is None else (p.name,)


def page_valid(pred) -> Callable[[World, tuple], bool]:
    return lambda w, args: holds(w.page(args[0]), pred)


def new_name(w: World, args) -> bool:
    return args[0] not in w.engine.pages


def one(method: str) -> Callable[[tuple], list[Stmt]]:
    return lambda args: [Stmt(method, args)]


KINDS = {k.name: k for k in (
    Kind("fault", 10, pick_fault, new_name, one("fault")),
    Kind("cache", 8, pick_cache, new_name, one("cache")),
    Kind("map", 4, pick_map, page_valid(can_map), one("map")),
    Kind("cow", 4, pick_cow, lambda w, a: holds(w.page(a[0]), can_cow) and a[1] not in
         w.engine.pages, one("cow")),
    Kind("unmap", 2, pick_unmap, page_valid(mapped), one("unmap")),
    Kind("zap", 5, pick_zap, None, zap_stmts, part=lambda w, n: holds(w.page(n), mapped)),
    Kind("truncate", 4, pick_truncate, page_valid(cached), one("truncate")),
    Kind("reclaim", 8, pick_reclaim, valid_reclaim, one("reclaim")),
    Kind("swapin", 7, pick_swapin, valid_swapin, one("swapin")),
    Kind("readahead", 3, pick_readahead, valid_readahead, one("readahead")),
    Kind("free_swap", 3, pick_free_swap, valid_free_swap, free_swap_stmts),
    Kind("migrate", 6, pick_migrate, lambda w, a: holds(w.page(a[0]), migratable) and a[1] not in
         w.engine.pages, migrate_stmts),
    Kind("replace_cache", 5, pick_replace, valid_replace, replace_stmts,
         recover=recover_replace),
    Kind("pin", 3, pick_pin, valid_pin, one("get"), lambda a: {a[0]: 1}),
    Kind("unpin", 3, pick_unpin, lambda w, a: held(w, a[0]), one("put"), unpins),
    Kind("release", 2, pick_release, None, lambda a: [Stmt("release", a)], unpins, held),
    Kind("batch", 2, pick_batch, None, batch_stmts, unpins, batch_part),
    Kind("move", 3, pick_move, valid_move, one("move")),
    Kind("split", 2, pick_split, page_valid(splittable), one("split")),
    Kind("walker", 5, pick_walker, page_valid(lambda p: True),
         lambda a: [Stmt("get", a), Stmt("put", a)]),
    Kind("limit", 2, pick_limit, lambda w, a: w.engine.memcgs[a[0]].memsw.limit is None,
         lambda a: [Stmt("set_limits", a)]),
)}
RACE_ONLY = ("walker",)  # kinds only races draw (sequentially, a walker's get and put is a no-op)
