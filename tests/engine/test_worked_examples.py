"""SEMANTICS §6 "Worked examples", number for number, under the `3.17` and `v1` models.

Setup of every example (§6 preamble): one non-root memcg A (B where an example needs a second
one), no limit unless stated, swap accounting on, stock-free mode (the engine models no
per-cpu stock). Root keeps its default hierarchy, so root's counters include A's: only A's
numbers are asserted unless an example names root.

Each table row is checked where the engine lets a scenario stop (the primitives of LANGUAGE
§3.2). Rows inside one engine step (reclaim's `swapout`, `migrate`, `release_pages`) are read
back from the step's journal records up to one of its events (`Replay`), the step's
`StepResult.changes` and `events` being documented API (docs/engine.md). Columns map to the
views as res -> usage, msw -> memsw, RSS -> rss, CACHE -> cache, SWP -> swap, in/out ->
pgpgin/pgpgout, css -> css, pc -> page flags, rec -> entry memcg.
"""

from __future__ import annotations

import pytest

from memcglang.engine import Engine, KernelError, StepResult, VmBug
from memcglang.engine.state import PCG_NAMES, decode

BOTH = pytest.mark.parametrize("model", ["3.17", "v1"])

USM = "USED|MEM|MEMSW"
UM = "USED|MEM"
U = "USED"
NONE = "none"

# memcg_view fields read back by Replay: view name -> (counter or None, attribute)
MEMCG_FIELDS = {
    "usage": ("res", "usage"),
    "memsw": ("memsw", "usage"),
    "failcnt": ("res", "failcnt"),
    "rss": (None, "rss"),
    "cache": (None, "cache"),
    "rss_huge": (None, "rss_huge"),
    "swap": (None, "swap"),
    "pgpgin": (None, "pgpgin"),
    "pgpgout": (None, "pgpgout"),
    "css": (None, "css"),
}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def new_engine(model: str, *memcgs: str, **limits) -> Engine:
    """An engine under `model` with swap accounting on and the given non-root memcgs."""
    e = Engine(model, swap_account=True)
    for name in memcgs:
        ok(e.create_memcg(name, **limits.get(name, {})))
    return e


def ok(r: StepResult) -> StepResult:
    """The step succeeded and broke no invariant."""
    assert r.outcome == "ok", (r.outcome, r.error)
    assert r.violations == [], r.violations
    return r


def memcg_is(e: Engine, name: str = "A", **expected) -> None:
    """memcg_view(name) has the expected values for the named fields."""
    view = e.memcg_view(name)
    assert {k: view[k] for k in expected} == expected


def page_is(e: Engine, name: str, **expected) -> None:
    view = e.page_view(name)
    assert {k: view[k] for k in expected} == expected


def entry_is(e: Engine, name: str, **expected) -> None:
    view = e.entry_view(name)
    assert {k: view[k] for k in expected} == expected


def calls(r: StepResult) -> list[str]:
    return [name for _pos, kind, name, _args in r.events if kind == "call"]


class Replay:
    """Run one step with the journal held, then read the state at any of its events.

    Every event carries the journal position it was recorded at; the records before it are the
    step's writes so far. A value at a cut is the newest record's `new` before the cut, else the
    oldest record's `old` after it, else the object's current value.
    """

    def __init__(self, e: Engine, op, *args, **kwargs):
        self.e = e
        self.pos = e.mark()
        try:
            self.result: StepResult = op(*args, **kwargs)
        finally:
            e.release_mark(self.pos)
        self.changes = self.result.changes

    def cut(self, name: str, nth: int = 0, after: str | None = None) -> int:
        """Index into the changes where the `nth` call named `name` (after `after`) was made."""
        started = after is None
        seen = 0
        for pos, kind, ev, _args in self.result.events:
            if kind != "call":
                continue
            if not started:
                started = ev == after
                continue
            if ev == name:
                if seen == nth:
                    return pos - self.pos
                seen += 1
        raise AssertionError(f"the step made no call {name!r} (#{nth}, after {after!r})")

    def cut_at(self, name: str, args: tuple) -> int:
        """Index into the changes where the call `name(*args)` was made."""
        for pos, kind, ev, ev_args in self.result.events:
            if kind == "call" and ev == name and tuple(ev_args) == args:
                return pos - self.pos
        raise AssertionError(f"the step made no call {name}{args}")

    def value(self, cut: int, obj, field: str):
        for o, f, _old, new in reversed(self.changes[:cut]):
            if o is obj and f == field:
                return new
        for o, f, old, _new in self.changes[cut:]:
            if o is obj and f == field:
                return old
        return getattr(obj, field)

    def memcg(self, cut: int, name: str = "A", fields=None) -> dict:
        m = self.e.memcgs[name]
        out = {}
        for view_name in fields or MEMCG_FIELDS:
            counter, attr = MEMCG_FIELDS[view_name]
            obj = getattr(m, counter) if counter else m
            out[view_name] = self.value(cut, obj, attr)
        return out

    def memcg_is(self, cut: int, name: str = "A", **expected) -> None:
        assert self.memcg(cut, name, expected) == expected

    def page_flags(self, cut: int, name: str) -> str:
        return decode(self.value(cut, self.e.pages[name], "pc_flags"), PCG_NAMES)

    def page_memcg(self, cut: int, name: str) -> str:
        m = self.value(cut, self.e.pages[name], "pc_memcg")
        return "none" if m is None else m.name

    def page_field(self, cut: int, name: str, field: str):
        return self.value(cut, self.e.pages[name], field)

    def record(self, cut: int, entry: str) -> str:
        m = self.value(cut, self.e.entries[entry], "record")
        return "none" if m is None else m.name


def cost_delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in after}


# ------------------------------------------------------------------------------------------
# E1. Anonymous fault, unmap, free
# ------------------------------------------------------------------------------------------
@BOTH
def test_e1_anon_fault_unmap_free_rows(model):
    """E1 rows 0-4 through primitives: TC, rmap + CC(false), zap's page_remove_rmap, and
    tlb_finish_mmu -> release_pages -> uncharge."""
    e = new_engine(model, "A")
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=0, pgpgout=0)  # row 0

    ok(e.alloc("P", "anon"))
    ok(e.try_charge("P", "A"))  # row 1: do_anonymous_page: TC
    memcg_is(e, usage=1, memsw=1, rss=0, pgpgin=0, pgpgout=0)
    page_is(e, "P", flags=NONE)

    ok(e.map("P"))  # row 2: rmap + CC(false) under PTL
    ok(e.commit("P"))
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)
    page_is(e, "P", flags=USM, memcg="A")
    ok(e.lru_add("P"))
    ok(e.put("P"))  # the allocation's reference: the pte holds the page now
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)

    ok(e.zap_begin())  # row 3: munmap: zap, page_remove_rmap (mapcount 0)
    ok(e.unmap("P"))
    page_is(e, "P", mapcount=0, refcount=1, flags=USM)
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)

    ok(e.zap_end())  # row 4: tlb_finish_mmu -> release_pages (count 0) -> uncharge_list
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=1, pgpgout=1)
    page_is(e, "P", flags=NONE, freed=True)


@BOTH
def test_e1_anon_fault_unmap_free_composite(model):
    """E1 through `fault` (rows 1-2) and a `zap` block (rows 3-4): end states of row 2 and 4."""
    e = new_engine(model, "A")
    ok(e.fault("P", "A"))
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)
    page_is(e, "P", flags=USM, memcg="A", refcount=1, mapcount=1, page="lru")
    ok(e.zap_begin())
    ok(e.unmap("P"))
    ok(e.zap_end())
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=1, pgpgout=1)
    page_is(e, "P", flags=NONE, freed=True)


@BOTH
def test_e1_pte_race_lost_cancels(model):
    """E1 note after the table: the pte race lost at step 2 -> cancel: res/msw back to 0, no
    statistics, no events."""
    e = new_engine(model, "A")
    ok(e.alloc("P", "anon"))
    ok(e.try_charge("P", "A"))
    memcg_is(e, usage=1, memsw=1)
    ok(e.cancel("P"))
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=0, pgpgout=0)
    page_is(e, "P", flags=NONE)
    ok(e.put("P"))
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=0, pgpgout=0)
    page_is(e, "P", freed=True)


# ------------------------------------------------------------------------------------------
# E2. File page added to page cache, truncated, freed
# ------------------------------------------------------------------------------------------
@BOTH
def test_e2_file_page_cache_truncate_rows(model):
    """E2 rows 1-4 through primitives: add_to_page_cache_lru's TC, radix insert + CC(false) +
    LRU add, truncate_inode_page's delete_from_page_cache, pagevec_release of the last ref."""
    e = new_engine(model, "A")
    ok(e.alloc("F", "file"))
    ok(e.lock("F"))
    ok(e.try_charge("F", "A"))  # row 1
    memcg_is(e, usage=1, memsw=1, cache=0, pgpgin=0, pgpgout=0)
    page_is(e, "F", flags=NONE)

    ok(e.add_to_cache("F"))  # row 2: radix insert, CC(false), then LRU add
    ok(e.commit("F"))
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)
    page_is(e, "F", flags=USM, memcg="A")
    ok(e.lru_add("F"))
    ok(e.unlock("F"))
    ok(e.put("F"))  # the allocation's reference; the page cache holds it now
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)
    page_is(e, "F", refcount=1)

    ok(e.get("F"))  # row 3: the truncation's lookup reference, lock, delete_from_page_cache
    ok(e.lock("F"))
    ok(e.delete_from_cache("F"))
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)
    page_is(e, "F", flags=USM, refcount=1, freed=False)
    ok(e.unlock("F"))

    ok(e.release("F"))  # row 4: pagevec_release drops the lookup ref (last) -> uncharge
    memcg_is(e, usage=0, memsw=0, cache=0, pgpgin=1, pgpgout=1)
    page_is(e, "F", flags=NONE, freed=True)


@BOTH
def test_e2_file_page_cache_truncate_composite(model):
    """E2 through `cache` (end of row 2) and `truncate` (end of row 4)."""
    e = new_engine(model, "A")
    ok(e.cache("F", "A"))
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)
    page_is(e, "F", flags=USM, memcg="A", refcount=1, page="lru")
    ok(e.truncate("F"))
    memcg_is(e, usage=0, memsw=0, cache=0, pgpgin=1, pgpgout=1)
    page_is(e, "F", flags=NONE, freed=True)


@BOTH
def test_e2_extra_reference_keeps_the_charge(model):
    """E2 note: someone else (a pipe buffer) still holds a reference at step 4 -> res 1 and
    CACHE 1 stay until that reference goes."""
    e = new_engine(model, "A")
    ok(e.cache("F", "A"))
    ok(e.get("F"))  # the pipe buffer's reference
    ok(e.truncate("F"))
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)
    page_is(e, "F", flags=USM, freed=False, refcount=1)
    ok(e.put("F"))
    memcg_is(e, usage=0, memsw=0, cache=0, pgpgin=1, pgpgout=1)
    page_is(e, "F", flags=NONE, freed=True)


# ------------------------------------------------------------------------------------------
# E3. Anonymous page swapped out, swapped in, entry freed
# ------------------------------------------------------------------------------------------
def e3_start(model: str) -> Engine:
    """E3 start: P charged to A (res 1, msw 1, RSS 1, pc U M S), mapped by one pte."""
    e = new_engine(model, "A")
    ok(e.fault("P", "A"))
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0, pgpgin=1, pgpgout=0)
    page_is(e, "P", flags=USM, mapcount=1)
    return e


def e3_swap_out(e: Engine) -> Replay:
    """E3 rows 1-6 through primitives; returns the replay of the swapout step (rows 4-6)."""
    ok(e.isolate("P"))
    ok(e.lock("P"))
    ok(e.add_to_swap("P", "E"))  # row 1: entry E allocated, P in swap cache
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0)
    page_is(e, "P", flags=USM, entry="E")
    entry_is(e, "E", memcg=NONE, count=0, page="P")

    ok(e.try_to_unmap("P"))  # row 2: pte -> E (E count 1), mapcount 0
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0)
    page_is(e, "P", flags=USM, mapcount=0, refcount=2)
    entry_is(e, "E", memcg=NONE, count=1)
    # row 3 (pageout writes P) has no accounting step: the values of row 2 hold

    rp = Replay(e, e.swapout, "P")  # rows 4-6: __remove_mapping ... shrink_page_list's free
    ok(rp.result)
    row4 = rp.cut("__delete_from_swap_cache")  # mem_cgroup_swapout(P, E) has run
    rp.memcg_is(row4, usage=1, memsw=1, rss=1, swap=1, css=1)
    assert rp.page_flags(row4, "P") == UM
    assert rp.record(row4, "E") == "A"

    row5 = rp.cut("unlock_page", after="swapcache_free")  # __delete_from_swap_cache, swapcache_free
    rp.memcg_is(row5, usage=1, memsw=1, rss=1, swap=1, css=1)
    assert rp.page_flags(row5, "P") == UM
    assert rp.record(row5, "E") == "A"
    assert rp.value(row5, e.entries["E"], "count") == 1  # count stays 1

    # row 6: shrink_page_list frees P -> uncharge (MEM only)
    memcg_is(e, usage=0, memsw=1, rss=0, swap=1, css=1, pgpgin=1, pgpgout=1)
    page_is(e, "P", flags=NONE, freed=True)
    entry_is(e, "E", memcg="A", count=1, page=NONE, freed=False)
    return rp


@BOTH
def test_e3_swap_out_and_in_rows(model):
    """E3 rows 1-11 through primitives (rows 4-5 read inside the swapout step)."""
    e = e3_start(model)
    e3_swap_out(e)

    ok(e.readahead("E", "Q"))  # row 7: Q read into swap cache for E, on the LRU, uncharged
    memcg_is(e, usage=0, memsw=1, rss=0, swap=1, css=1)
    page_is(e, "Q", flags=NONE, page="lru|swapcache", entry="E")
    entry_is(e, "E", memcg="A", page="Q")

    ok(e.get("Q"))  # row 8: do_swap_page: lookup, lock Q, TC -> memcg from rec(E) = A
    ok(e.lock("Q"))
    ok(e.try_charge("Q", "root"))  # the faulting task's memcg is root: the record must win
    memcg_is(e, usage=1, memsw=2, rss=0, swap=1, css=1)
    page_is(e, "Q", flags=NONE)
    entry_is(e, "E", memcg="A")

    ok(e.map("Q"))  # row 9: set pte, do_page_add_anon_rmap, CC(true)
    ok(e.commit("Q", lrucare=True))
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0, pgpgin=2, pgpgout=1)
    page_is(e, "Q", flags=USM, memcg="A")
    entry_is(e, "E", memcg=NONE, count=1, page="Q")

    ok(e.free_swap("E"))  # row 10: swap_free(E): count 0, uncharge_swap finds rec 0
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0, pgpgin=2, pgpgout=1)
    page_is(e, "Q", flags=USM)
    entry_is(e, "E", memcg=NONE, count=0, page="Q", freed=False)
    ok(e.unlock("Q"))
    ok(e.put("Q"))  # the lookup reference (the composite hands it to the pte)

    ok(e.lock("Q"))  # row 11: Q leaves the swap cache (no memcg call), unmapped, freed
    ok(e.delete_from_swap_cache("Q"))
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0)
    entry_is(e, "E", memcg=NONE, freed=True)
    ok(e.unlock("Q"))
    ok(e.zap_begin())
    ok(e.unmap("Q"))
    ok(e.zap_end())
    memcg_is(e, usage=0, memsw=0, rss=0, swap=0, css=0, pgpgin=2, pgpgout=2)
    page_is(e, "Q", flags=NONE, freed=True)


@BOTH
def test_e3_swap_out_and_in_composite(model):
    """E3 through `reclaim` (end of row 6), `swapin` (end of row 10) and row 11."""
    e = e3_start(model)
    ok(e.reclaim("P", "E"))
    memcg_is(e, usage=0, memsw=1, rss=0, swap=1, css=1, pgpgin=1, pgpgout=1)
    page_is(e, "P", flags=NONE, freed=True)
    entry_is(e, "E", memcg="A", count=1, page=NONE)

    ok(e.swapin("E", "Q"))  # no memcg given: the record's A is charged
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0, pgpgin=2, pgpgout=1)
    page_is(e, "Q", flags=USM, memcg="A", mapcount=1, page="lru|swapcache")
    entry_is(e, "E", memcg=NONE, count=0, page="Q")

    ok(e.lock("Q"))
    ok(e.delete_from_swap_cache("Q"))
    ok(e.unlock("Q"))
    ok(e.zap_begin())
    ok(e.unmap("Q"))
    ok(e.zap_end())
    memcg_is(e, usage=0, memsw=0, rss=0, swap=0, css=0, pgpgin=2, pgpgout=2)
    page_is(e, "Q", flags=NONE, freed=True)
    entry_is(e, "E", freed=True)


@BOTH
def test_e3_variant_unmapped_in_swap_cache_then_reclaimed(model):
    """E3 variant of step 11 "unmapped while still in swap cache, then reclaimed":
    mem_cgroup_swapout(Q,E) (rec A, msw 1, SWP 1, css +1, Q = U M), swapcache_free(E) finds no
    pte reference -> uncharge_swap (rec 0, msw 0, SWP 0, css -1), freeing Q -> all 0."""
    e = e3_start(model)
    ok(e.reclaim("P", "E"))
    ok(e.swapin("E", "Q"))  # row 10's state
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0)

    ok(e.unmap("Q"))  # the pte maps Q directly: Q stays in the swap cache
    page_is(e, "Q", flags=USM, mapcount=0, refcount=1, page="lru|swapcache")
    entry_is(e, "E", count=0, page="Q", memcg=NONE)
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0)

    ok(e.isolate("Q"))
    ok(e.lock("Q"))
    rp = Replay(e, e.swapout, "Q")
    ok(rp.result)
    swapped = rp.cut("__delete_from_swap_cache")  # after mem_cgroup_swapout(Q, E)
    rp.memcg_is(swapped, usage=1, memsw=1, swap=1, css=1)
    assert rp.page_flags(swapped, "Q") == UM
    assert rp.record(swapped, "E") == "A"
    freed_swap = rp.cut("unlock_page", after="swapcache_free")  # uncharge_swap(E) has run
    rp.memcg_is(freed_swap, usage=1, memsw=0, swap=0, css=0)
    assert rp.record(freed_swap, "E") == "none"
    memcg_is(e, usage=0, memsw=0, rss=0, swap=0, css=0, pgpgin=2, pgpgout=2)
    page_is(e, "Q", flags=NONE, freed=True)
    entry_is(e, "E", memcg=NONE, freed=True)


@BOTH
def test_e3_variant_entry_freed_without_swapin(model):
    """E3 variant "entry freed without swap-in": after step 6 the task exits;
    free_swap_and_cache(E) -> count 0 -> uncharge_swap: msw 0, SWP 0, rec 0, css -1."""
    e = e3_start(model)
    ok(e.reclaim("P", "E"))
    memcg_is(e, usage=0, memsw=1, swap=1, css=1)
    ok(e.free_swap("E"))
    memcg_is(e, usage=0, memsw=0, rss=0, swap=0, css=0, pgpgin=1, pgpgout=1)
    entry_is(e, "E", memcg=NONE, count=0, freed=True)


@BOTH
def test_e3_variant_reuse_on_write_fault_rows(model):
    """E3 variant "reuse on write fault" (step 9'): reuse_swap_page deletes Q from swap cache
    before commit -> commit does not touch E; swap_free(E) at step 10 -> rec dropped, msw 2 -> 1,
    SWP 0. Same end state."""
    e = e3_start(model)
    e3_swap_out(e)
    ok(e.readahead("E", "Q"))  # row 7
    ok(e.get("Q"))  # row 8
    ok(e.lock("Q"))
    ok(e.try_charge("Q", "root"))
    memcg_is(e, usage=1, memsw=2, rss=0, swap=1, css=1)

    ok(e.delete_from_swap_cache("Q"))  # 9': reuse_swap_page (Q unmapped, E count 1)
    page_is(e, "Q", page="locked|lru", entry=NONE)
    entry_is(e, "E", memcg="A", count=1, page=NONE, freed=False)
    ok(e.map("Q"))
    ok(e.commit("Q", lrucare=True))  # commit does not touch E
    memcg_is(e, usage=1, memsw=2, rss=1, swap=1, css=1, pgpgin=2)
    page_is(e, "Q", flags=USM, memcg="A")
    entry_is(e, "E", memcg="A", count=1)

    ok(e.free_swap("E"))  # 10: count 0 -> rec(E) dropped: msw 2 -> 1, SWP 0
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0, pgpgin=2, pgpgout=1)
    entry_is(e, "E", memcg=NONE, freed=True)
    ok(e.unlock("Q"))
    ok(e.put("Q"))
    page_is(e, "Q", flags=USM, refcount=1, mapcount=1)


@BOTH
def test_e3_variant_reuse_on_write_fault_composite(model):
    """E3 variant "reuse on write fault" through `swapin ... reuse`: end state of step 10."""
    e = e3_start(model)
    ok(e.reclaim("P", "E"))
    ok(e.swapin("E", "Q", reuse=True))
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0, pgpgin=2, pgpgout=1)
    page_is(e, "Q", flags=USM, memcg="A", entry=NONE, page="lru", mapcount=1, refcount=1)
    entry_is(e, "E", memcg=NONE, freed=True)


# ------------------------------------------------------------------------------------------
# E4. Migration of a charged anonymous page (O -> N)
# ------------------------------------------------------------------------------------------
def e4_start(model: str) -> Engine:
    """E4 start: O charged to A (res 1, msw 1, RSS 1, U M S); N freshly allocated; step a:
    O isolated (migration locks both pages itself)."""
    e = new_engine(model, "A")
    ok(e.fault("O", "A"))
    ok(e.isolate("O"))
    ok(e.alloc("N", "anon"))
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)
    page_is(e, "O", flags=USM)
    page_is(e, "N", flags=NONE)
    return e


def test_e4_317_migration():
    """E4 column M: c. try_to_unmap(O) no effect; d. mem_cgroup_migrate(O,N): O = 0,
    N = U M S, res 1, msw 1, RSS 1, no events; e. then remove_migration_ptes maps N;
    g. O freed: nothing; final res 1, msw 1, RSS 1, in/out +0."""
    e = e4_start("3.17")
    rp = Replay(e, e.migrate, "O", "N")
    ok(rp.result)
    order = calls(rp.result)
    assert order.index("mem_cgroup_migrate") < order.index("remove_migration_ptes")

    c = rp.cut("mem_cgroup_migrate")  # c: after try_to_unmap(O), before the transfer
    assert rp.page_field(c, "O", "mapcount") == 0
    assert rp.page_flags(c, "O") == USM
    rp.memcg_is(c, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)

    d = rp.cut("remove_migration_ptes")  # d: mem_cgroup_migrate has run, N not mapped yet
    assert rp.page_flags(d, "O") == NONE
    assert rp.page_flags(d, "N") == USM
    assert rp.page_memcg(d, "N") == "A"
    assert rp.page_field(d, "N", "mapcount") == 0
    rp.memcg_is(d, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)

    # e-g and final
    page_is(e, "N", flags=USM, memcg="A", mapcount=1)
    page_is(e, "O", flags=NONE, freed=True)
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)


def test_e4_v1_migration():
    """E4 column V1 (intended): e. remove_migration_ptes maps N, then mem_cgroup_migrate(O,N):
    O = U, N = U M S, RSS 2, in +1; g. O freed: uncharge(O): RSS 1, out +1, counters
    untouched; final res 1, msw 1, RSS 1, in +1, out +1."""
    e = e4_start("v1")
    rp = Replay(e, e.migrate, "O", "N")
    ok(rp.result)
    order = calls(rp.result)
    assert order.index("remove_migration_ptes") < order.index("mem_cgroup_migrate")

    c = rp.cut("remove_migration_ptes")  # c: try_to_unmap(O) has had no effect
    assert rp.page_field(c, "O", "mapcount") == 0
    assert rp.page_flags(c, "O") == USM
    rp.memcg_is(c, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)

    before = rp.cut("mem_cgroup_migrate")  # e: N is mapped before the transfer
    assert rp.page_field(before, "N", "mapcount") == 1
    assert rp.page_flags(before, "N") == NONE

    e_row = rp.cut("unlock_page", after="mem_cgroup_migrate")  # e: the transfer has run
    assert rp.page_flags(e_row, "O") == U
    assert rp.page_memcg(e_row, "O") == "A"
    assert rp.page_flags(e_row, "N") == USM
    assert rp.page_memcg(e_row, "N") == "A"
    rp.memcg_is(e_row, usage=1, memsw=1, rss=2, pgpgin=2, pgpgout=0)

    g = rp.cut("mem_cgroup_uncharge")  # g: O freed -> uncharge(O)
    assert rp.page_flags(g, "O") == U
    rp.memcg_is(g, usage=1, memsw=1, rss=2, pgpgin=2, pgpgout=0)

    # final
    page_is(e, "O", flags=NONE, freed=True)
    page_is(e, "N", flags=USM, memcg="A", mapcount=1)
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=2, pgpgout=1)


@BOTH
def test_e4_failure_at_d(model):
    """E4 "Failure at d (M and V1)": nothing is called; N is freed uncharged; O keeps U M S."""
    e = e4_start(model)
    r = e.migrate("O", "N", fail=True)
    assert r.outcome == "failed"
    assert r.violations == []
    assert "mem_cgroup_migrate" not in calls(r)
    page_is(e, "N", flags=NONE, freed=True)
    page_is(e, "O", flags=USM, memcg="A", mapcount=1, isolated="no", freed=False)
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)


# ------------------------------------------------------------------------------------------
# E5. replace_page_cache_page() (FUSE splice), old page O charged to A (CACHE 1)
# ------------------------------------------------------------------------------------------
def e5_start(model: str, *memcgs: str) -> Engine:
    """O charged to A as page cache (CACHE 1), on the LRU; N a fresh file page, locked."""
    e = new_engine(model, "A", *memcgs)
    ok(e.cache("O", "A"))
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)
    return e


def test_e5_317_old_page_isolated():
    """E5 bullet 1 (M, N uncharged, O isolated): mem_cgroup_migrate(O, N, lrucare): O = 0,
    N = U M S with memcg A; res, msw, CACHE unchanged; no events. O freed later: nothing."""
    e = e5_start("3.17")
    ok(e.isolate("O"))  # the caller's hold on O
    ok(e.lock("O"))
    ok(e.alloc("N", "file"))
    ok(e.lock("N"))
    ok(e.replace_cache("O", "N"))
    page_is(e, "O", flags=NONE)
    page_is(e, "N", flags=USM, memcg="A")
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)

    ok(e.unlock("O"))
    ok(e.putback("O"))  # O's last reference: freed
    page_is(e, "O", flags=NONE, freed=True)
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)


def test_e5_317_old_page_on_lru_leaks():
    """E5 bullet 2 (M, O on the LRU, 3.17.4 as written): N = U M S with memcg root; A keeps
    res 1, msw 1, CACHE 1 with no page behind them (I1 broken for A); root is not charged;
    root's CACHE goes -1 when N is freed."""
    e = e5_start("3.17")
    ok(e.get("O"))  # the caller's hold on O, which stays on the LRU
    ok(e.lock("O"))
    ok(e.alloc("N", "file"))
    ok(e.lock("N"))
    root_before = e.memcg_view("root")
    r = e.replace_cache("O", "N")
    assert r.outcome == "ok"
    broken = {(v.inv, v.obj) for v in r.violations}
    assert {("I1", "A"), ("I2", "A"), ("I5", "A")} <= broken
    page_is(e, "N", flags=USM, memcg="root")
    page_is(e, "O", flags=NONE, memcg="root", page="locked|lru")  # unlock_page_lru put it back
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)
    memcg_is(e, "root", usage=root_before["usage"], memsw=root_before["memsw"], cache=0)

    # the leak is carried: later steps report nothing new (docs/engine.md)
    ok(e.unlock("O"))
    ok(e.put("O"))  # O freed: it holds nothing any more, A's charge stays leaked
    page_is(e, "O", freed=True)
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgout=0)

    ok(e.unlock("N"))
    ok(e.put("N"))  # the allocation's reference; the page cache holds N now
    ok(e.truncate("N"))  # N freed: uncharged from root's statistics
    page_is(e, "N", flags=NONE, freed=True)
    memcg_is(e, "root", cache=-1, usage=root_before["usage"])
    memcg_is(e, usage=1, memsw=1, cache=1)


def test_e5_317_new_page_already_charged_to_b():
    """E5 bullet 3 (M, N already charged to B as page cache): no transfer; res(A) 1 (O) until
    O is freed (then 0), res(B) 1 (N)."""
    e = e5_start("3.17", "B")
    ok(e.alloc("N", "file"))  # N: page cache of another file, charged to B, then stolen
    ok(e.lock("N"))
    ok(e.try_charge("N", "B"))
    ok(e.add_to_cache("N"))
    ok(e.commit("N"))
    ok(e.delete_from_cache("N"))
    memcg_is(e, "B", usage=1, memsw=1, cache=1)
    ok(e.get("O"))
    ok(e.lock("O"))

    ok(e.replace_cache("O", "N"))
    page_is(e, "O", flags=USM, memcg="A")
    page_is(e, "N", flags=USM, memcg="B")
    memcg_is(e, usage=1, memsw=1, cache=1)
    memcg_is(e, "B", usage=1, memsw=1, cache=1)

    ok(e.unlock("O"))
    ok(e.put("O"))  # O freed
    page_is(e, "O", freed=True)
    memcg_is(e, usage=0, memsw=0, cache=0, pgpgout=1)
    memcg_is(e, "B", usage=1, memsw=1, cache=1)


def test_e5_v1_old_page_on_lru_is_a_vm_bug():
    """E5 bullet V1: its assertions require both pages off the LRU: O on the LRU -> VM_BUG_ON
    (memcg), the step rolled back."""
    e = e5_start("v1")
    ok(e.get("O"))
    ok(e.lock("O"))
    ok(e.alloc("N", "file"))
    ok(e.lock("N"))
    with pytest.raises(VmBug) as bug:
        e.replace_cache("O", "N")
    assert bug.value.origin == "memcg"
    assert "mem_cgroup_migrate" in bug.value.assertion
    assert "PageLRU" in bug.value.assertion
    page_is(e, "O", flags=USM, memcg="A", page="locked|lru", refcount=2)
    page_is(e, "N", flags=NONE, refcount=1)
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=1, pgpgout=0)


def test_e5_v1_old_page_isolated():
    """E5 bullet V1, both pages off the LRU: O = U, N = U M S; CACHE 2 until O is freed (then
    1); in +1, out +1 (at O's free); counters unchanged."""
    e = e5_start("v1")
    ok(e.isolate("O"))
    ok(e.lock("O"))
    ok(e.alloc("N", "file"))
    ok(e.lock("N"))
    ok(e.replace_cache("O", "N"))
    page_is(e, "O", flags=U, memcg="A")
    page_is(e, "N", flags=USM, memcg="A")
    memcg_is(e, usage=1, memsw=1, cache=2, pgpgin=2, pgpgout=0)

    ok(e.unlock("O"))
    ok(e.putback("O"))  # O's last reference: freed
    page_is(e, "O", flags=NONE, freed=True)
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=2, pgpgout=1)


# ------------------------------------------------------------------------------------------
# E6. release_pages() batch with pages from two memcgs
# ------------------------------------------------------------------------------------------
def e6_start(model: str) -> Engine:
    """a1(A), a2(A), b1(B), a3(A) charged (U M S), unmapped, each held by one reference."""
    e = new_engine(model, "A", "B")
    for name, memcg in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A")):
        ok(e.fault(name, memcg))
        ok(e.get(name))
        ok(e.unmap(name))
        page_is(e, name, flags=USM, refcount=1, mapcount=0)
    memcg_is(e, usage=3, memsw=3, rss=3, pgpgin=3, pgpgout=0)
    memcg_is(e, "B", usage=1, memsw=1, rss=1, pgpgin=1, pgpgout=0)
    return e


def test_e6_317_release_totals():
    """E6 M (uncharge_list): totals A -3/-3, out +3; B -1/-1, out +1; three uncharge_batch
    calls (each one res and one memsw res_counter uncharge)."""
    e = e6_start("3.17")
    cost = e.cost_view()
    ok(e.release("a1", "a2", "b1", "a3"))
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=3, pgpgout=3)
    memcg_is(e, "B", usage=0, memsw=0, rss=0, pgpgin=1, pgpgout=1)
    delta = cost_delta(cost, e.cost_view())
    assert delta["batches"] == 3
    assert delta["res_counter"] == 6
    for name in ("a1", "a2", "b1", "a3"):
        page_is(e, name, flags=NONE, freed=True)


def test_e6_317_release_runs():
    """E6 M runs: three uncharge_batch calls with the totals of SEMANTICS E6. The order is the
    3.17.4 source's, not E6's narrative: release_pages() chains the freed pages with list_add()
    (at the list head) and uncharge_list() walks from the head, so a3 is met first: runs A{a3},
    B{b1}, A{a2,a1} (docs/modelling.md, "release_pages order")."""
    e = e6_start("3.17")
    rp = Replay(e, e.release, "a1", "a2", "b1", "a3")
    ok(rp.result)
    runs = [args for _p, kind, name, args in rp.result.events if name == "uncharge_batch"]
    assert runs == [("A", 1), ("B", 1), ("A", 2)]
    second = rp.cut("uncharge_batch", nth=1)  # run A{a3} flushed
    rp.memcg_is(second, "A", usage=2, memsw=2, pgpgout=1)
    rp.memcg_is(second, "B", usage=1, memsw=1, pgpgout=0)
    third = rp.cut("uncharge_batch", nth=2)  # run B{b1} flushed
    rp.memcg_is(third, "A", usage=2, memsw=2, pgpgout=1)
    rp.memcg_is(third, "B", usage=0, memsw=0, pgpgout=1)


def test_e6_v1_release_in_batch():
    """E6 V1/v2 per-task batch (`release` inside batch_begin/batch_end): batch memcg = A; a1, a2,
    a3 deferred; b1 direct res(B) -1, msw(B) -1; statistics per page at once; at uncharge_end
    res(A) -3, msw(A) -3 at once."""
    e = e6_start("v1")
    cost = e.cost_view()
    ok(e.batch_begin())
    ok(e.release("a1", "a2", "b1", "a3"))
    memcg_is(e, usage=3, memsw=3, rss=0, pgpgin=3, pgpgout=3)  # counters deferred
    memcg_is(e, "B", usage=0, memsw=0, rss=0, pgpgin=1, pgpgout=1)  # direct
    delta = cost_delta(cost, e.cost_view())
    assert delta["res_counter"] == 2  # b1: res and memsw
    assert delta["batches"] == 0
    for name in ("a1", "a2", "b1", "a3"):
        page_is(e, name, flags=NONE, freed=True)

    ok(e.batch_end())
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=3, pgpgout=3)
    memcg_is(e, "B", usage=0, memsw=0, pgpgout=1)
    delta = cost_delta(cost, e.cost_view())
    assert delta["res_counter"] == 4  # + A's res -3 and memsw -3, one call each
    assert delta["batches"] == 1


def test_e6_v1_release_in_batch_order():
    """E6 V1: a1, a2 -> deferred (A nr_pages 2); b1 -> direct; a3 -> deferred (3): the pages are
    uncharged one by one in the order they reach count 0 (LANGUAGE §3.3: argument order)."""
    e = e6_start("v1")
    ok(e.batch_begin())
    rp = Replay(e, e.release, "a1", "a2", "b1", "a3")
    ok(rp.result)
    window = e.windows["main"]  # current->memcg_batch of the thread
    at_b1 = rp.cut_at("mem_cgroup_uncharge", ("b1",))
    assert rp.value(at_b1, window, "nr_pages") == 2  # a1, a2 deferred before b1 arrives
    order = [args[0] for _p, kind, name, args in rp.result.events if name == "mem_cgroup_uncharge"]
    assert order == ["a1", "a2", "b1", "a3"]
    assert window.nr_pages == 3
    ok(e.batch_end())


def test_e6_v1_plain_release_is_direct():
    """§6 preamble on E6: a plain `release` under V1 uncharges page by page, directly."""
    e = e6_start("v1")
    cost = e.cost_view()
    ok(e.release("a1", "a2", "b1", "a3"))
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgout=3)
    memcg_is(e, "B", usage=0, memsw=0, rss=0, pgpgout=1)
    delta = cost_delta(cost, e.cost_view())
    assert delta["res_counter"] == 8  # res and memsw for each of the four pages
    assert delta["batches"] == 0


# ------------------------------------------------------------------------------------------
# E7. Swap readahead page that is never charged, then freed
# ------------------------------------------------------------------------------------------
def e7_start(model: str) -> Engine:
    """E2 belongs to a page of A swapped out earlier: rec(E2) = A, msw(A) includes it, SWP(A) 1;
    one pte references E2."""
    e = new_engine(model, "A")
    ok(e.fault("P", "A"))
    ok(e.reclaim("P", "E2"))
    memcg_is(e, usage=0, memsw=1, swap=1, css=1)
    entry_is(e, "E2", memcg="A", count=1, page=NONE)
    return e


def test_e7_317_readahead_never_charged_rows():
    """E7 (M) rows 1-4: readahead R uncharged; reclaim: mem_cgroup_swapout(R, E2) returns at
    once, swapcache_free(E2) leaves count 1; R freed, uncharge skips it; X exits:
    free_swap_and_cache(E2) -> msw -1, SWP 0, rec 0, css -1."""
    e = e7_start("3.17")
    ok(e.readahead("E2", "R"))  # 1
    page_is(e, "R", flags=NONE, page="lru|swapcache", entry="E2")
    memcg_is(e, usage=0, memsw=1, rss=0, swap=1, css=1, pgpgin=1, pgpgout=1)
    entry_is(e, "E2", memcg="A", count=1, page="R")

    ok(e.isolate("R"))  # 2: reclaim isolates R; __remove_mapping
    ok(e.lock("R"))
    rp = Replay(e, e.swapout, "R")
    ok(rp.result)
    after = rp.cut("unlock_page", after="swapcache_free")
    assert rp.record(after, "E2") == "A"
    assert rp.value(after, e.entries["E2"], "count") == 1
    rp.memcg_is(after, usage=0, memsw=1, swap=1, css=1)

    # 3: R freed, uncharge_list skips it; counters unchanged
    page_is(e, "R", flags=NONE, freed=True)
    memcg_is(e, usage=0, memsw=1, rss=0, swap=1, css=1, pgpgin=1, pgpgout=1)
    entry_is(e, "E2", memcg="A", count=1, page=NONE, freed=False)

    ok(e.free_swap("E2"))  # 4: X exits
    memcg_is(e, usage=0, memsw=0, swap=0, css=0, pgpgin=1, pgpgout=1)
    entry_is(e, "E2", memcg=NONE, freed=True)


def test_e7_317_readahead_never_charged_composite():
    """E7 (M) through `reclaim R` (steps 2-3) and `free_swap` (step 4)."""
    e = e7_start("3.17")
    ok(e.readahead("E2", "R"))
    ok(e.reclaim("R"))
    page_is(e, "R", flags=NONE, freed=True)
    memcg_is(e, usage=0, memsw=1, rss=0, swap=1, css=1, pgpgin=1, pgpgout=1)
    entry_is(e, "E2", memcg="A", count=1, page=NONE)
    ok(e.free_swap("E2"))
    memcg_is(e, usage=0, memsw=0, swap=0, css=0)
    entry_is(e, "E2", memcg=NONE, freed=True)


def test_e7_v1_swapout_of_readahead_page_is_a_vm_bug():
    """E7, V1 as posted: no "not USED" check in mem_cgroup_swapout(): step 2 records R's stale
    (root) memcg for E2 and trips VM_BUG_ON(oldid), rec(E2) being A already."""
    e = e7_start("v1")
    ok(e.readahead("E2", "R"))
    ok(e.isolate("R"))
    ok(e.lock("R"))
    with pytest.raises(VmBug) as bug:
        e.swapout("R")
    assert bug.value.origin == "memcg"
    assert "mem_cgroup_swapout" in bug.value.assertion
    assert "oldid" in bug.value.assertion
    # rolled back: as before the step
    page_is(e, "R", flags=NONE, freed=False, page="locked|swapcache", isolated="yes")
    entry_is(e, "E2", memcg="A", count=1, page="R")
    memcg_is(e, usage=0, memsw=1, swap=1, css=1)


# ------------------------------------------------------------------------------------------
# E8. THP fault, split, partial free
# ------------------------------------------------------------------------------------------
def munmap_ten(e: Engine, head: str) -> None:
    """Step 4: munmap of 10 pages (the head and 9 tails), freed via release_pages."""
    ok(e.zap_begin())
    for name in [head] + [f"{head}.{i}" for i in range(1, 10)]:
        ok(e.unmap(name))
    ok(e.zap_end())


@BOTH
def test_e8_thp_fault_split_partial_free_rows(model):
    """E8 rows 1-4 through primitives: TC(512), CC under the pmd lock, split_huge_page ->
    split_huge_fixup (tails copy U M S), munmap of 10 pages."""
    e = new_engine(model, "A")
    ok(e.alloc("H", "anon", huge=True))
    ok(e.try_charge("H", "A"))  # 1
    memcg_is(e, usage=512, memsw=512, rss=0, rss_huge=0, pgpgin=0, pgpgout=0)
    ok(e.map("H"))  # 2
    ok(e.commit("H"))
    memcg_is(e, usage=512, memsw=512, rss=512, rss_huge=512, pgpgin=1, pgpgout=0)
    page_is(e, "H", flags=USM, huge="yes")
    ok(e.lru_add("H"))
    ok(e.put("H"))

    ok(e.split("H"))  # 3
    memcg_is(e, usage=512, memsw=512, rss=512, rss_huge=0, pgpgin=1, pgpgout=0)
    page_is(e, "H", flags=USM, huge="no")
    for tail in ("H.1", "H.255", "H.511"):
        page_is(e, tail, flags=USM, memcg="A", mapcount=1)

    munmap_ten(e, "H")  # 4
    memcg_is(e, usage=502, memsw=502, rss=502, rss_huge=0, pgpgin=1, pgpgout=10)
    page_is(e, "H.9", flags=NONE, freed=True)
    page_is(e, "H.10", flags=USM, freed=False)


@BOTH
def test_e8_thp_fault_split_partial_free_composite(model):
    """E8 through `fault ... huge` (end of row 2), `split` (row 3) and a zap (row 4)."""
    e = new_engine(model, "A")
    ok(e.fault("H", "A", huge=True))
    memcg_is(e, usage=512, memsw=512, rss=512, rss_huge=512, pgpgin=1, pgpgout=0)
    ok(e.split("H"))
    memcg_is(e, usage=512, memsw=512, rss=512, rss_huge=0, pgpgin=1, pgpgout=0)
    munmap_ten(e, "H")
    memcg_is(e, usage=502, memsw=502, rss=502, rss_huge=0, pgpgin=1, pgpgout=10)


# ------------------------------------------------------------------------------------------
# E10. Charge at the limit (stock-free form)
# ------------------------------------------------------------------------------------------
def e10_start(model: str) -> Engine:
    """A: res.limit = 10 pages, usage 10, nothing reclaimable."""
    e = new_engine(model, "A", A={"limit": 10})
    for i in range(10):
        ok(e.fault(f"p{i}", "A"))
    memcg_is(e, usage=10, failcnt=0, limit=10)
    return e


def assert_enomem(e: Engine, r: StepResult, attempts: int) -> None:
    assert r.outcome == "error"
    assert isinstance(r.error, KernelError)
    assert r.error.errno == "ENOMEM"
    assert r.error.counter_kind == "res"
    assert r.error.memcg == "A"
    assert r.error.attempts == attempts
    assert r.violations == []


@BOTH
def test_e10_base_page_at_limit(model):
    """E10 stock-free: a failed base-page charge adds 6 to failcnt (1 + 5 retries) under M and
    V1; the fault fails with -ENOMEM, its page is freed; usage never above the limit."""
    e = e10_start(model)
    r = e.fault("X", "A")
    assert_enomem(e, r, 6)
    memcg_is(e, usage=10, memsw=10, failcnt=6, memsw_failcnt=0, max_usage=10, rss=10)
    page_is(e, "X", flags=NONE, freed=True)

    r = e.fault("Y", "A")  # every failed charge adds the same
    assert_enomem(e, r, 6)
    memcg_is(e, usage=10, failcnt=12, max_usage=10)


@pytest.mark.parametrize(("model", "failcnt"), [("3.17", 1), ("v1", 6)])
def test_e10_thp_at_limit(model, failcnt):
    """E10 stock-free: a failed THP charge adds 1 to failcnt under M (GFP_TRANSHUGE has
    __GFP_NORETRY) and 6 under V1 (GFP_KERNEL, oom = false); usage never above the limit."""
    e = e10_start(model)
    r = e.fault("H", "A", huge=True)
    assert_enomem(e, r, failcnt)
    memcg_is(e, usage=10, memsw=10, failcnt=failcnt, max_usage=10, rss=10, rss_huge=0)
    page_is(e, "H", flags=NONE, freed=True)
