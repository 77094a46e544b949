"""The `v1` model: "mm: memcontrol: naturalize charge lifetime" as posted on 30 April 2014.

Patches 1-9 as sent (SEMANTICS §2.12), with the PCG flag values taken as the masks the code
meant: root charged, PCG_MEMSW always set at commit, statistics inside commit_charge (so
migration churns them), the old page keeping PCG_USED after migration, both pages asserted
off the LRU in mem_cgroup_migrate, no readahead check in mem_cgroup_swapout, per-task
uncharge_start/end windows where 3.16 had them, and page-by-page uncharge.
"""

from __future__ import annotations

from memcglang.engine.memcg.base import MemcgModel
from memcglang.engine.memcg.windows import Windows
from memcglang.engine.state import PCG_MEM, PCG_MEMSW, PCG_USED, MemCgroup, Page, PG_lru


class V1(Windows, MemcgModel):
    name = "v1"
    root_charged = True
    thp_attempts = MemcgModel.base_attempts  # THP charges use GFP_KERNEL with oom = false
    migrate_point = "after_remap"
    old_page_keeps_anon_mapping = True
    move_stats_from_first = True
    precharge_bulk_always = False  # the 3.16 mem_cgroup_do_precharge (simplified 16 Jun 2014)

    def commit_flags(self) -> int:
        return PCG_USED | PCG_MEM | PCG_MEMSW  # even with swap accounting off (fixed 20 Jun 2014)

    def _commit_charge(self, page: Page, memcg: MemCgroup, lrucare: bool) -> None:
        """commit_charge (static) as posted: the statistics are updated in here."""
        super()._commit_charge(page, memcg, lrucare)
        self.charge_statistics(memcg, page, page.nr)

    def after_commit(self, page: Page, memcg: MemCgroup) -> None:
        """Nothing: v1's commit_charge already did the statistics."""

    # -- uncharge ---------------------------------------------------------------------------
    def uncharge(self, page: Page) -> None:
        """mem_cgroup_uncharge (v1): clear pc, statistics now, counters now or at uncharge_end."""
        if not page.pc_flags & PCG_USED:
            return
        mm = self.mm
        flags, memcg, nr = page.pc_flags, page.pc_memcg, page.nr
        mm.call("mem_cgroup_uncharge", page.name)
        self.j.w(page, "pc_flags", 0)
        self.charge_statistics(memcg, page, -nr)
        # batch->memcg is claimed by the first USED page, even an old page after migration
        # that holds no charge (MEM and MEMSW clear: statistics only)
        self.batch_uncharge(memcg, nr, bool(flags & PCG_MEM), bool(flags & PCG_MEMSW))

    def uncharge_list(self, pages: list[Page]) -> None:
        """v1 has no list API: release_pages and shrink_page_list uncharge page by page."""
        for page in pages:
            self.uncharge(page)

    def release_page_freed(self, page: Page) -> None:
        """v1's release_pages calls mem_cgroup_uncharge in its loop, as each page reaches 0
        (a huge page is uncharged there too, by put_compound_page), so a window's batch memcg
        is the first memcg the loop meets."""
        self.uncharge(page)

    # -- swap -------------------------------------------------------------------------------
    def swapout(self, page: Page, entry) -> None:
        """mem_cgroup_swapout as posted: no readahead check, no PCG_MEMSW assertion."""
        self.mm.call("mem_cgroup_swapout", page.name, entry.name)
        self.swapout_preconditions(page)
        if not self.mm.swap_account:
            self.mm.note("swap accounting off: mem_cgroup_swapout returns")
            return
        self.record_swap(page, entry)

    # -- migration --------------------------------------------------------------------------
    def migrate(self, old: Page, new: Page, lrucare: bool) -> None:
        """mem_cgroup_migrate as posted: both pages off the LRU; the old page keeps PCG_USED."""
        self.migrate_preconditions(old, new)
        for p, which in ((old, "oldpage"), (new, "newpage")):
            if p.flags & PG_lru:
                raise self.bug(
                    f"mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU({which}))",
                    p,
                    "v1 asserts both pages off the LRU, lrucare or not",
                )
        mm = self.mm
        mm.call("mem_cgroup_migrate", old.name, new.name, "lrucare" if lrucare else "")
        if not old.pc_flags & PCG_USED:
            mm.note(f"{old.name} is not charged: no transfer")
            return
        # two assertions as posted; the PCG_MEMSW one became conditional on do_swap_account
        # only on 20 Jun 2014 (v1 sets PCG_MEMSW at commit regardless)
        if not old.pc_flags & PCG_MEM:
            raise self.bug("mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEM))", old,
                           "the old page's memory charge was already transferred or uncharged")
        if not old.pc_flags & PCG_MEMSW:
            raise self.bug("mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEMSW))", old,
                           "the old page's memsw charge was already transferred or uncharged")
        self.j.w(old, "pc_flags", old.pc_flags & ~(PCG_MEM | PCG_MEMSW))
        self._commit_charge(new, old.pc_memcg, lrucare)

    def used_only_ok(self, page: Page) -> bool:
        """The old page of a v1 migration keeps PCG_USED alone until it is freed."""
        return page.replaced and not page.pc_flags & (PCG_MEM | PCG_MEMSW)

    def reported_usage(self, memcg: MemCgroup) -> int:
        """v1 reads root's usage straight from its res_counter."""
        return memcg.res.usage
