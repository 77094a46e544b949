"""The hook protocol every memcg model implements, and the code v1 and 3.17 share.

The mm layer (`engine/mm.py`) calls these hooks at the kernel's call points; a model decides
what memcg does there. Hooks a model has no use for are no-ops in it (legacy's uncharge at
`page_remove_rmap`, for instance, is nothing in the rewrite). Names are mm/memcontrol.c's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memcglang.engine.errors import ChargeFailed, KernelError, VmBug
from memcglang.engine.res_counter import res_counter_charge, res_counter_uncharge
from memcglang.engine.state import (
    HPAGE_PMD_NR,
    PCG_MEM,
    PCG_MEMSW,
    PCG_USED,
    MemCgroup,
    Page,
    PG_locked,
    PG_lru,
    PG_swapcache,
    SwapEntry,
)

if TYPE_CHECKING:
    from memcglang.engine.mm import Engine

MEM_CGROUP_RECLAIM_RETRIES = 5


class MemcgModel:
    """Hook protocol plus the new charge API (mm: memcontrol: rewrite charge/uncharge API)."""

    name = "?"
    #: root's res_counter is charged and is the counter parent of every unchained memcg (v1)
    root_charged = False
    #: failed attempts of a base-page charge when nothing is reclaimable (1 + retries)
    base_attempts = 1 + MEM_CGROUP_RECLAIM_RETRIES
    #: likewise for a THP charge
    thp_attempts = 1
    #: mem_cgroup_do_precharge tries one bulk charge whatever the count (3.17; v1 only > 1)
    precharge_bulk_always = True
    #: failed attempts of each page-by-page precharge (legacy charges them with oom = false)
    precharge_page_attempts = base_attempts
    #: where migrate_pages calls the charge transfer: "before_remap" (3.17), "after_remap" (v1)
    migrate_point = "before_remap"
    #: per-task mem_cgroup_uncharge_start/end windows exist (v1, legacy)
    has_windows = False
    #: after a successful migration the old anon page keeps its anon_vma mapping (v1)
    old_page_keeps_anon_mapping = False
    #: mem_cgroup_move_account moves from's statistics before pc->mem_cgroup (3.16, v1)
    move_stats_from_first = False
    #: swapcache_free(entry, page): the page argument the rewrite dropped (legacy)
    swapcache_free_takes_page = False
    #: an uncharged page on the LRU must be a readahead or replaced page (I4; not legacy)
    check_lru_uncharged = True

    def __init__(self, mm: Engine):
        self.mm = mm
        self.j = mm.j
        self.cost = mm.cost
        #: the pc flags of a live page holding its full charge (no invariant can fail on it)
        self.charged_flags = self.commit_flags() if self.flags_consistent() else -1

    def flags_consistent(self) -> bool:
        """Whether the flags a commit sets pass I3 (v1 sets PCG_MEMSW with swap accounting off)."""
        return self.mm.swap_account or not self.commit_flags() & PCG_MEMSW

    # -- helpers ----------------------------------------------------------------------------
    def bug(self, assertion: str, page: Page | None, reason: str):
        return VmBug("memcg", assertion, page.dump() if page is not None else None, reason)

    def skip_counters(self, memcg: MemCgroup) -> bool:
        """Root's counters are never touched (3.17, legacy); v1 charges root like any memcg."""
        return memcg.parent is None and not self.root_charged

    def uncharge_counter(self, counter, nr: int) -> None:
        res_counter_uncharge(self.j, self.cost, counter, nr, self.mm.warn_underflow)

    def charge_statistics(self, memcg: MemCgroup, page: Page, nr: int) -> None:
        """mem_cgroup_charge_statistics (mm/memcontrol.c): RSS or CACHE, RSS_HUGE, one event."""
        w = self.j.w
        if page.anon:
            w(memcg, "rss", memcg.rss + nr)
        else:
            w(memcg, "cache", memcg.cache + nr)
        if page.huge:
            w(memcg, "rss_huge", memcg.rss_huge + nr)
        if nr > 0:
            w(memcg, "pgpgin", memcg.pgpgin + 1)
        else:
            w(memcg, "pgpgout", memcg.pgpgout + 1)

    def swap_statistics(self, memcg: MemCgroup, charge: bool) -> None:
        """mem_cgroup_swap_statistics (mm/memcontrol.c): SWAP += 1 or -= 1."""
        self.j.w(memcg, "swap", memcg.swap + (1 if charge else -1))

    # -- the LRU and pc->mem_cgroup ---------------------------------------------------------
    def page_lruvec(self, page: Page) -> None:
        """mem_cgroup_page_lruvec (mm/memcontrol.c): switch an uncharged off-LRU page to root."""
        root = self.mm.root
        if not page.flags & PG_lru and not page.pc_flags & PCG_USED and page.pc_memcg is not root:
            self.j.w(page, "pc_memcg", root)

    def lock_page_lru(self, page: Page) -> bool:
        """lock_page_lru (mm/memcontrol.c): take the page off its LRU if it is on one."""
        if page.flags & PG_lru:
            self.page_lruvec(page)
            self.j.w(page, "flags", page.flags & ~PG_lru)
            return True
        return False

    def unlock_page_lru(self, page: Page, isolated: bool) -> None:
        """unlock_page_lru (mm/memcontrol.c): put it back on the LRU of its (new) memcg."""
        if isolated:
            self.page_lruvec(page)
            self.j.w(page, "flags", page.flags | PG_lru)

    # -- charging ---------------------------------------------------------------------------
    def try_charge(self, page: Page, memcg: MemCgroup) -> MemCgroup | None:
        """mem_cgroup_try_charge (mm/memcontrol.c): reserve a charge; None is the NULL memcg."""
        mm = self.mm
        swapcache = page.flags & PG_swapcache
        if swapcache and page.pc_flags & PCG_USED:
            mm.note("page already charged in swap cache: nothing to reserve (memcg NULL)")
            return None
        if mm.swap_account and swapcache:
            memcg = self.memcg_from_swap_record(page) or memcg
        mm.call("try_charge", memcg.name, page.nr)
        self.charge_counters(memcg, page.nr, page.huge)
        return memcg

    def memcg_from_swap_record(self, page: Page) -> MemCgroup | None:
        """try_get_mem_cgroup_from_page for an uncharged swap-cache page: the memcg its swap
        entry records (the page lock keeps it from changing)."""
        if not page.flags & PG_locked:
            raise self.bug(
                "try_get_mem_cgroup_from_page: VM_BUG_ON_PAGE(!PageLocked(page))",
                page,
                "a swap-cache page must be locked to look up its swap record",
            )
        return page.entry.record if page.entry is not None else None

    def charge_counters(self, memcg: MemCgroup, nr: int, thp: bool, attempts: int | None = None):
        """try_charge (static, mm/memcontrol.c) in stock-free mode with nothing reclaimable.

        Each attempt charges res, then memsw (undoing res if memsw fails); every failed attempt
        adds 1 to the failing counter's failcnt. Raises ChargeFailed after the retry loop.
        """
        if self.skip_counters(memcg):
            return
        if attempts is None:
            attempts = self.thp_attempts if thp else self.base_attempts
        j, cost, swap = self.j, self.cost, self.mm.swap_account
        fail = None
        for _ in range(attempts):
            fail = res_counter_charge(j, cost, memcg.res, nr)
            if fail is None:
                if not swap:
                    return
                fail = res_counter_charge(j, cost, memcg.memsw, nr)
                if fail is None:
                    return
                self.uncharge_counter(memcg.res, nr)
        raise ChargeFailed(fail.kind, fail.memcg.name, fail.usage, fail.limit, attempts)

    def cancel_charge(self, page: Page, memcg: MemCgroup | None) -> None:
        """mem_cgroup_cancel_charge (mm/memcontrol.c): give a reservation back, counters only."""
        if memcg is None:
            return
        self.mm.call("cancel_charge", memcg.name, page.nr)
        self.cancel_counters(memcg, page.nr)

    def cancel_counters(self, memcg: MemCgroup, nr: int) -> None:
        """cancel_charge (static, mm/memcontrol.c)."""
        if self.skip_counters(memcg):
            return
        self.uncharge_counter(memcg.res, nr)
        if self.mm.swap_account:
            self.uncharge_counter(memcg.memsw, nr)

    def charge(self, page: Page, memcg: MemCgroup, lrucare: bool) -> None:
        """The `charge` statement: try_charge + commit in one go (legacy: newpage/cache charge)."""
        self.commit_charge(page, self.try_charge(page, memcg), lrucare)

    def charge_new_page(self, page: Page, memcg: MemCgroup) -> MemCgroup | None:
        """The charge of a new page in fault/cache/cow, before it is mapped or cached: the
        rewrite's try_charge (legacy charges and commits here, before page->mapping exists)."""
        return self.try_charge(page, memcg)

    def commit_new_page(self, page: Page, memcg: MemCgroup | None) -> None:
        """After the new page is instantiated: the rewrite's commit_charge (nothing in legacy)."""
        self.commit_charge(page, memcg, False)

    def commit_flags(self) -> int:
        return PCG_USED | PCG_MEM | (PCG_MEMSW if self.mm.swap_account else 0)

    def commit_charge(self, page: Page, memcg: MemCgroup | None, lrucare: bool) -> None:
        """mem_cgroup_commit_charge (mm/memcontrol.c): make the reservation the page's charge."""
        if page.mapping is None:
            raise self.bug(
                "mem_cgroup_commit_charge: VM_BUG_ON_PAGE(!page->mapping)",
                page,
                "commit needs page->mapping: map the page or add it to a cache first",
            )
        if page.flags & PG_lru and not lrucare:
            raise self.bug(
                "mem_cgroup_commit_charge: VM_BUG_ON_PAGE(PageLRU(page) && !lrucare)",
                page,
                "the page is on the LRU: commit it with lrucare",
            )
        if memcg is None:
            self.mm.note("memcg NULL: nothing to commit")
            return
        self.mm.call("mem_cgroup_commit_charge", page.name, memcg.name,
                     "lrucare" if lrucare else "")
        self._commit_charge(page, memcg, lrucare)
        self.after_commit(page, memcg)
        if self.mm.swap_account and page.flags & PG_swapcache:
            self.uncharge_swap(page.entry)

    def _commit_charge(self, page: Page, memcg: MemCgroup, lrucare: bool) -> None:
        """commit_charge (static, mm/memcontrol.c): set pc, with the LRU dance for lrucare."""
        if page.pc_flags & PCG_USED:
            raise self.bug(
                "commit_charge: VM_BUG_ON_PAGE(PageCgroupUsed(pc))",
                page,
                "the page is already charged (a page is committed once per lifetime)",
            )
        isolated = self.lock_page_lru(page) if lrucare else False
        self.j.w(page, "pc_memcg", memcg)
        self.j.w(page, "pc_flags", self.commit_flags())
        if lrucare:
            self.unlock_page_lru(page, isolated)

    def after_commit(self, page: Page, memcg: MemCgroup) -> None:
        """Statistics of a commit (3.17: in mem_cgroup_commit_charge)."""
        self.charge_statistics(memcg, page, page.nr)

    # -- uncharging -------------------------------------------------------------------------
    def uncharge(self, page: Page) -> None:
        """The uncharge of a page freed by its last put (`__page_cache_release`)."""
        raise NotImplementedError

    def uncharge_list(self, pages: list[Page]) -> None:
        """The uncharge of pages freed together (`release_pages`, `shrink_page_list`)."""
        raise NotImplementedError

    def release_page_freed(self, page: Page) -> None:
        """release_pages (mm/swap.c) took a page to count 0 and off the LRU, inside its loop:
        v1 uncharges it here."""

    def release_pages_uncharge(self, pages: list[Page]) -> None:
        """After release_pages' loop, the pages that reached count 0 in the order they did:
        3.17 uncharges them here as one list."""

    def uncharge_start(self, thread: str) -> None:
        """mem_cgroup_uncharge_start: open the thread's batch window (v1, legacy)."""

    def uncharge_end(self, thread: str) -> None:
        """mem_cgroup_uncharge_end: close it and flush what it held back (v1, legacy)."""

    def page_remove_rmap(self, page: Page) -> None:
        """page_remove_rmap (mm/rmap.c) took the mapcount to 0: nothing in the rewrite."""

    def delete_from_page_cache(self, page: Page) -> None:
        """__delete_from_page_cache (mm/filemap.c) ran: nothing in the rewrite."""

    def swapcache_free(self, entry: SwapEntry, page: Page) -> None:
        """swapcache_free (mm/swapfile.c) after a page left the swap cache: nothing in the
        rewrite (the page argument was dropped); legacy uncharges here."""

    def uncharge_swap(self, entry: SwapEntry) -> None:
        """mem_cgroup_uncharge_swap (mm/memcontrol.c): drop the entry's record and memsw charge."""
        mm = self.mm
        mm.call("mem_cgroup_uncharge_swap", entry.name)
        if not mm.swap_account:
            mm.note("swap accounting off: mem_cgroup_uncharge_swap returns")
            return
        memcg = entry.record
        if memcg is None:
            mm.note(f"no swap record for {entry.name}: nothing to uncharge")
            return
        self.j.w(entry, "record", None)
        if not self.skip_counters(memcg):
            self.uncharge_counter(memcg.memsw, 1)
        self.swap_statistics(memcg, False)
        self.j.w(memcg, "css", memcg.css - 1)

    def record_swap(self, page: Page, entry: SwapEntry) -> None:
        """The record half of mem_cgroup_swapout: swap_cgroup_record + css_get + SWAP stat."""
        memcg = page.pc_memcg
        if memcg is None:
            raise self.bug(
                "mem_cgroup_swapout: NULL pc->mem_cgroup", page, "the page never had a memcg"
            )
        if entry.record is not None:
            raise self.bug(
                "mem_cgroup_swapout: VM_BUG_ON_PAGE(oldid)",
                page,
                f"swap entry {entry.name} already records {entry.record.name}",
            )
        self.j.w(entry, "record", memcg)
        self.j.w(page, "pc_flags", page.pc_flags & ~PCG_MEMSW)
        self.j.w(memcg, "css", memcg.css + 1)
        self.swap_statistics(memcg, True)

    def swapout(self, page: Page, entry: SwapEntry) -> None:
        """mem_cgroup_swapout (mm/memcontrol.c): move the memsw charge to the swap entry."""
        raise NotImplementedError

    def swapout_preconditions(self, page: Page) -> None:
        """mem_cgroup_swapout's first lines, in 3.17.4 and v1 alike (before do_swap_account)."""
        if page.flags & PG_lru:
            raise self.bug("mem_cgroup_swapout: VM_BUG_ON_PAGE(PageLRU(page))", page,
                           "the page is on the LRU: reclaim swaps out pages it isolated")

    # -- migration and replacement ----------------------------------------------------------
    def prepare_migration(self, old: Page, new: Page) -> None:
        """mem_cgroup_prepare_migration (legacy only)."""

    def end_migration(self, old: Page, new: Page, ok: bool) -> None:
        """mem_cgroup_end_migration (legacy only)."""

    def migrate(self, old: Page, new: Page, lrucare: bool) -> None:
        """mem_cgroup_migrate (mm/memcontrol.c): transfer the charge to the new page."""
        raise NotImplementedError

    def replace_page_cache(self, old: Page, new: Page) -> None:
        """The hook of replace_page_cache_page (mm/filemap.c): mem_cgroup_migrate(lrucare)."""
        self.migrate(old, new, True)

    def migrate_preconditions(self, old: Page, new: Page) -> None:
        for p in (old, new):
            if not p.flags & PG_locked:
                raise self.bug(
                    "mem_cgroup_migrate: VM_BUG_ON_PAGE(!PageLocked(page))", p, "must be locked"
                )
        if old.anon != new.anon:
            raise self.bug(
                "mem_cgroup_migrate: VM_BUG_ON_PAGE(PageAnon(oldpage) != PageAnon(newpage))",
                new,
                "both pages must be anon or both not",
            )

    # -- charge moving ----------------------------------------------------------------------
    def move_lock(self, page: Page) -> None:
        """How mem_cgroup_move_account keeps mem_cgroup_migrate off the page (3.17: trylock)."""

    def do_precharge(self, to: MemCgroup, count: int) -> int:
        """mem_cgroup_do_precharge (mm/memcontrol.c): bulk charge without reclaim, then page by
        page with reclaim. Returns the precharge; on failure cancels it and re-raises.
        3.17 tries the bulk charge for any count (try_charge without __GFP_WAIT); v1 kept the
        3.16 function, which tries it (raw res_counter charges) only when count > 1."""
        bulk = self.precharge_bulk_always or count > 1
        if bulk:
            try:
                self.charge_counters(to, count, False, attempts=1)
                return count
            except ChargeFailed:
                pass
        done = 0
        try:
            for _ in range(count):
                self.charge_counters(to, 1, False, attempts=self.precharge_page_attempts)
                done += 1
        except ChargeFailed as e:
            if done:
                self.cancel_counters(to, done)
            if not bulk:
                raise
            # the report counts the bulk attempt too, as failcnt does
            raise ChargeFailed(e.counter_kind, e.memcg, e.usage, e.limit,
                               e.attempts + 1) from None
        return done

    def move_account(self, page: Page, frm: MemCgroup, to: MemCgroup) -> None:
        """mem_cgroup_move_account (mm/memcontrol.c): move pc->mem_cgroup and the statistics."""
        if page.flags & PG_lru:
            raise self.bug(
                "mem_cgroup_move_account: VM_BUG_ON_PAGE(PageLRU(page))", page, "not isolated"
            )
        self.move_lock(page)
        if not page.pc_flags & PCG_USED or page.pc_memcg is not frm:
            raise KernelError("EINVAL", f"{page.name} is not charged to {frm.name}")
        nr = page.nr
        self.mm.call("mem_cgroup_move_account", page.name, frm.name, to.name)
        if self.move_stats_from_first:  # 3.16 (and v1): from's statistics, pc, to's
            self.charge_statistics(frm, page, -nr)
            self.j.w(page, "pc_memcg", to)
            self.charge_statistics(to, page, nr)
        else:  # 3.17.4: pc, to's statistics, from's
            self.j.w(page, "pc_memcg", to)
            self.charge_statistics(to, page, nr)
            self.charge_statistics(frm, page, -nr)

    def move_charge_page(self, page: Page, to: MemCgroup) -> None:
        """mem_cgroup_can_attach + mem_cgroup_move_charge + mem_cgroup_clear_mc for one page."""
        mm = self.mm
        frm = page.pc_memcg
        if frm is to:
            raise self.bug("mem_cgroup_can_attach: VM_BUG_ON(from == memcg)", page, "same memcg")
        nr = page.nr
        mm.call("mem_cgroup_do_precharge", to.name, nr)
        precharge = self.do_precharge(to, nr)
        moved = 0
        try:
            if not page.flags & PG_lru:
                mm.note(f"isolate_lru_page fails: {page.name} is not on the LRU, nothing moves")
                return
            mm.isolate_lru_page(page)
            try:
                self.move_account(page, frm, to)
                moved = nr
            finally:
                mm.putback_lru_page(page)
        finally:
            self.clear_mc(frm, to, precharge - moved, moved, 0)

    def move_charge_swap(self, entry: SwapEntry, to: MemCgroup) -> None:
        """Charge moving of one swap entry: mem_cgroup_move_swap_account (mm/memcontrol.c)."""
        mm = self.mm
        frm = entry.record
        if frm is to:
            raise self.bug("mem_cgroup_can_attach: VM_BUG_ON(from == memcg)", None, "same memcg")
        mm.call("mem_cgroup_do_precharge", to.name, 1)
        precharge = self.do_precharge(to, 1)
        moved = 0
        try:
            if frm is None:
                raise KernelError("EINVAL", f"swap entry {entry.name} has no swap record to move")
            mm.call("mem_cgroup_move_swap_account", entry.name, frm.name, to.name)
            self.j.w(entry, "record", to)
            self.swap_statistics(frm, False)
            self.swap_statistics(to, True)
            self.j.w(to, "css", to.css + 1)
            moved = 1
        finally:
            self.clear_mc(frm, to, precharge - moved, 0, moved)

    def clear_mc(self, frm, to: MemCgroup, precharge: int, moved_charge: int, moved_swap: int):
        """__mem_cgroup_clear_mc (mm/memcontrol.c): settle precharge and moved charges."""
        if precharge or moved_charge or moved_swap:
            self.mm.call("__mem_cgroup_clear_mc", frm.name if frm is not None else "none",
                         to.name)
        if precharge:
            self.cancel_counters(to, precharge)
        if moved_charge:
            self.cancel_counters(frm, moved_charge)
        if moved_swap:
            if not self.skip_counters(frm):
                self.uncharge_counter(frm.memsw, moved_swap)
            self.j.w(frm, "css", frm.css - moved_swap)
            if not self.skip_counters(to):
                self.uncharge_counter(to.res, moved_swap)

    # -- THP --------------------------------------------------------------------------------
    def split_huge_fixup(self, head: Page, tails: list[Page]) -> None:
        """mem_cgroup_split_huge_fixup (mm/memcontrol.c): tails copy the head's pc."""
        memcg = head.pc_memcg
        if memcg is None:
            raise self.bug(
                "mem_cgroup_split_huge_fixup: NULL pc->mem_cgroup",
                head,
                "the huge page never had a memcg (the kernel would dereference NULL)",
            )
        w = self.j.w
        for tail in tails:
            w(tail, "pc_memcg", memcg)
            w(tail, "pc_flags", self.tail_flags(head.pc_flags))
        w(memcg, "rss_huge", memcg.rss_huge - HPAGE_PMD_NR)

    def tail_flags(self, head_flags: int) -> int:
        return head_flags

    # -- what the invariant checker asks ----------------------------------------------------
    def holds_charge(self, pc_flags: int, migrating: str | None = None) -> tuple[bool, bool]:
        """Whether a page with these pc flags holds a res and a memsw charge (`migrating`:
        legacy's migration in progress)."""
        return bool(pc_flags & PCG_MEM), bool(pc_flags & PCG_MEMSW)

    def flag_problems(self, page: Page) -> str | None:
        """I3/I4: what is wrong with this page's pc flags, if anything."""
        f = page.pc_flags
        if page.freed:
            return "a freed page has pc flags" if f else None
        if f & PCG_MEMSW and not f & PCG_USED:
            return "PCG_MEMSW without PCG_USED"
        if f & PCG_MEMSW and not self.mm.swap_account:
            return "PCG_MEMSW with swap accounting off"
        if f & PCG_MEM and not f & PCG_USED:
            return "PCG_MEM without PCG_USED"
        if f & PCG_USED and not f & PCG_MEM:
            return None if self.used_only_ok(page) else "PCG_USED without PCG_MEM"
        if f & PCG_USED and self.mm.swap_account and not f & PCG_MEMSW:
            return "a live charged page without PCG_MEMSW (only legal inside reclaim's swapout)"
        return None

    def used_only_ok(self, page: Page) -> bool:
        return False

    def reported_usage(self, memcg: MemCgroup) -> int:
        """mem_cgroup_usage (mm/memcontrol.c): root's is the recursive sum of its statistics."""
        if memcg.parent is not None:
            return memcg.res.usage
        total = 0
        stack = [memcg]
        while stack:
            m = stack.pop()
            total += m.cache + m.rss
            stack.extend(m.children)
        return total
