"""The `3.17` model: the merged rewrite as in the 3.17.4 source (SEMANTICS "M")."""

from __future__ import annotations

from memcglang.engine.errors import KernelError
from memcglang.engine.memcg.base import MemcgModel
from memcglang.engine.state import PCG_MEM, PCG_MEMSW, PCG_USED, Page, PG_locked, PG_lru, SwapEntry


class Merged(MemcgModel):
    """3.17.4: root never charged, uncharge_list batching, migrate before remap, no windows."""

    name = "3.17"
    root_charged = False
    thp_attempts = 1  # GFP_TRANSHUGE has __GFP_NORETRY: one reclaim, then -ENOMEM
    migrate_point = "before_remap"

    def uncharge(self, page: Page) -> None:
        """mem_cgroup_uncharge (mm/memcontrol.c): pre-check PCG_USED, then a one-page list."""
        if not page.pc_flags & PCG_USED:
            return
        self.mm.call("mem_cgroup_uncharge", page.name)
        self._uncharge_list([page])

    def uncharge_list(self, pages: list[Page]) -> None:
        """mem_cgroup_uncharge_list (mm/memcontrol.c)."""
        if not pages:
            return
        self.mm.call("mem_cgroup_uncharge_list", *(p.name for p in pages))
        self._uncharge_list(pages)

    def release_pages_uncharge(self, pages: list[Page]) -> None:
        """3.17.4 release_pages chains freed pages with list_add (at the head) and then calls
        mem_cgroup_uncharge_list, so the list is walked last-freed first."""
        self.uncharge_list(pages[::-1])

    def _uncharge_list(self, pages: list[Page]) -> None:
        """uncharge_list (static): one uncharge_batch per run of pages with the same memcg."""
        w = self.j.w
        memcg = None
        run = [0, 0, 0, 0, 0, 0]  # pgpgout, nr_mem, nr_memsw, nr_anon, nr_file, nr_huge
        for page in pages:
            if not page.pc_flags & PCG_USED:
                continue
            if memcg is not page.pc_memcg:
                if memcg is not None:
                    self.uncharge_batch(memcg, *run)
                    run = [0, 0, 0, 0, 0, 0]
                memcg = page.pc_memcg
            nr = page.nr
            if page.huge:
                run[5] += nr
            if page.anon:
                run[3] += nr
            else:
                run[4] += nr
            if page.pc_flags & PCG_MEM:
                run[1] += nr
            if page.pc_flags & PCG_MEMSW:
                run[2] += nr
            w(page, "pc_flags", 0)
            run[0] += 1
        if memcg is not None:
            self.uncharge_batch(memcg, *run)

    def uncharge_batch(self, memcg, pgpgout, nr_mem, nr_memsw, nr_anon, nr_file, nr_huge):
        """uncharge_batch (mm/memcontrol.c): counters (not root), then statistics and events."""
        self.mm.call("uncharge_batch", memcg.name, pgpgout)
        self.j.w(self.cost, "batches", self.cost.batches + 1)
        if not self.skip_counters(memcg):
            if nr_mem:
                self.uncharge_counter(memcg.res, nr_mem)
            if nr_memsw:
                self.uncharge_counter(memcg.memsw, nr_memsw)
        w = self.j.w
        if nr_anon:
            w(memcg, "rss", memcg.rss - nr_anon)
        if nr_file:
            w(memcg, "cache", memcg.cache - nr_file)
        if nr_huge:
            w(memcg, "rss_huge", memcg.rss_huge - nr_huge)
        w(memcg, "pgpgout", memcg.pgpgout + pgpgout)

    def swapout(self, page: Page, entry: SwapEntry) -> None:
        """mem_cgroup_swapout (mm/memcontrol.c, 3.17.4)."""
        mm = self.mm
        mm.call("mem_cgroup_swapout", page.name, entry.name)
        self.swapout_preconditions(page)
        if not mm.swap_account:
            mm.note("swap accounting off: mem_cgroup_swapout returns")
            return
        if not page.pc_flags & PCG_USED:
            mm.note(f"{page.name} is a readahead page, never charged: mem_cgroup_swapout returns")
            return
        if not page.pc_flags & PCG_MEMSW:
            raise self.bug(
                "mem_cgroup_swapout: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEMSW))",
                page,
                "the page holds no memsw charge to hand to the swap entry",
            )
        self.record_swap(page, entry)

    def migrate(self, old: Page, new: Page, lrucare: bool) -> None:
        """mem_cgroup_migrate (mm/memcontrol.c, 3.17.4), with its lrucare dance as written."""
        self.migrate_preconditions(old, new)
        if not lrucare:
            for p in (old, new):
                if p.flags & PG_lru:
                    raise self.bug(
                        "mem_cgroup_migrate: VM_BUG_ON_PAGE(!lrucare && PageLRU(page))",
                        p,
                        "on the LRU without lrucare",
                    )
        if old.huge != new.huge:
            raise self.bug(
                "mem_cgroup_migrate: VM_BUG_ON_PAGE(PageTransHuge(oldpage) != "
                "PageTransHuge(newpage))",
                new,
                "both pages must be huge or both not",
            )
        mm = self.mm
        mm.call("mem_cgroup_migrate", old.name, new.name, "lrucare" if lrucare else "")
        if new.pc_flags & PCG_USED:
            mm.note(f"{new.name} is already charged: no transfer")
            return
        if not old.pc_flags & PCG_USED:
            mm.note(f"{old.name} is not charged: no transfer")
            return
        if not old.pc_flags & PCG_MEM:
            raise self.bug("mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEM))", old, "")
        if mm.swap_account and not old.pc_flags & PCG_MEMSW:
            raise self.bug(
                "mem_cgroup_migrate: VM_BUG_ON_PAGE(do_swap_account && !(pc->flags & PCG_MEMSW))",
                old,
                "",
            )
        isolated = self.lock_page_lru(old) if lrucare else False
        self.j.w(old, "pc_flags", 0)
        if lrucare:
            # the stale-memcg rule of mem_cgroup_page_lruvec runs here (SEMANTICS E5)
            self.unlock_page_lru(old, isolated)
        self._commit_charge(new, old.pc_memcg, lrucare)

    def move_lock(self, page: Page) -> None:
        """3.17 takes the page lock with trylock_page: -EBUSY if somebody holds it."""
        if page.flags & PG_locked:
            raise KernelError("EBUSY", f"trylock_page({page.name}) failed: the page is locked")
