"""The `legacy` model: the charge/uncharge code the rewrite replaced, as in 3.16.0.

SEMANTICS §4. Pages are charged *before* they have a mapping, by type (anon at fault, file and
shmem at page-cache insertion: charge and commit in one go), and uncharged where the type is
still known, long before the page is freed: anon at the last unmap (unless in the swap
cache), file at page-cache removal, swap-cache pages at swap-cache removal, where the
direction (swap-out or drop) is guessed from the entry's references. Swap-in uses the
transactional try/commit/cancel trio. Migration pins the old page's charge with PCG_MIGRATION
and commits the new page without a counter charge (prepare/end_migration). Every charge,
uncharge, migration, replacement and move takes the page_cgroup bit lock, counted as `pc_lock`.
Flags: PCG_USED (+ PCG_MIGRATION); a USED page holds its res charge and, with swap
accounting, its memsw charge.
"""

from __future__ import annotations

from memcglang.engine.memcg.base import MemcgModel
from memcglang.engine.memcg.windows import Windows
from memcglang.engine.state import (
    PCG_MIGRATION,
    PCG_USED,
    MemCgroup,
    Page,
    PG_swapcache,
    SwapEntry,
)

ANON, CACHE, SWAPOUT, DROP = "ANON", "CACHE", "SWAPOUT", "DROP"  # enum charge_type


class Legacy(Windows, MemcgModel):
    name = "legacy"
    root_charged = False
    thp_attempts = 1  # mem_cgroup_charge_anon charges a THP with oom = false: no retry
    precharge_page_attempts = 1  # mem_cgroup_do_precharge's one-by-one charge: oom = false
    migrate_point = "prepare_end"  # mem_cgroup_prepare_migration / mem_cgroup_end_migration
    move_stats_from_first = True
    precharge_bulk_always = False  # 3.16's mem_cgroup_do_precharge: bulk only for count > 1
    check_lru_uncharged = False  # legacy uncharges pages that live on, on the LRU
    swapcache_free_takes_page = True

    def commit_flags(self) -> int:
        return PCG_USED

    def lock_page_cgroup(self) -> None:
        """lock_page_cgroup (include/linux/page_cgroup.h): the bit spinlock the rewrite removed."""
        self.j.w(self.cost, "pc_lock", self.cost.pc_lock + 1)

    # -- charging ---------------------------------------------------------------------------
    def charge(self, page: Page, memcg: MemCgroup, lrucare: bool) -> None:
        """The `charge` statement: mem_cgroup_charge_anon or mem_cgroup_charge_file."""
        if page.anon:
            self.charge_anon(page, memcg)
        else:
            self.charge_file(page, memcg)

    def charge_new_page(self, page: Page, memcg: MemCgroup) -> MemCgroup | None:
        """fault/cow/cache charge and commit the new page before it is mapped or cached."""
        self.charge(page, memcg, False)
        return None

    def commit_new_page(self, page: Page, memcg: MemCgroup | None) -> None:
        """Nothing: the page was committed when it was charged."""

    def charge_anon(self, page: Page, memcg: MemCgroup) -> None:
        """mem_cgroup_charge_anon (3.15+ name of mem_cgroup_newpage_charge)."""
        if page.mapcount:
            raise self.bug("mem_cgroup_charge_anon: VM_BUG_ON_PAGE(page_mapped(page))", page,
                           "legacy charges an anon page before it is mapped")
        if page.mapping is not None and not page.anon:
            raise self.bug("mem_cgroup_charge_anon: VM_BUG_ON_PAGE(page->mapping && "
                           "!PageAnon(page))", page, "not an anon page")
        self.mm.call("mem_cgroup_charge_anon", page.name, memcg.name)
        self.mm.call("mem_cgroup_try_charge", memcg.name, page.nr)
        self.charge_counters(memcg, page.nr, page.huge)
        self.commit(page, memcg, ANON, lrucare=False)

    def charge_file(self, page: Page, memcg: MemCgroup) -> None:
        """mem_cgroup_charge_file (3.15+ name of mem_cgroup_cache_charge): a swap-cache page
        (shmem swap-in) goes through the swap-in pair as CACHE."""
        if page.huge:
            self.mm.note("mem_cgroup_charge_file: compound page, not charged")
            return
        self.mm.call("mem_cgroup_charge_file", page.name, memcg.name)
        if page.flags & PG_swapcache:
            self.commit_swapin(page, self.try_charge(page, memcg), CACHE)
            return
        self.mm.call("mem_cgroup_try_charge", memcg.name, page.nr)
        self.charge_counters(memcg, page.nr, False)
        self.commit(page, memcg, CACHE, lrucare=False)

    def try_charge(self, page: Page, memcg: MemCgroup) -> MemCgroup | None:
        """mem_cgroup_try_charge_swapin: not in swap cache -> a plain charge of the task's
        memcg; in swap cache and USED -> memcg NULL (bail early); else the recorded memcg."""
        mm = self.mm
        if not page.anon:
            raise mm.mm_bug("mem_cgroup_try_charge_swapin", page,
                            "3.16's try/commit/cancel are the swap-in charge of an anon page; "
                            "a file page is charged with `charge` (mem_cgroup_charge_file)")
        mm.call("mem_cgroup_try_charge_swapin", page.name)
        if page.flags & PG_swapcache:
            if page.pc_flags & PCG_USED:
                mm.note("page already charged in swap cache: nothing to charge (memcg NULL)")
                return None
            if mm.swap_account:
                record = self.memcg_from_swap_record(page)
                self.lock_page_cgroup()  # 3.16's lookup takes the page_cgroup lock
                memcg = record or memcg
        mm.call("mem_cgroup_try_charge", memcg.name, page.nr)
        self.charge_counters(memcg, page.nr, page.huge)
        return memcg

    def commit_charge(self, page: Page, memcg: MemCgroup | None, lrucare: bool) -> None:
        """mem_cgroup_commit_charge_swapin: commit as ANON with lrucare, then drop the swap
        record's memsw charge if the page is still in the swap cache."""
        self.commit_swapin(page, memcg, ANON)

    def commit_swapin(self, page: Page, memcg: MemCgroup | None, ctype: str) -> None:
        """__mem_cgroup_commit_charge_swapin (mm/memcontrol.c)."""
        mm = self.mm
        if memcg is None:
            mm.note("memcg NULL: nothing to commit")
            return
        mm.call("mem_cgroup_commit_charge_swapin", page.name, memcg.name)
        self.commit(page, memcg, ctype, lrucare=True)
        if mm.swap_account and page.flags & PG_swapcache:
            self.uncharge_swap(page.entry)

    def cancel_charge(self, page: Page, memcg: MemCgroup | None) -> None:
        """mem_cgroup_cancel_charge_swapin (mm/memcontrol.c)."""
        if memcg is None:
            return
        self.mm.call("mem_cgroup_cancel_charge_swapin", memcg.name)
        self.cancel_counters(memcg, page.nr)

    def commit(self, page: Page, memcg: MemCgroup, ctype: str, lrucare: bool) -> None:
        """__mem_cgroup_commit_charge (mm/memcontrol.c): under lock_page_cgroup; statistics by
        the charge type (the page may have no mapping yet)."""
        self.mm.call("__mem_cgroup_commit_charge", page.name, memcg.name, ctype,
                     "lrucare" if lrucare else "")
        self.lock_page_cgroup()
        if page.pc_flags & PCG_USED:
            raise self.bug("__mem_cgroup_commit_charge: VM_BUG_ON_PAGE(PageCgroupUsed(pc))",
                           page, "the page is already charged")
        isolated = self.lock_page_lru(page) if lrucare else False
        self.j.w(page, "pc_memcg", memcg)
        self.j.w(page, "pc_flags", page.pc_flags | PCG_USED)
        if lrucare:
            self.unlock_page_lru(page, isolated)
        self.charge_statistics(memcg, page, page.nr)

    # -- uncharging -------------------------------------------------------------------------
    def uncharge(self, page: Page) -> None:
        """The final put: nothing (legacy uncharged earlier, by type)."""

    def uncharge_list(self, pages: list[Page]) -> None:
        """Nothing: see uncharge."""

    def page_remove_rmap(self, page: Page) -> None:
        """mem_cgroup_uncharge_page from page_remove_rmap: an anon page's last unmap."""
        if not page.anon:
            return
        mm = self.mm
        if page.flags & PG_swapcache:
            mm.note(f"mem_cgroup_uncharge_page({page.name}): in the swap cache, deferred to "
                    "the swap path")
            return
        self.uncharge_common(page, ANON, "mem_cgroup_uncharge_page")

    def delete_from_page_cache(self, page: Page) -> None:
        """mem_cgroup_uncharge_cache_page after the page left the page cache."""
        self.uncharge_common(page, CACHE, "mem_cgroup_uncharge_cache_page")

    def swapcache_free(self, entry: SwapEntry, page: Page) -> None:
        """mem_cgroup_uncharge_swapcache(page, entry, swapout): swapout = the entry still has
        pte references; then SWAPOUT (memsw stays, recorded for the entry) else DROP."""
        swapout = entry.count != 0
        if not page.pc_flags & PCG_USED:
            self.mm.note(f"mem_cgroup_uncharge_swapcache({page.name}): not charged, returns")
            return
        memcg = self.uncharge_common(page, SWAPOUT if swapout else DROP,
                                     "mem_cgroup_uncharge_swapcache")
        if self.mm.swap_account and swapout and memcg is not None:
            self.mm.call("swap_cgroup_record", entry.name, memcg.name)
            self.j.w(entry, "record", memcg)

    def uncharge_common(self, page: Page, ctype: str, caller: str,
                        end_migration: bool = False) -> MemCgroup | None:
        """__mem_cgroup_uncharge_common (mm/memcontrol.c); the memcg it uncharged, or None."""
        if not page.pc_flags & PCG_USED:
            return None
        mm = self.mm
        mm.call(caller, page.name, ctype)
        self.lock_page_cgroup()
        if ctype in (ANON, DROP):
            if page.mapcount:
                mm.note(f"{page.name} is mapped: not uncharged")
                return None
            if page.pc_flags & PCG_MIGRATION and not end_migration:
                mm.note(f"{page.name} is under migration (PCG_MIGRATION): not uncharged")
                return None
        elif ctype == SWAPOUT:
            if page.kind == "shmem" and page.mapping is not None:
                mm.note(f"{page.name} is still in the shmem cache: not uncharged")
                return None
            if page.anon and page.mapcount:
                mm.note(f"{page.name} is mapped: not uncharged")
                return None
        memcg, nr = page.pc_memcg, page.nr
        self.charge_statistics(memcg, page, -nr)
        self.j.w(page, "pc_flags", page.pc_flags & ~PCG_USED)
        if mm.swap_account and ctype == SWAPOUT:
            self.swap_statistics(memcg, True)
            self.j.w(memcg, "css", memcg.css + 1)
        if not end_migration and memcg.parent is not None:
            # mem_cgroup_do_uncharge (never for root): memsw stays charged for the swap
            # entry at swap-out
            memsw = mm.swap_account and ctype != SWAPOUT
            self.batch_uncharge(memcg, nr, True, memsw)
        return memcg

    def swapout(self, page: Page, entry: SwapEntry) -> None:
        """Nothing: there is no mem_cgroup_swapout; swapcache_free does the swap-out."""

    # -- migration and replacement ----------------------------------------------------------
    def old_page_memcg(self, function: str, old: Page, new: Page, otherwise: str):
        """The start of prepare_migration and replace_page_cache: under lock_page_cgroup, the
        old page's memcg if it is charged (else a note and None)."""
        self.mm.call(function, old.name, new.name)
        self.lock_page_cgroup()
        if not old.pc_flags & PCG_USED:
            self.mm.note(f"{old.name} is not charged: {otherwise}")
            return None
        return old.pc_memcg

    def prepare_migration(self, old: Page, new: Page) -> None:
        """mem_cgroup_prepare_migration: PCG_MIGRATION on an anon old page keeps the unmap
        from uncharging it; the new page is committed to the same memcg without a counter
        charge (statistics +nr, PGPGIN +1)."""
        memcg = self.old_page_memcg("mem_cgroup_prepare_migration", old, new,
                                    "nothing to prepare")
        if memcg is None:
            return
        self.j.w(memcg, "css", memcg.css + 1)  # css_get, held until end_migration
        if old.anon:
            self.j.w(old, "pc_flags", old.pc_flags | PCG_MIGRATION)
        self.commit(new, memcg, ANON if old.anon else CACHE, lrucare=False)
        self.j.w(old, "migrating", "old")
        self.j.w(new, "migrating", "new")

    def end_migration(self, old: Page, new: Page, ok: bool) -> None:
        """mem_cgroup_end_migration: the unused page loses its association (statistics only),
        PCG_MIGRATION is cleared, an anon used page is re-checked with uncharge_page."""
        mm = self.mm
        if not new.pc_flags & PCG_USED:
            return  # prepare found the old page uncharged (memcg NULL) and committed nothing
        memcg = new.pc_memcg
        mm.call("mem_cgroup_end_migration", old.name, new.name, "ok" if ok else "failed")
        used, unused = (new, old) if ok else (old, new)
        self.j.w(old, "migrating", None)
        self.j.w(new, "migrating", None)
        anon = used.anon
        self.uncharge_common(unused, ANON if anon else CACHE, "__mem_cgroup_uncharge_common",
                             end_migration=True)
        self.j.w(memcg, "css", memcg.css - 1)  # css_put
        self.lock_page_cgroup()
        self.j.w(old, "pc_flags", old.pc_flags & ~PCG_MIGRATION)
        if anon:  # a used page that ended up unmapped (its task exited) is uncharged now
            if used.mapcount or used.flags & PG_swapcache:
                mm.note(f"mem_cgroup_uncharge_page({used.name}): mapped or in the swap cache, "
                        "returns")
            else:
                self.uncharge_common(used, ANON, "mem_cgroup_uncharge_page")

    def migrate(self, old: Page, new: Page, lrucare: bool) -> None:
        """There is no mem_cgroup_migrate in 3.16."""

    def replace_page_cache(self, old: Page, new: Page) -> None:
        """mem_cgroup_replace_page_cache: old loses USED (CACHE -1), new is committed to the
        same memcg with lrucare and no counter charge."""
        memcg = self.old_page_memcg("mem_cgroup_replace_page_cache", old, new,
                                    f"{new.name} stays uncharged")
        if memcg is None:
            return
        self.charge_statistics(memcg, old, -1)
        self.j.w(old, "pc_flags", old.pc_flags & ~PCG_USED)
        self.commit(new, memcg, CACHE, lrucare=True)

    # -- charge moving ----------------------------------------------------------------------
    def move_lock(self, page: Page) -> None:
        """mem_cgroup_move_account takes lock_page_cgroup."""
        self.lock_page_cgroup()

    # -- THP and the checker ----------------------------------------------------------------
    def tail_flags(self, head_flags: int) -> int:
        """PCGF_NOCOPY_AT_SPLIT: PCG_LOCK and PCG_MIGRATION are not copied to the tails."""
        return head_flags & ~PCG_MIGRATION

    def holds_charge(self, pc_flags: int, migrating: str | None = None) -> tuple[bool, bool]:
        """A USED page holds its res charge and, with swap accounting, its memsw charge,
        except the new page of a migration in progress (LANGUAGE §7)."""
        used = bool(pc_flags & PCG_USED) and migrating != "new"
        return used, used and self.mm.swap_account

    def flag_problems(self, page: Page) -> str | None:
        f = page.pc_flags
        if page.freed:
            return "a freed page has pc flags" if f else None
        if f & ~(PCG_USED | PCG_MIGRATION):
            return "legacy pc flags are PCG_USED and PCG_MIGRATION only"
        if f & PCG_MIGRATION and page.migrating != "old":
            return "PCG_MIGRATION outside a migration"
        return None
