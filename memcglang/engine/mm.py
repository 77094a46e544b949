"""The model-independent page lifecycle: the mm side of every operation, calling the memcg hooks.

`Engine` offers every primitive and composite of LANGUAGE §3.2-§3.5. Each public method is one
step: it checks the kernel's preconditions (refusing with a `VmBug` whose report is a
dump_page()-style text), runs the kernel path for the model in force, and is rolled back whole
when it hits an assertion. Kernel error values (-ENOMEM, -EBUSY, -EINVAL, -EAGAIN) keep the
kernel's failure path. After every step the invariants of SEMANTICS §5 are checked on what the
step changed. The engine knows names, not source positions.
"""

from __future__ import annotations

import functools

import attrs

from memcglang.engine.errors import (
    ChargeFailed,
    Deadlock,
    EngineError,
    InvariantViolation,
    KernelError,
    ScenarioError,
    VmBug,
)
from memcglang.engine.invariants import Checker
from memcglang.engine.memcg import model_class
from memcglang.engine.state import (
    MISSING,
    NO_WARNINGS,
    PCG_NAMES,
    PG_NAMES,
    Cost,
    Journal,
    MemCgroup,
    Page,
    PG_locked,
    PG_lru,
    PG_swapcache,
    Reservation,
    SwapEntry,
    Window,
    Zap,
    decode,
    full_fingerprint,
)

KINDS = ("anon", "file", "shmem")
MAX_PAGES = 2_000_000  # pages a machine may hold, freed ones included (about 2 GB)
MAIN = "main"
KEEP = object()  # set_limits: a limit not given (None is `max`)
MMU_GATHER_BUNDLE = 8  # the mmu_gather's first (on-stack) batch (asm-generic/tlb.h)
MAX_GATHER_BATCH = 510  # pages per further batch on x86-64: (PAGE_SIZE - 16) / 8
PAGEVEC_SIZE = 14


def mmu_gather_chunks(pages: list) -> list[list]:
    """The release_pages calls of a munmap's gathered pages: the mmu_gather's batches (8,
    then 510 each), each freed by free_pages_and_swap_cache in chunks of PAGEVEC_SIZE."""
    batches, rest = [pages[:MMU_GATHER_BUNDLE]], pages[MMU_GATHER_BUNDLE:]
    while rest:
        batches.append(rest[:MAX_GATHER_BATCH])
        rest = rest[MAX_GATHER_BATCH:]
    return [b[i:i + PAGEVEC_SIZE] for b in batches if b for i in range(0, len(b), PAGEVEC_SIZE)]


@attrs.define
class StepResult:
    """What one step did: its outcome, the journal records it wrote, its events, new violations.

    `outcome` is "ok", "error" (a kernel error value, in `error`), "kept" (reclaim could not
    free the page) or "failed" (a forced migration failure).
    """

    outcome: str
    error: KernelError | None
    changes: list
    events: list
    violations: list[InvariantViolation]
    start: int = 0  # journal position of changes[0]; events carry positions on the same scale


def step(fn):
    """Make an Engine method one atomic step (see the module docstring)."""

    @functools.wraps(fn)
    def run_step(self: Engine, *args, **kwargs) -> StepResult:
        j = self.j
        log = j.log
        first = len(log)
        start = j.base + first
        events = self.events = []
        error = None
        try:
            outcome = fn(self, *args, **kwargs) or "ok"
        except KernelError as e:
            outcome, error = "error", e
        except BaseException:
            j.rollback(j.base + first)
            self.events = []
            self.warnings = NO_WARNINGS
            raise
        if first or j.marks or j.track_fp:
            changes = log[first:]
            violations = self.checker.check(changes) if self.check_invariants else self._no_check()
            if not j.marks:
                j.truncate()
        else:  # the usual `run` case: the step's records are the whole log; hand it over
            changes = log
            j.log = []
            j.base += len(changes)
            violations = self.checker.check(changes) if self.check_invariants else self._no_check()
            if j.log:  # the checker's carried-violation records: nothing holds them either
                j.base += len(j.log)
                j.log = []
        return StepResult(outcome, error, changes, events, violations, start)

    return run_step


class Engine:
    """One simulated machine under one memcg model (`v1` or `3.17`)."""

    def __init__(
        self,
        model: str = "3.17",
        swap_account: bool = True,
        *,
        root_hierarchy: bool = True,
        capture: bool = True,
        track_fingerprint: bool = True,
        check_invariants: bool = True,
    ):
        self.j = Journal(track_fingerprint)
        self.cost = Cost()
        self.swap_account = swap_account
        self.capture = capture
        self.check_invariants = check_invariants
        self.thread = MAIN
        self.events: list = []
        self.warnings: list[InvariantViolation] = []
        self.pages: dict[str, Page] = {}
        self.entries: dict[str, SwapEntry] = {}
        self.reservations: dict[tuple[str, str], Reservation] = {}
        self.windows: dict[str, Window] = {}
        self.zaps: dict[str, Zap] = {}
        self.known: dict = {}  # carried invariant violations: key -> discrepancy
        self.root = MemCgroup("root", None, root_hierarchy, 1)
        self.memcgs: dict[str, MemCgroup] = {}
        self._next_id = 2
        self.j.put(self.memcgs, "root", self.root)
        self.j.truncate()
        self.model = model_class(model)(self)
        self.checker = Checker(self)

    # ======================================================================================
    # plumbing
    # ======================================================================================
    def call(self, name: str, *args) -> None:
        """Record a kernel function call in the step's events."""
        if self.capture:
            j = self.j
            self.events.append((j.base + len(j.log), "call", name, args))

    def note(self, text: str) -> None:
        """Record an explanation in the step's events."""
        if self.capture:
            j = self.j
            self.events.append((j.base + len(j.log), "note", text, ()))

    def _no_check(self) -> list:
        """With the checker off, a step's uncharge WARNs are dropped with it."""
        self.warnings = NO_WARNINGS
        return []

    def warn_underflow(self, counter, nr: int) -> None:
        """res_counter_uncharge_locked's WARN_ON(counter->usage < val): clamp and report (I9)."""
        if self.warnings is NO_WARNINGS:
            self.warnings = []
        self.warnings.append(
            InvariantViolation(
                "I9",
                counter.memcg.name,
                "usage" if counter.kind == "res" else "memsw",
                counter.usage - nr,
                ">= 0",
                f"res_counter_uncharge: WARN uncharging {nr} from {counter.usage}, clamped to 0",
            )
        )

    def mm_bug(self, assertion: str, page: Page | None, reason: str) -> VmBug:
        return VmBug("mm", assertion, page.dump() if page is not None else None, reason)

    def set_thread(self, thread: str) -> None:
        """Run the following steps as `thread` (locks, reservations and windows are per thread)."""
        self.thread = thread

    def mark(self) -> int:
        """Hold the journal from here on (undo, backtracking); release with `release_mark`."""
        pos = self.j.pos
        self.j.marks.append(pos)
        return pos

    def rollback_to(self, pos: int, fingerprint: int | None = None) -> None:
        """Undo every step after mark `pos`, cost counters included (the mark stays held);
        `fingerprint`, the state's fingerprint at the mark, saves refolding the records."""
        self.j.rollback(pos, fingerprint)

    def release_mark(self, pos: int) -> None:
        self.j.marks.remove(pos)
        if not self.j.marks:
            self.j.truncate()

    def fingerprint(self) -> int:
        """Canonical hash of the state (cost counters and events excluded)."""
        return self.j.fingerprint()

    def full_fingerprint(self) -> int:
        """The same hash recomputed from every object (slow; for tests of the incremental one)."""
        return full_fingerprint(
            self.memcgs, self.pages, self.entries, self.reservations, self.windows, self.zaps
        )

    # -- name lookup ------------------------------------------------------------------------
    def page(self, name: str) -> Page:
        page = self.pages.get(name)
        if page is None:
            raise ScenarioError(f"no page named {name}")
        return page

    def memcg(self, path: str) -> MemCgroup:
        if path.startswith("root/"):
            path = path[5:]
        try:
            return self.memcgs[path]
        except KeyError:
            raise ScenarioError(f"no memcg named {path}") from None

    def entry(self, name: str) -> SwapEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise ScenarioError(f"no swap entry named {name}") from None

    def _new_name(self, name: str) -> None:
        if name in self.pages or name in self.entries or name in self.memcgs:
            raise ScenarioError(f"{name} is already bound (a name is never reused)")

    def window(self, thread: str) -> Window:
        """The thread's current->memcg_batch, created on first use."""
        win = self.windows.get(thread)
        if win is None:
            win = Window(thread)
            self.j.put(self.windows, thread, win)
        return win

    # ======================================================================================
    # setup
    # ======================================================================================
    @step
    def create_memcg(
        self,
        path: str,
        limit: int | None = None,
        memsw_limit: int | None = None,
        hierarchy: bool | None = None,
    ):
        """mem_cgroup_css_alloc/online: a new memcg, its counters chained as the model does."""
        if path in ("root", "root/"):
            if len(self.memcgs) > 1:
                raise ScenarioError("`memcg root` must be the first memcg statement")
            if limit is not None or memsw_limit is not None:
                raise ScenarioError("limits cannot be set on root")
            if hierarchy is not None:
                self.j.w(self.root, "use_hierarchy", hierarchy)
            return
        if path.startswith("root/"):
            path = path[5:]
        parent_path, _, leaf = path.rpartition("/")
        parent = self.memcg(parent_path) if parent_path else self.root
        self._new_name(path)
        if memsw_limit is not None and not self.swap_account:
            raise ScenarioError("memsw_limit needs swap accounting")
        use_hierarchy = parent.use_hierarchy if hierarchy is None else hierarchy
        if parent.use_hierarchy and not use_hierarchy:
            raise KernelError("EINVAL", f"{path}: its parent {parent.name} uses hierarchy")
        m = MemCgroup(path, parent, use_hierarchy, self._next_id)
        self._next_id += 1
        # 3.17: counters chained only under a hierarchical parent; v1 (patch 5/9): otherwise
        # root's counters are the parent
        if parent.use_hierarchy:
            m.res.parent, m.memsw.parent = parent.res, parent.memsw
        elif self.model.root_charged:
            m.res.parent, m.memsw.parent = self.root.res, self.root.memsw
        self.call("mem_cgroup_css_online", path)
        self.j.put(self.memcgs, path, m)
        self.j.w(parent, "children", parent.children + (m,))
        if limit is not None or memsw_limit is not None:  # both max by default
            self._set_limits(m, KEEP if limit is None else limit,
                             KEEP if memsw_limit is None else memsw_limit)

    @step
    def set_limits(self, path: str, limit=KEEP, memsw_limit=KEEP):
        """mem_cgroup_resize_limit / _resize_memsw_limit; `max` is None, KEEP is "not given"."""
        m = self.memcg(path)
        if m.parent is None:
            raise ScenarioError("limits cannot be set on root")
        if memsw_limit is not KEEP and not self.swap_account:
            raise ScenarioError("memsw_limit needs swap accounting")
        self._set_limits(m, limit, memsw_limit)

    def _set_limits(self, m: MemCgroup, limit=KEEP, memsw_limit=KEEP) -> None:
        """res_counter_set_limit needs usage <= limit (-EBUSY: reclaim is not modelled), and
        res.limit <= memsw.limit (-EINVAL). Both writes are checked before either is made."""
        if limit is KEEP and memsw_limit is KEEP:
            return
        new_res = m.res.limit if limit is KEEP else limit
        new_memsw = m.memsw.limit if memsw_limit is KEEP else memsw_limit
        if new_res is not None and (new_memsw is not None and new_res > new_memsw):
            raise KernelError("EINVAL", f"{m.name}: limit {new_res} > memsw_limit {new_memsw}")
        if new_res is None and new_memsw is not None:
            raise KernelError("EINVAL", f"{m.name}: limit max > memsw_limit {new_memsw}")
        for counter, new in ((m.res, new_res), (m.memsw, new_memsw)):
            if new is not None and counter.usage > new:
                raise KernelError(
                    "EBUSY", f"{m.name}: {counter.kind} usage {counter.usage} > new limit {new}"
                )
        self.call("mem_cgroup_resize_limit", m.name)
        self.j.w(m.res, "limit", new_res)
        self.j.w(m.memsw, "limit", new_memsw)

    # ======================================================================================
    # internal mm helpers (no step of their own)
    # ======================================================================================
    def _room(self, n: int) -> None:
        """A scenario may not create more than MAX_PAGES pages: a few lines must not be able
        to exhaust memory by accident (a repeat of huge pages split)."""
        if len(self.pages) + n > MAX_PAGES:
            raise ScenarioError(f"the scenario would have more than {MAX_PAGES:,} pages (freed "
                                "ones stay bound): the bound on live pages")

    def _alloc(self, name: str, kind: str, huge: bool = False) -> Page:
        self._new_name(name)
        self._room(1)
        if kind not in KINDS:
            raise ScenarioError(f"unknown page kind {kind!r}")
        if huge and kind != "anon":
            raise ScenarioError("huge pages are anon only (THP)")
        page = Page(name, kind, huge)
        self.call("alloc_pages", name, kind + (" huge" if huge else ""))
        self.j.put(self.pages, name, page)
        return page

    def _need_ref(self, page: Page, what: str) -> None:
        if page.refcount <= 0:
            raise self._no_ref(page, what)

    def _no_ref(self, page: Page, what: str) -> VmBug:
        if what in ("put_page", "release_pages"):
            return self.mm_bug("put_page_testzero: VM_BUG_ON_PAGE(atomic_read(&page->_count)"
                               " == 0)", page, f"{what} of a page nobody holds")
        if what == "get_page":
            return self.mm_bug("get_page: VM_BUG_ON_PAGE(atomic_read(&page->_count) <= 0)",
                               page, "get_page of a page nobody holds")
        return self.mm_bug(what, page, "the page was freed (count 0): nobody may use it")

    def _need_locked(self, page: Page, assertion: str) -> None:
        if not page.flags & PG_locked:
            raise self.mm_bug(assertion, page, "the page must be locked")

    def _lock(self, page: Page) -> None:
        """lock_page (mm/filemap.c): in `run` a wait is a deadlock."""
        self._need_ref(page, "lock_page")
        if page.flags & PG_locked:
            if page.locker == self.thread:
                raise self.mm_bug(
                    "lock_page: self-deadlock", page, f"{self.thread} already holds the lock"
                )
            raise Deadlock(page.name, page.locker or "?", self.thread)
        self.call("lock_page", page.name)
        self.j.w(page, "flags", page.flags | PG_locked)
        self.j.w(page, "locker", self.thread)

    def _unlock(self, page: Page) -> None:
        """unlock_page (mm/filemap.c)."""
        self._need_locked(page, "unlock_page: VM_BUG_ON_PAGE(!PageLocked(page))")
        self.call("unlock_page", page.name)
        self.j.w(page, "flags", page.flags & ~PG_locked)
        self.j.w(page, "locker", None)

    def _get(self, page: Page, n: int = 1) -> None:
        self.j.w(page, "refcount", page.refcount + n)


    def _put(self, page: Page, n: int = 1) -> None:
        """put_page: the last reference frees through __page_cache_release + mem_cgroup_uncharge."""
        rc = page.refcount - n
        self.j.w(page, "refcount", rc)
        if rc == 0:
            self._free_prepare(page)
            self.model.uncharge(page)
            self._freed(page)

    def _free_prepare(self, page: Page) -> None:
        """The checks of a page reaching count 0 (bad_page) and its LRU removal."""
        why = None
        if page.mapcount:
            why = f"still mapped ({page.mapcount} ptes)"
        elif page.flags & PG_locked:
            why = "that is locked (PG_locked)"
        elif page.in_cache or page.flags & PG_swapcache:
            why = "still in the page cache or swap cache"
        elif page.isolated:
            why = "that is isolated (the isolation's reference must be dropped by putback)"
        else:
            for (thread, name) in self.reservations:
                if name == page.name:
                    why = f"with a try_charge reservation of {thread} pending on it"
                    break
        if why:
            raise self.mm_bug("bad_page", page, f"freeing a page {why}")
        if page.flags & PG_lru:
            self.call("del_page_from_lru_list", page.name)
            self.model.page_lruvec(page)
            self.j.w(page, "flags", page.flags & ~PG_lru)

    def _freed(self, page: Page) -> None:
        self.call("free_page", page.name)
        if page.mapping == "anon":
            self.j.w(page, "mapping", None)  # free_pages_prepare clears the anon_vma pointer
        self.j.w(page, "freed", True)

    def _release_pages(self, pages: list[Page]) -> None:
        """release_pages (mm/swap.c): compound pages freed one by one; the others that reach
        count 0 are uncharged the model's way (3.17: one list after the loop, v1: page by page
        inside it)."""
        self.call("release_pages", *(p.name for p in pages))
        to_free: list[Page] = []
        for page in pages:
            self._need_ref(page, "release_pages")
            if page.huge:
                self._put(page)  # put_compound_page -> __page_cache_release
                continue
            rc = page.refcount - 1
            self.j.w(page, "refcount", rc)
            if rc == 0:
                self._free_prepare(page)
                self.model.release_page_freed(page)
                to_free.append(page)
        self.model.release_pages_uncharge(to_free)
        # pages_to_free was built with list_add: free_hot_cold_page_list frees last-freed first
        for page in reversed(to_free):
            self._freed(page)

    def _lru_add(self, page: Page) -> None:
        """lru_cache_add -> __pagevec_lru_add_fn: looks up the lruvec, sets PG_lru."""
        self.call("lru_cache_add", page.name)
        self.model.page_lruvec(page)
        self.j.w(page, "flags", page.flags | PG_lru)

    def isolate_lru_page(self, page: Page) -> None:
        """isolate_lru_page (mm/vmscan.c): off the LRU onto a private list, +1 reference."""
        self._need_ref(page, "isolate_lru_page")
        if not page.flags & PG_lru:
            raise self.mm_bug("isolate_lru_page", page, "the page is not on the LRU")
        self.call("isolate_lru_page", page.name)
        self.model.page_lruvec(page)
        self.j.w(page, "flags", page.flags & ~PG_lru)
        self.j.w(page, "isolated", True)
        self._get(page)

    def putback_lru_page(self, page: Page) -> None:
        """putback_lru_page (mm/vmscan.c): back on the LRU, the isolation's reference dropped."""
        self.call("putback_lru_page", page.name)
        self.j.w(page, "isolated", False)
        self._lru_add(page)
        self._put(page)

    def _map(self, page: Page, take_ref: bool = True, swapin: bool = False) -> None:
        """page_add_new_anon_rmap (a new page) / do_page_add_anon_rmap (do_swap_page's page,
        read from swap, in the swap cache or taken out of it by reuse_swap_page) /
        page_add_anon_rmap / page_add_file_rmap, and the pte."""
        if page.anon:
            if swapin or (page.mapping is None and page.readahead):
                self.call("do_page_add_anon_rmap", page.name)
            elif page.mapping is None:
                self.call("page_add_new_anon_rmap", page.name)
            else:
                self.call("page_add_anon_rmap", page.name)
            if page.mapping is None:
                self.j.w(page, "mapping", "anon")
        else:
            if not page.in_cache:
                raise self.mm_bug(
                    "page_add_file_rmap", page, "a file/shmem page is mapped from its page cache"
                )
            self.call("page_add_file_rmap", page.name)
        self.j.w(page, "mapcount", page.mapcount + 1)
        if take_ref:
            self._get(page)

    def _remove_rmap(self, page: Page) -> None:
        """page_remove_rmap (mm/rmap.c): one mapping less; legacy uncharges at zero."""
        if page.mapcount <= 0:
            raise self.mm_bug("page_remove_rmap", page, "the page is not mapped")
        self.call("page_remove_rmap", page.name)
        self.j.w(page, "mapcount", page.mapcount - 1)
        if page.mapcount == 0:
            self.model.page_remove_rmap(page)

    def _delete_from_page_cache(self, page: Page) -> None:
        """__delete_from_page_cache (mm/filemap.c): mapping cleared; the caller drops the ref."""
        if page.mapcount:
            raise self.mm_bug(
                "__delete_from_page_cache: BUG_ON(page_mapped(page))", page, "still mapped"
            )
        self.call("__delete_from_page_cache", page.name)
        self.j.w(page, "in_cache", False)
        self.j.w(page, "mapping", None)

    def _delete_from_swap_cache(self, page: Page) -> SwapEntry:
        """__delete_from_swap_cache (mm/swap_state.c): out of the swap cache, entry kept."""
        entry = page.entry
        self.call("__delete_from_swap_cache", page.name, entry.name)
        self.j.w(page, "flags", page.flags & ~PG_swapcache)
        self.j.w(page, "entry", None)
        self.j.w(entry, "page", None)
        return entry

    def _swapcache_free(self, entry: SwapEntry, page: Page) -> None:
        """swapcache_free (mm/swapfile.c): swap_entry_free(SWAP_HAS_CACHE), then the model."""
        if self.model.swapcache_free_takes_page:  # 3.16's swapcache_free(entry, page)
            self.call("swapcache_free", entry.name, page.name)
        else:
            self.call("swapcache_free", entry.name)
        self._swap_entry_settle(entry)
        self.model.swapcache_free(entry, page)

    def _swap_entry_settle(self, entry: SwapEntry) -> None:
        """The tail of swap_entry_free: with no pte reference left, mem_cgroup_uncharge_swap;
        with no reference at all, the slot is freed."""
        if entry.count == 0:
            self.model.uncharge_swap(entry)
            if entry.page is None:
                self.call("swap_entry_free", entry.name)
                self.j.w(entry, "freed", True)

    def _swap_free(self, entry: SwapEntry) -> None:
        """swap_free (mm/swapfile.c): drop one pte reference of the entry."""
        if entry.freed or entry.count <= 0:
            raise self.mm_bug("swap_free", None, f"swap entry {entry.name} has no pte reference")
        self.call("swap_free", entry.name)
        self.j.w(entry, "count", entry.count - 1)
        self._swap_entry_settle(entry)

    def _readahead(self, entry: SwapEntry, name: str) -> Page:
        """read_swap_cache_async (mm/swap_state.c): a new uncharged anon page in the swap cache,
        on the LRU, with the swap cache's reference."""
        if entry.freed:
            raise self.mm_bug("read_swap_cache_async", None, f"swap entry {entry.name} is free")
        if entry.page is not None:
            raise self.mm_bug(
                "read_swap_cache_async", None, f"{entry.name} already has {entry.page.name} cached"
            )
        self._new_name(name)
        self._room(1)
        page = Page(name, "anon", refcount=1, flags=PG_swapcache, entry=entry, readahead=True)
        self.call("read_swap_cache_async", entry.name, name)
        self.j.put(self.pages, name, page)
        self.j.w(entry, "page", page)
        self._lru_add(page)
        return page

    def _reservation(self, page: Page) -> Reservation:
        r = self.reservations.get((self.thread, page.name))
        if r is None:
            raise self.mm_bug(
                "commit/cancel without try_charge",
                page,
                f"{self.thread} has no pending reservation",
            )
        return r

    # ======================================================================================
    # page primitives (LANGUAGE §3.2)
    # ======================================================================================
    @step
    def alloc(self, name: str, kind: str, huge: bool = False):
        """alloc_pages: a new page, refcount 1, no mapping, uncharged."""
        self._alloc(name, kind, huge)

    @step
    def try_charge(self, name: str, memcg: str):
        """mem_cgroup_try_charge: reserve a charge for the page, pending until commit/cancel."""
        page = self._chargeable(name)
        got = self.model.try_charge(page, self.memcg(memcg))
        self.j.put(
            self.reservations,
            (self.thread, name),
            Reservation(self.thread, page, got, page.nr, self.swap_account),
        )

    def _chargeable(self, name: str) -> Page:
        """The page a try_charge may reserve for: held, and not already reserved by this thread."""
        page = self.page(name)
        self._need_ref(page, "mem_cgroup_try_charge")
        if (self.thread, name) in self.reservations:
            raise self.mm_bug(
                "mem_cgroup_try_charge", page, f"{self.thread} already has a reservation for it"
            )
        return page

    @step
    def commit(self, name: str, lrucare: bool = False):
        """mem_cgroup_commit_charge of the thread's pending reservation."""
        page = self.page(name)
        r = self._reservation(page)
        self.model.commit_charge(page, r.memcg, lrucare)
        self.j.put(self.reservations, (self.thread, name), MISSING)

    @step
    def cancel(self, name: str):
        """mem_cgroup_cancel_charge of the thread's pending reservation."""
        page = self.page(name)
        r = self._reservation(page)
        self.model.cancel_charge(page, r.memcg)
        self.j.put(self.reservations, (self.thread, name), MISSING)

    @step
    def charge(self, name: str, memcg: str, lrucare: bool = False):
        """try_charge + commit in one step."""
        page = self._chargeable(name)
        self.model.charge(page, self.memcg(memcg), lrucare)

    @step
    def map(self, name: str):
        """Add one pte mapping (rmap + pte): mapcount +1, refcount +1."""
        page = self.page(name)
        self._need_ref(page, "page_add_rmap")
        self._map(page)

    @step
    def unmap(self, name: str):
        """zap_pte_range for one pte: page_remove_rmap, then the pte's reference (deferred to the
        end of an open `zap`)."""
        page = self.page(name)
        if page.mapcount <= 0:
            raise self.mm_bug("page_remove_rmap", page, "unmap of a page with no mapping")
        self._remove_rmap(page)
        zap = self.zaps.get(self.thread)
        if zap is not None:
            self.j.w(zap, "pages", zap.pages + (page,))
        else:
            self._put(page)

    @step
    def try_to_unmap(self, name: str):
        """try_to_unmap (mm/rmap.c) for reclaim: every pte goes; in swap cache each becomes a
        swap pte (swap_duplicate)."""
        self._try_to_unmap(self.page(name))

    def _try_to_unmap(self, page: Page) -> None:
        n = page.mapcount
        if n == 0:
            self.note(f"{page.name} is not mapped: try_to_unmap has nothing to do")
            return
        if not page.anon:
            self._need_locked(page, "rmap_walk_file: VM_BUG_ON(!PageLocked(page))")
        elif not page.flags & PG_swapcache:
            raise self.mm_bug(
                "try_to_unmap_one: BUG_ON(TTU_ACTION(flags) != TTU_MIGRATION)",
                page,
                "an anon page must be in the swap cache before reclaim unmaps it",
            )
        self.call("try_to_unmap", page.name)
        if page.flags & PG_swapcache:  # each pte becomes a swap pte (swap_duplicate)
            self.j.w(page.entry, "count", page.entry.count + n)
        self._unmap_ptes(page)

    def _unmap_ptes(self, page: Page) -> None:
        """Remove every pte of the page (page_remove_rmap each) and drop their references."""
        n = page.mapcount
        for _ in range(n):
            self._remove_rmap(page)
        self._put(page, n)

    @step
    def get(self, name: str):
        """get_page: +1 reference."""
        page = self.page(name)
        if page.refcount <= 0:
            raise self._no_ref(page, "get_page")
        self.j.w(page, "refcount", page.refcount + 1)

    @step
    def put(self, name: str):
        """put_page: -1 reference; the last one frees the page (mem_cgroup_uncharge)."""
        page = self.page(name)
        if page.refcount <= 0:
            raise self._no_ref(page, "put_page")
        self._put(page)

    @step
    def lock(self, name: str):
        """lock_page."""
        self._lock(self.page(name))

    @step
    def unlock(self, name: str):
        """unlock_page."""
        self._unlock(self.page(name))

    @step
    def lru_add(self, name: str):
        """lru_cache_add."""
        page = self.page(name)
        self._need_ref(page, "lru_cache_add")
        if page.flags & PG_lru or page.isolated:
            raise self.mm_bug(
                "__pagevec_lru_add_fn: VM_BUG_ON_PAGE(PageLRU(page))",
                page,
                "already on the LRU or isolated from it",
            )
        self._lru_add(page)

    @step
    def isolate(self, name: str):
        """isolate_lru_page."""
        self.isolate_lru_page(self.page(name))

    @step
    def putback(self, name: str):
        """putback_lru_page."""
        page = self.page(name)
        if not page.isolated:
            raise self.mm_bug("putback_lru_page", page, "the page is not isolated")
        self.putback_lru_page(page)

    @step
    def add_to_cache(self, name: str):
        """add_to_page_cache_locked's radix-tree insertion (no charge: that is commit's)."""
        page = self.page(name)
        self._need_ref(page, "add_to_page_cache")
        self._need_locked(page, "__add_to_page_cache_locked: VM_BUG_ON_PAGE(!PageLocked(page))")
        if page.anon:
            raise self.mm_bug("add_to_page_cache", page, "anon pages have no page cache")
        if page.in_cache or page.flags & PG_swapcache:
            raise self.mm_bug("add_to_page_cache", page, "already in a cache")
        self.call("add_to_page_cache", page.name)
        self._get(page)
        self.j.w(page, "mapping", "file")
        self.j.w(page, "in_cache", True)

    @step
    def delete_from_cache(self, name: str):
        """delete_from_page_cache (mm/filemap.c)."""
        page = self.page(name)
        self._need_locked(page, "delete_from_page_cache: BUG_ON(!PageLocked(page))")
        if not page.in_cache:
            raise self.mm_bug("delete_from_page_cache", page, "not in the page cache")
        self._delete_from_page_cache(page)
        self.model.delete_from_page_cache(page)
        self._put(page)

    @step
    def add_to_swap(self, name: str, entry_name: str):
        """add_to_swap (mm/swap_state.c): a new swap entry, the page in its swap cache."""
        page = self.page(name)
        self._need_ref(page, "add_to_swap")
        self._need_locked(page, "add_to_swap: VM_BUG_ON_PAGE(!PageLocked(page))")
        self._add_to_swap(page, entry_name)

    def _add_to_swap(self, page: Page, entry_name: str) -> SwapEntry:
        if not page.anon:
            raise self.mm_bug("add_to_swap", page, "only anon pages go to swap this way")
        if page.huge:
            raise self.mm_bug("add_to_swap", page, "split the huge page first")
        if page.flags & PG_swapcache:
            raise self.mm_bug("__add_to_swap_cache: VM_BUG_ON_PAGE(PageSwapCache(page))", page,
                              "the page is already in the swap cache")
        self._new_name(entry_name)
        entry = SwapEntry(entry_name, page=page)
        self.call("add_to_swap", page.name, entry_name)
        self.j.put(self.entries, entry_name, entry)
        self.j.w(page, "flags", page.flags | PG_swapcache)
        self.j.w(page, "entry", entry)
        self._get(page)
        return entry

    @step
    def delete_from_swap_cache(self, name: str):
        """delete_from_swap_cache (mm/swap_state.c)."""
        page = self.page(name)
        self._need_locked(page, "delete_from_swap_cache: VM_BUG_ON_PAGE(!PageLocked(page))")
        self._delete_from_swap_cache_full(page)

    def _delete_from_swap_cache_full(self, page: Page) -> None:
        if not page.flags & PG_swapcache:
            raise self.mm_bug("delete_from_swap_cache", page, "not in the swap cache")
        entry = self._delete_from_swap_cache(page)
        self._swapcache_free(entry, page)
        self._put(page)

    @step
    def swapout(self, name: str):
        """__remove_mapping of a swap-cache page, then unlock and free it the way
        shrink_page_list does (inside its uncharge window under v1)."""
        page = self.page(name)
        self._need_locked(page, "__remove_mapping: BUG_ON(!PageLocked(page))")
        if not page.flags & PG_swapcache:
            raise self.mm_bug("__remove_mapping", page, "swapout needs a swap-cache page")
        # `swapout` is a successful __remove_mapping: where the kernel's freeze would fail
        # and keep the page (`reclaim` shows that outcome), the statement is refused
        freeze = "__remove_mapping: page_freeze_refs(page, 2) fails"
        if page.mapcount:
            raise self.mm_bug(freeze, page, f"the page is still mapped ({page.mapcount} ptes "
                              "hold references): try_to_unmap it first")
        if page.refcount != 2:
            raise self.mm_bug(freeze, page, f"count {page.refcount}, not 2 (isolation + swap "
                              "cache): somebody else holds the page")
        if not page.isolated and not page.flags & PG_lru:
            raise self.mm_bug("shrink_page_list", page, "reclaim works on pages it isolated")
        # a page still on the LRU gets as far as mem_cgroup_swapout's VM_BUG_ON (memcg)
        self.model.uncharge_start(self.thread)
        self._remove_mapping_and_free(page)
        self.model.uncharge_end(self.thread)

    def _remove_mapping_and_free(self, page: Page) -> None:
        """__remove_mapping with the count frozen from 2, unlock, and shrink_page_list's free."""
        self.call("__remove_mapping", page.name)
        self.j.w(page, "refcount", 0)
        if page.flags & PG_swapcache:
            entry = page.entry
            self.model.swapout(page, entry)
            self._delete_from_swap_cache(page)
            self._swapcache_free(entry, page)
        else:
            self._delete_from_page_cache(page)
            self.model.delete_from_page_cache(page)
        self._unlock(page)
        self.j.w(page, "isolated", False)
        if page.flags & PG_lru:  # free_hot_cold_page_list frees what reclaim isolated
            raise self.mm_bug("bad_page", page, "freeing a page still on the LRU (reclaim "
                              "frees the pages it isolated)")
        self._free_prepare(page)
        self.model.uncharge_list([page])
        self._freed(page)

    @step
    def readahead(self, entry_name: str, name: str):
        """read_swap_cache_async: page `name` in the swap cache for the entry, on the LRU."""
        self._readahead(self.entry(entry_name), name)

    @step
    def free_swap(self, entry_name: str):
        """swap_free: drop one pte reference of the entry."""
        self._swap_free(self.entry(entry_name))

    @step
    def release(self, *names: str):
        """release_pages: drop one reference of each page."""
        self._release_pages([self.page(n) for n in names])

    # ======================================================================================
    # blocks
    # ======================================================================================
    @step
    def zap_begin(self):
        """unmap_page_range starts (munmap/exit); v1 and legacy open the uncharge window."""
        if self.thread in self.zaps:
            raise ScenarioError("zap blocks do not nest")
        self.model.uncharge_start(self.thread)
        self.j.put(self.zaps, self.thread, Zap(self.thread))

    @step
    def zap_end(self):
        """The window closes, then tlb_finish_mmu -> tlb_flush_mmu_free: for each gather batch,
        free_pages_and_swap_cache in PAGEVEC_SIZE chunks: unmapped swap-cache pages without swap
        references leave the swap cache, and release_pages drops the chunk's deferred pte
        references in the order the unmaps ran (3.17.4; one release_pages per batch came in
        3.18, "mm: memcontrol: do not kill uncharge batching in free_pages_and_swap_cache")."""
        zap = self.zaps.get(self.thread)
        if zap is None:
            raise ScenarioError("no zap block is open")
        self.model.uncharge_end(self.thread)
        self.j.put(self.zaps, self.thread, MISSING)
        for chunk in mmu_gather_chunks(list(zap.pages)):
            for page in dict.fromkeys(chunk):
                self._free_swap_cache(page)
            self._release_pages(chunk)

    def _free_swap_cache(self, page: Page) -> None:
        """free_swap_cache (mm/swap_state.c): trylock, try_to_free_swap, unlock."""
        if not page.flags & PG_swapcache or page.mapcount or page.flags & PG_locked:
            return
        if page.entry.count:
            return
        self.call("try_to_free_swap", page.name)
        self._lock(page)
        self._delete_from_swap_cache_full(page)
        self._unlock(page)

    @step
    def batch_begin(self):
        """mem_cgroup_uncharge_start around a block (v1, legacy; 3.17 has none)."""
        if not self.model.has_windows:
            self.note(f"{self.model.name} has no uncharge window: the block runs as written")
        self.model.uncharge_start(self.thread)

    @step
    def batch_end(self):
        """mem_cgroup_uncharge_end."""
        if not self.model.has_windows:
            self.note(f"{self.model.name} has no uncharge window: mem_cgroup_uncharge_end is gone")
        self.model.uncharge_end(self.thread)

    # ======================================================================================
    # kernel paths (LANGUAGE §3.4, §3.5): each is a sequence of phases
    # ======================================================================================
    # A composite is written as phases (`PATHS` below): `run` executes them in one step; the
    # explorer executes one phase per step, so other threads can run between them. A phase
    # ends where the kernel path can be preempted or waits (a page lock, I/O), never inside a
    # spinlock's section. Each phase reads and writes its call's context `c` (names and
    # small values only); it returns None to go on, or the path's outcome to end it early.
    def _path(self, verb: str, c: dict):
        for phase in PATHS[verb]:
            out = phase(self, c)
            if out is not None:
                return out
        return None

    @step
    def phase(self, verb: str, index: int, c: dict):
        """Phase `index` of composite `verb` as a step of its own (the explorer's unit of
        interleaving); sets c["end"] when the composite is over."""
        phases = PATHS[verb]
        out = phases[index](self, c)
        c["end"] = out is not None or index == len(phases) - 1
        return out

    def _hold(self, page: Page, got: MemCgroup | None) -> MemCgroup | None:
        """A composite's charge is in flight from its try_charge to its commit: a reservation
        of this thread, so that the state between the phases is what the kernel's is."""
        if got is not None:
            self.j.put(self.reservations, (self.thread, page.name),
                       Reservation(self.thread, page, got, page.nr, self.swap_account, True))
        return got

    def _settle(self, page: Page) -> None:
        """The composite commits (or gives back) its charge: the reservation ends."""
        self.j.put(self.reservations, (self.thread, page.name), MISSING)

    @step
    def fault(self, name: str, memcg: str, huge: bool = False):
        """do_anonymous_page / __do_huge_pmd_anonymous_page: a new anon page, charged, mapped,
        on the LRU."""
        return self._path("fault", path_context("fault", (name, memcg, huge)))

    def _fault_charge(self, c: dict) -> None:
        """Allocate and charge (no lock held)."""
        target = self.memcg(c["memcg"])
        page = self._alloc(c["name"], "anon", c["huge"])
        self.call("do_huge_pmd_anonymous_page" if c["huge"] else "do_anonymous_page", page.name)
        try:
            c["got"] = self._hold(page, self.model.charge_new_page(page, target))
        except ChargeFailed:
            self._put(page)
            raise

    def _fault_map(self, c: dict) -> None:
        """Under the page table lock: rmap, commit, LRU."""
        page = self.pages[c["name"]]
        self._map(page, take_ref=False)  # the allocation's reference becomes the pte's
        self._settle(page)
        self.model.commit_new_page(page, c["got"])
        self._lru_add(page)

    @step
    def cache(self, name: str, memcg: str):
        """add_to_page_cache_lru of a new file page: locked, charged, in the cache, on the LRU,
        unlocked; the caller's reference dropped."""
        return self._path("cache", path_context("cache", (name, memcg)))

    def _cache_charge(self, c: dict) -> None:
        target = self.memcg(c["memcg"])
        page = self._alloc(c["name"], "file")
        self.call("add_to_page_cache_lru", page.name)
        self.j.w(page, "flags", page.flags | PG_locked)  # __set_page_locked
        self.j.w(page, "locker", self.thread)
        try:
            c["got"] = self._hold(page, self.model.charge_new_page(page, target))
        except ChargeFailed:
            self._unlock(page)
            self._put(page)
            raise

    def _cache_insert(self, c: dict) -> None:
        """The radix tree slot (under the mapping's tree_lock), the commit, the LRU."""
        page = self.pages[c["name"]]
        self.call("add_to_page_cache", page.name)
        self._get(page)
        self.j.w(page, "mapping", "file")
        self.j.w(page, "in_cache", True)
        self._settle(page)
        self.model.commit_new_page(page, c["got"])
        self._lru_add(page)

    def _cache_done(self, c: dict) -> None:
        """The read completes: unlock, and the caller's reference goes."""
        page = self.pages[c["name"]]
        self._unlock(page)
        self._put(page)

    @step
    def cow(self, old_name: str, new_name: str, memcg: str):
        """do_wp_page: a new anon page charged and mapped, one mapping of the old removed."""
        return self._path("cow", path_context("cow", (old_name, new_name, memcg)))

    def _cow_charge(self, c: dict) -> None:
        old = self.page(c["old"])
        target = self.memcg(c["memcg"])
        if old.mapcount <= 0:
            raise self.mm_bug("do_wp_page", old, "a write fault needs a mapped page")
        if old.huge:
            raise ScenarioError(
                "cow of a huge page (do_huge_pmd_wp_page) is not modelled: split it first"
            )
        self.call("do_wp_page", old.name, c["new"])
        new = self._alloc(c["new"], "anon")
        try:
            c["got"] = self._hold(new, self.model.charge_new_page(new, target))
        except ChargeFailed:
            self._put(new)
            raise

    def _cow_map(self, c: dict) -> None:
        """Under the page table lock: the new page replaces the old one's pte."""
        old, new = self.pages[c["old"]], self.pages[c["new"]]
        self._map(new, take_ref=False)
        self._settle(new)
        self.model.commit_new_page(new, c["got"])
        self._lru_add(new)
        self._remove_rmap(old)
        self._put(old)  # the old pte's reference

    @step
    def truncate(self, name: str):
        """truncate_inode_pages_range for one page: lookup reference, lock, unmap, delete from the
        page cache, unlock, pagevec_release (inside an uncharge window under v1)."""
        return self._path("truncate", path_context("truncate", (name,)))

    def _truncate_lookup(self, c: dict) -> None:
        page = self.page(c["name"])
        if not page.in_cache:
            raise self.mm_bug("truncate_inode_page", page, "not in the page cache")
        self.model.uncharge_start(self.thread)
        self.call("find_get_page", page.name)
        self._get(page)

    def _truncate_lock(self, c: dict) -> None:
        self._lock(self.pages[c["name"]])

    def _truncate_unmap(self, c: dict) -> None:
        """unmap_mapping_range, when the page is mapped (i_mmap_mutex, the ptes' locks)."""
        page = self.pages[c["name"]]
        if page.mapcount:
            self.call("unmap_mapping_range", page.name)
            self._unmap_ptes(page)

    def _truncate_delete(self, c: dict) -> None:
        """truncate_complete_page: out of the page cache (tree_lock), its reference dropped."""
        page = self.pages[c["name"]]
        if not page.in_cache:  # the kernel rechecks page->mapping after lock_page
            raise self.mm_bug("truncate_inode_page", page, "not in the page cache any more")
        self._delete_from_page_cache(page)
        self.model.delete_from_page_cache(page)
        self._put(page)

    def _truncate_release(self, c: dict) -> None:
        page = self.pages[c["name"]]
        self._unlock(page)
        self._release_pages([page])
        self.model.uncharge_end(self.thread)

    @step
    def swapin(self, entry_name: str, name: str, memcg: str | None = None, reuse: bool = False):
        """do_swap_page (mm/memory.c)."""
        return self._path("swapin", path_context("swapin", (entry_name, name, memcg, reuse)))

    def _swapin_lookup(self, c: dict) -> None:
        """lookup_swap_cache, or swapin_readahead; the page comes back with a reference."""
        entry = self.entry(c["entry"])
        name = c["name"]
        if c["memcg"] is not None:
            self.memcg(c["memcg"])
        if entry.freed or entry.count <= 0:
            raise self.mm_bug("do_swap_page", None, f"no pte references swap entry {entry.name}")
        page = entry.page
        if page is not None and page.name != name:
            raise ScenarioError(f"{entry.name}'s swap-cache page is {page.name}, not {name}")
        self.call("do_swap_page", entry.name)
        self.call("lookup_swap_cache", entry.name)
        if page is None:  # swapin_readahead -> read_swap_cache_async, which returns it held
            self.note(f"{entry.name} is not in the swap cache: swapin_readahead")
            page = self._readahead(entry, name)
        self._get(page)

    def _swapin_lock(self, c: dict) -> None:
        """lock_page; the kernel then rechecks that the page is still E's swap-cache page."""
        page = self.pages[c["name"]]
        self._lock(page)
        if page.entry is None or page.entry.name != c["entry"]:
            raise self.mm_bug("do_swap_page: !PageSwapCache(page) after lock_page", page,
                              f"{page.name} left the swap cache: the fault retries")

    def _swapin_charge(self, c: dict) -> None:
        page = self.pages[c["name"]]
        target = self.memcg(c["memcg"]) if c["memcg"] is not None else self.root
        try:
            c["got"] = self._hold(page, self.model.try_charge(page, target))
        except ChargeFailed:
            self._unlock(page)
            self._put(page)
            raise

    def _swapin_map(self, c: dict) -> None:
        """Under the page table lock: [reuse_swap_page], rmap, commit, swap_free, and
        unlock_page (before pte_unmap_unlock)."""
        page = self.pages[c["name"]]
        entry = self.entries[c["entry"]]
        if c["reuse"]:
            self._reuse_swap_page(page)
        self._map(page, take_ref=False, swapin=True)  # the lookup reference becomes the pte's
        self._settle(page)
        self.model.commit_charge(page, c["got"], True)
        self._swap_free(entry)
        self._unlock(page)

    def _reuse_swap_page(self, page: Page) -> None:
        """reuse_swap_page (mm/swapfile.c): exclusive (unmapped, one swap reference) -> leave the
        swap cache."""
        self.call("reuse_swap_page", page.name)
        if page.flags & PG_swapcache and page.mapcount == 0 and page.entry.count == 1:
            self._delete_from_swap_cache_full(page)
        else:
            self.note(f"reuse_swap_page: {page.name} is not exclusive, it stays in the swap cache")

    @step
    def reclaim(self, name: str, entry_name: str | None = None):
        """shrink_page_list for one anon or file page."""
        return self._path("reclaim", path_context("reclaim", (name, entry_name)))

    def _reclaim_isolate(self, c: dict) -> None:
        """shrink_inactive_list isolates the page, then shrinks the list."""
        name, entry_name = c["name"], c["entry"]
        page = self.page(name)
        if page.kind == "shmem":
            raise ScenarioError("reclaim of shmem pages (shmem_writepage) is not modelled")
        if page.huge:
            raise ScenarioError("reclaim of a huge page: split it first")
        if page.anon and not page.flags & PG_swapcache:
            if entry_name is None:
                raise ScenarioError(f"reclaim of anon page {name} needs `as ENTRY`")
        elif entry_name is not None:
            raise ScenarioError(f"`as {entry_name}`: {name} gets no new swap entry")
        self.isolate_lru_page(page)

    def _reclaim_trylock(self, c: dict) -> str | None:
        page = self.pages[c["name"]]
        self.call("shrink_page_list", page.name)
        self.model.uncharge_start(self.thread)
        if page.flags & PG_locked:
            self.note(f"trylock_page({page.name}) fails: keep")
            self.putback_lru_page(page)
            self.model.uncharge_end(self.thread)
            return "kept"
        self._lock(page)
        return None

    def _reclaim_add_to_swap(self, c: dict) -> None:
        if c["entry"] is not None:
            self._add_to_swap(self.pages[c["name"]], c["entry"])

    def _reclaim_unmap(self, c: dict) -> None:
        page = self.pages[c["name"]]
        if page.mapcount:
            self._try_to_unmap(page)

    def _reclaim_free(self, c: dict) -> str:
        """__remove_mapping (the reference freeze), or keep the page."""
        page = self.pages[c["name"]]
        if not page.in_cache and not page.flags & PG_swapcache:
            # a truncation took it out of the cache before reclaim locked it
            self.note(f"page_mapping({page.name}) is NULL: keep_locked")
            self._unlock(page)
            self.putback_lru_page(page)
            outcome = "kept"
        elif page.refcount != 2:
            self.note(f"page_freeze_refs({page.name}, 2) fails: count {page.refcount}, keep")
            self._unlock(page)
            self.putback_lru_page(page)
            outcome = "kept"
        else:
            self._remove_mapping_and_free(page)
            outcome = "ok"
        self.model.uncharge_end(self.thread)
        return outcome

    # ======================================================================================
    # migration, replacement, moving, splitting (LANGUAGE §3.5)
    # ======================================================================================
    @step
    def migrate(self, old_name: str, new_name: str, fail: bool = False):
        """migrate_pages for one page: unmap_and_move -> __unmap_and_move -> move_to_new_page."""
        return self._path("migrate", path_context("migrate", (old_name, new_name, fail)))

    def _migrate_start(self, c: dict) -> str | None:
        """unmap_and_move: the checks, and the page freed from under us."""
        old, new = self.page(c["old"]), self.page(c["new"])
        if not old.isolated:
            raise self.mm_bug("migrate_pages", old, "the page to migrate must be isolated")
        if (
            new.freed
            or new.refcount != 1
            or new.mapcount
            or new.mapping is not None
            or new.in_cache
            or new.flags
            or new.isolated
            or new.pc_flags
        ):
            raise self.mm_bug("migrate_pages", new, "the new page must be freshly allocated")
        if new.kind != old.kind or new.huge != old.huge:
            raise self.mm_bug(
                "migrate_pages", new, "the new page must be of the same kind and size"
            )
        if old.huge:
            raise ScenarioError("migration of a huge page splits it first: split it")
        self.call("unmap_and_move", old.name, new.name)
        if old.refcount == 1:  # only the isolation's reference: rc 0, both put back
            self.note(f"page_count({old.name}) == 1: freed from under us, nothing to migrate")
            self.putback_lru_page(old)
            self._putback_new(new)
            return "ok"
        return None

    def _migrate_lock(self, c: dict) -> None:
        """__unmap_and_move: lock_page(old) (MIGRATE_SYNC waits), legacy's prepare_migration."""
        old, new = self.pages[c["old"]], self.pages[c["new"]]
        self._lock(old)
        self.model.prepare_migration(old, new)

    def _migrate_unmap(self, c: dict) -> None:
        """page_get_anon_vma, then try_to_unmap(TTU_MIGRATION): the ptes become migration
        entries. An anon page neither mapped nor in the swap cache has no anon_vma to be
        had: -EAGAIN before anything moves (legacy's end_migration runs)."""
        old, new = self.pages[c["old"]], self.pages[c["new"]]
        if old.mapping == "anon" and not old.mapcount and not old.flags & PG_swapcache:
            self.note(f"page_get_anon_vma({old.name}): not mapped, not in the swap cache: "
                      "-EAGAIN")
            self.model.end_migration(old, new, False)
            self._unlock(old)
            self.putback_lru_page(old)
            self._putback_new(new)
            raise KernelError("EAGAIN", f"{old.name} is anon but neither mapped nor in the swap "
                              "cache (no anon_vma to migrate it with)")
        c["nptes"] = old.mapcount
        if old.mapcount:
            self.call("try_to_unmap", old.name, "TTU_MIGRATION")
            self._unmap_ptes(old)

    def _migrate_move(self, c: dict) -> None:
        """move_to_new_page: migrate_page_move_mapping's reference check and the slot's move;
        3.17 transfers the charge here, before the ptes are restored."""
        old, new = self.pages[c["old"]], self.pages[c["new"]]
        w = self.j.w
        self.call("move_to_new_page", new.name, old.name)
        w(new, "flags", new.flags | PG_locked)  # trylock_page(newpage)
        w(new, "locker", self.thread)
        w(new, "mapping", old.mapping)
        expected = 1 + (1 if old.in_cache or old.flags & PG_swapcache else 0)
        c["ok"] = ok = not c["fail"] and old.refcount == expected
        if ok:
            self._move_mapping(old, new)
            if self.model.migrate_point == "before_remap":
                self.model.migrate(old, new, False)
        else:
            why = "forced" if c["fail"] else f"count {old.refcount}, expected {expected}"
            self.note(f"migrate_page_move_mapping fails ({why}): -EAGAIN")
            if not (new.anon and self.model.old_page_keeps_anon_mapping):
                w(new, "mapping", None)  # v1: `if (!PageAnon(newpage))` (freed with it later)

    def _migrate_remap(self, c: dict) -> None:
        """remove_migration_ptes (onto the new page, or back onto the old one on failure); v1
        transfers the charge after it; the new page is unlocked."""
        old, new = self.pages[c["old"]], self.pages[c["new"]]
        nptes = c["nptes"]
        if c["ok"]:
            self._remove_migration_ptes(old, new, nptes)
            if self.model.migrate_point == "after_remap":
                self.model.migrate(old, new, False)
            if not (old.anon and self.model.old_page_keeps_anon_mapping):
                self.j.w(old, "mapping", None)
            self.j.w(old, "replaced", True)
        self._unlock(new)
        if not c["ok"]:
            self._remove_migration_ptes(old, old, nptes)

    def _migrate_unlock(self, c: dict) -> None:
        """Legacy's end_migration, then unlock_page(old)."""
        old, new = self.pages[c["old"]], self.pages[c["new"]]
        self.model.end_migration(old, new, c["ok"])
        self._unlock(old)

    def _migrate_putback_old(self, c: dict) -> None:
        self.putback_lru_page(self.pages[c["old"]])

    def _migrate_putback_new(self, c: dict) -> str | None:
        self._putback_new(self.pages[c["new"]])
        if c["ok"]:
            return None
        if c["fail"]:
            return "failed"
        raise KernelError("EAGAIN", f"{c['old']} has references beyond the migration's")
    def _putback_new(self, page: Page) -> None:
        """putback_lru_page(newpage): on the LRU, the allocation's reference dropped."""
        self.call("putback_lru_page", page.name)
        self._lru_add(page)
        self._put(page)

    def _move_mapping(self, old: Page, new: Page) -> None:
        """migrate_page_move_mapping: the cache or swap-cache slot moves to the new page."""
        w = self.j.w
        if old.in_cache:
            self._get(new)
            w(new, "in_cache", True)
            w(old, "in_cache", False)
            self._put(old)
        elif old.flags & PG_swapcache:
            entry = old.entry
            self._get(new)
            w(new, "flags", new.flags | PG_swapcache)
            w(new, "entry", entry)
            w(new, "readahead", old.readahead)
            w(entry, "page", new)
            w(old, "flags", old.flags & ~PG_swapcache)
            w(old, "entry", None)
            self._put(old)

    def _remove_migration_ptes(self, old: Page, new: Page, nptes: int) -> None:
        """remove_migration_ptes: the migration entries become ptes of `new`."""
        if not nptes:
            return
        self.call("remove_migration_ptes", old.name, new.name)
        for _ in range(nptes):
            self._map(new)

    @step
    def replace_cache(self, old_name: str, new_name: str):
        """replace_page_cache_page (mm/filemap.c)."""
        old, new = self.page(old_name), self.page(new_name)
        self._need_locked(old, "replace_page_cache_page: VM_BUG_ON_PAGE(!PageLocked(old))")
        self._need_locked(new, "replace_page_cache_page: VM_BUG_ON_PAGE(!PageLocked(new))")
        if not old.in_cache:
            raise self.mm_bug("replace_page_cache_page", old, "the old page is not in the cache")
        if old.refcount < 2:
            raise self.mm_bug(
                "replace_page_cache_page", old, "the caller must hold the old page (refcount >= 2)"
            )
        if new.mapping is not None or new.in_cache or new.flags & PG_swapcache:
            raise self.mm_bug(
                "replace_page_cache_page: VM_BUG_ON_PAGE(new->mapping)", new, "already in a cache"
            )
        if new.kind != old.kind:
            raise self.mm_bug("replace_page_cache_page", new, "the pages must be of the same kind")
        self.call("replace_page_cache_page", old_name, new_name)
        self._get(new)
        self.j.w(new, "mapping", "file")
        self.j.w(new, "in_cache", True)
        self._delete_from_page_cache(old)
        self.model.replace_page_cache(old, new)
        self.j.w(old, "replaced", True)
        self._put(old)

    @step
    def move(self, name: str, memcg: str):
        """Charge moving at task migration for one page or one swap entry."""
        to = self.memcg(memcg)
        if name in self.entries:
            entry = self.entries[name]
            if entry.freed:
                raise ScenarioError(f"swap entry {name} is free")
            self.model.move_charge_swap(entry, to)
            return
        page = self.page(name)
        self._need_ref(page, "mem_cgroup_move_charge")
        self.model.move_charge_page(page, to)

    @step
    def split(self, name: str):
        """split_huge_page: tails P.1 ... P.511 with the head's mapcount and pc."""
        head = self.page(name)
        if not head.huge:
            raise self.mm_bug("split_huge_page", head, "not a huge page")
        if head.mapping != "anon":
            raise self.mm_bug("split_huge_page: BUG_ON(!PageAnon(page))", head, "never mapped")
        if not head.mapcount:
            raise self.mm_bug("split_huge_page", head, "page_get_anon_vma finds no anon_vma for "
                              "a page that is not mapped: the kernel's split fails")
        self._room(head.nr - 1)
        self.call("split_huge_page", name)
        n = head.mapcount
        flags = head.flags & PG_lru
        tails = []
        for i in range(1, head.nr):
            tname = f"{name}.{i}"
            self._new_name(tname)
            tail = Page(
                tname,
                "anon",
                refcount=n + (1 if head.isolated else 0),
                mapcount=n,
                mapping="anon",
                flags=flags,
                isolated=head.isolated,
                head=head,
            )
            self.j.put(self.pages, tname, tail)
            tails.append(tail)
        self.call("mem_cgroup_split_huge_fixup", name)
        self.model.split_huge_fixup(head, tails)
        self.j.w(head, "huge", False)

    # ======================================================================================
    # threads
    # ======================================================================================
    def end_thread(self, thread: str | None = None) -> None:
        """A thread (or the file) ends: it must hold no page lock, reservation or open block."""
        thread = self.thread if thread is None else thread
        problems = [
            f"holds the lock of {p.name}" for p in self.pages.values() if p.locker == thread
        ]
        problems += [
            f"has a pending reservation for {name}"
            for (t, name) in self.reservations
            if t == thread
        ]
        win = self.windows.get(thread)
        if win is not None and win.depth:
            problems.append("has an uncharge window open")
        if thread in self.zaps:
            problems.append("has a zap block open")
        if problems:
            raise ScenarioError(f"{thread} ends but " + "; ".join(problems))

    # ======================================================================================
    # what `expect` and `show` read
    # ======================================================================================
    def page_view(self, name: str) -> dict:
        p = self.page(name)
        return {
            "flags": decode(p.pc_flags, PCG_NAMES),
            "memcg": p.pc_memcg.name if p.pc_memcg is not None else "none",
            "refcount": p.refcount,
            "mapcount": p.mapcount,
            "page": decode(p.flags, PG_NAMES),
            "isolated": "yes" if p.isolated else "no",
            "kind": p.kind,
            "huge": "yes" if p.huge else "no",
            "entry": p.entry.name if p.entry is not None else "none",
            "freed": p.freed,
        }

    def memcg_view(self, path: str) -> dict:
        m = self.memcg(path)
        return {
            "usage": m.res.usage,
            "memsw": m.memsw.usage,
            "max_usage": m.res.max_usage,
            "memsw_max_usage": m.memsw.max_usage,
            "failcnt": m.res.failcnt,
            "memsw_failcnt": m.memsw.failcnt,
            "limit": "max" if m.res.limit is None else m.res.limit,
            "memsw_limit": "max" if m.memsw.limit is None else m.memsw.limit,
            "rss": m.rss,
            "cache": m.cache,
            "rss_huge": m.rss_huge,
            "swap": m.swap,
            "pgpgin": m.pgpgin,
            "pgpgout": m.pgpgout,
            "css": m.css,
            "reported_usage": self.model.reported_usage(m),
        }

    def entry_view(self, name: str) -> dict:
        e = self.entry(name)
        return {
            "memcg": e.record.name if e.record is not None else "none",
            "count": e.count,
            "page": e.page.name if e.page is not None else "none",
            "freed": e.freed,
        }

    def cost_view(self) -> dict:
        return attrs.asdict(self.cost)


# The arguments of each composite (the keys of its context) and its phases, in order (see
# Engine._path).
PATH_ARGS = {
    "fault": ("name", "memcg", "huge"),
    "cache": ("name", "memcg"),
    "cow": ("old", "new", "memcg"),
    "truncate": ("name",),
    "swapin": ("entry", "name", "memcg", "reuse"),
    "reclaim": ("name", "entry"),
    "migrate": ("old", "new", "fail"),
}


def path_context(verb: str, args: tuple) -> dict:
    """The context a composite's phases start from: its arguments by name."""
    return dict(zip(PATH_ARGS[verb], args, strict=True))


PATHS = {
    "fault": (Engine._fault_charge, Engine._fault_map),
    "cache": (Engine._cache_charge, Engine._cache_insert, Engine._cache_done),
    "cow": (Engine._cow_charge, Engine._cow_map),
    "truncate": (Engine._truncate_lookup, Engine._truncate_lock, Engine._truncate_unmap,
                 Engine._truncate_delete, Engine._truncate_release),
    "swapin": (Engine._swapin_lookup, Engine._swapin_lock, Engine._swapin_charge,
               Engine._swapin_map),
    "reclaim": (Engine._reclaim_isolate, Engine._reclaim_trylock, Engine._reclaim_add_to_swap,
                Engine._reclaim_unmap, Engine._reclaim_free),
    "migrate": (Engine._migrate_start, Engine._migrate_lock, Engine._migrate_unmap,
                Engine._migrate_move, Engine._migrate_remap, Engine._migrate_unlock,
                Engine._migrate_putback_old, Engine._migrate_putback_new),
}

__all__ = ["Engine", "StepResult", "EngineError", "VmBug", "KernelError", "ScenarioError"]
