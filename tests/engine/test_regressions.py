"""Engine bugs found by writing the scenario library, each pinned by a test written first."""

from __future__ import annotations

import pytest
from test_worked_examples import calls, memcg_is, new_engine, ok, page_is

from memcglang.engine import ChargeFailed, VmBug

MODELS = ("v1", "3.17")


@pytest.mark.parametrize("model", MODELS)
def test_set_limit_max_lifts_the_limit(model):
    """`set A limit=max` (None is `max`) must lift a limit, not be taken for "not given"."""
    e = new_engine(model, "A")
    ok(e.set_limits("A", limit=4, memsw_limit=8))
    memcg_is(e, limit=4, memsw_limit=8)
    r = e.set_limits("A", limit=None)  # limit max above memsw_limit 8: the kernel's -EINVAL
    assert r.outcome == "error" and r.error.errno == "EINVAL"
    ok(e.set_limits("A", memsw_limit=None))
    memcg_is(e, limit=4, memsw_limit="max")
    ok(e.set_limits("A", limit=None))
    memcg_is(e, limit="max", memsw_limit="max")
    ok(e.set_limits("A", limit=2))  # memsw_limit stays max when not given
    memcg_is(e, limit=2, memsw_limit="max")


@pytest.mark.parametrize("model", MODELS)
def test_migrate_of_a_page_freed_from_under_us_migrates_nothing(model):
    """unmap_and_move: page_count(page) == 1 (only the isolation's reference) means the page
    was freed from under migration: rc 0, nothing moves, both pages are put back and freed."""
    e = new_engine(model, "A")
    ok(e.fault("P", "A"))
    ok(e.isolate("P"))
    ok(e.zap_begin())
    ok(e.unmap("P"))
    ok(e.zap_end())
    page_is(e, "P", refcount=1, isolated="yes", mapcount=0)
    ok(e.alloc("Q", "anon"))
    r = ok(e.migrate("P", "Q"))
    assert "mem_cgroup_migrate" not in calls(r) and "try_to_unmap" not in calls(r)
    assert any(kind == "note" and "freed from under us" in name
               for _pos, kind, name, _args in r.events)
    page_is(e, "P", freed=True)
    page_is(e, "Q", freed=True)
    memcg_is(e, usage=0, memsw=0, rss=0)


@pytest.mark.parametrize("model, attempts", [("3.17", 7), ("v1", 6)])
def test_failed_move_precharge_reports_every_failed_attempt(model, attempts):
    """mem_cgroup_do_precharge of one page: 3.17 makes one bulk attempt without reclaim, then
    1 + 5 with reclaim (failcnt +7, and the report says 7 attempts, not 6); v1 kept 3.16's
    function, whose bulk attempt is made only for count > 1 (failcnt +6)."""
    e = new_engine(model, "A", "B")
    ok(e.set_limits("B", limit=0))
    ok(e.fault("P", "A"))
    r = e.move("P", "B")
    assert r.outcome == "error" and isinstance(r.error, ChargeFailed)
    memcg_is(e, "B", failcnt=attempts)
    assert r.error.attempts == attempts


def test_v1_release_pages_uncharges_inside_its_loop():
    """v1 calls mem_cgroup_uncharge in release_pages' loop as each page reaches 0, so inside
    a window the first page met (b1, of B) sets the batch memcg: b1 is deferred, while the THP
    H (put_compound_page, uncharged in the loop too) and a1 (of A) are uncharged directly."""
    e = new_engine("v1", "A", "B")
    ok(e.fault("b1", "B"))
    ok(e.fault("H", "A", huge=True))
    ok(e.fault("a1", "A"))
    for name in ("b1", "H", "a1"):
        ok(e.get(name))
        ok(e.zap_begin())
        ok(e.unmap(name))
        ok(e.zap_end())
    ok(e.batch_begin())
    r = ok(e.release("b1", "H", "a1"))
    memcg_is(e, "A", usage=0, rss=0)
    memcg_is(e, "B", usage=1, rss=0)
    ok(e.batch_end())
    memcg_is(e, "B", usage=0)
    order = [args[0] for _pos, kind, name, args in r.events
             if kind == "call" and name in ("mem_cgroup_uncharge", "free_page")]
    # uncharged in the loop, in argument order; freed last-freed first (list_add)
    assert order == ["b1", "H", "H", "a1", "a1", "b1"]


@pytest.mark.parametrize("model", MODELS)
def test_release_pages_frees_last_released_first(model):
    """pages_to_free is built with list_add: free_hot_cold_page_list frees in reverse."""
    e = new_engine(model, "A")
    for name in ("p", "q", "r"):
        ok(e.fault(name, "A"))
        ok(e.get(name))
        ok(e.zap_begin())
        ok(e.unmap(name))
        ok(e.zap_end())
    r = ok(e.release("p", "q", "r"))
    freed = [args[0] for _pos, kind, name, args in r.events
             if kind == "call" and name == "free_page"]
    assert freed == ["r", "q", "p"]


def test_a_reservation_ending_rechecks_its_page():
    """I4 lets a mapped page be uncharged while a try_charge for it is pending; when the
    reservation ends without a charge (legacy's NULL commit of a page reuse took out of the
    swap cache), the page is checked at that statement, not at some later one."""
    e = new_engine("3.17", "A")
    ok(e.alloc("P", "anon"))
    ok(e.try_charge("P", "A"))
    ok(e.map("P"))
    r = e.cancel("P")  # the pte stays: a mapped page without a charge
    assert any(v.inv == "I4" for v in r.violations), [str(v) for v in r.violations]


@pytest.mark.parametrize("model", (*MODELS, "legacy"))
def test_split_of_an_unmapped_huge_page_is_refused(model):
    """split_huge_page needs the anon_vma of a mapped page (page_get_anon_vma); legacy has
    already uncharged an unmapped THP, and mem_cgroup_split_huge_fixup would subtract its
    RSS_HUGE a second time."""
    e = new_engine(model, "A")
    ok(e.fault("H", "A", huge=True))
    ok(e.isolate("H"))
    ok(e.zap_begin())
    ok(e.unmap("H"))
    ok(e.zap_end())
    with pytest.raises(VmBug) as bug:
        e.split("H")
    assert bug.value.origin == "mm" and "anon_vma" in bug.value.report


def test_munmap_releases_in_mmu_gather_batches_and_pagevec_chunks():
    """tlb_flush_mmu_free: the gather's batches (8 on the stack, then 510 each), each freed by
    3.17.4's free_pages_and_swap_cache in PAGEVEC_SIZE (14) chunks: 20 pages are released
    as 8 + 12, so 3.17 runs two uncharge_batch."""
    e = new_engine("3.17", "A")
    for i in range(20):
        ok(e.fault(f"P{i}", "A"))
    ok(e.zap_begin())
    for i in range(20):
        ok(e.unmap(f"P{i}"))
    r = ok(e.zap_end())
    releases = [args for _pos, kind, name, args in r.events
                if kind == "call" and name == "release_pages"]
    assert [len(a) for a in releases] == [8, 12]
    assert calls(r).count("uncharge_batch") == 2
    assert e.cost_view()["batches"] == 2


@pytest.mark.parametrize("model", ("v1", "3.17", "legacy"))
def test_migrate_of_an_unmapped_anon_page_outside_the_swap_cache_is_eagain(model):
    """__unmap_and_move: page_get_anon_vma() finds no anon_vma for an anon page that is not
    mapped, and only a swap-cache page goes on without one: -EAGAIN before anything moves;
    the page is put back and the new one freed (found by reviewing explore's v1 double
    migration, which first crashed through this path)."""
    e = new_engine(model, "A")
    ok(e.fault("P", "A"))
    ok(e.get("P"))  # a pin keeps P alive after its unmap
    ok(e.unmap("P"))
    ok(e.isolate("P"))
    ok(e.alloc("Q", "anon"))
    r = e.migrate("P", "Q")
    assert r.outcome == "error" and r.error.errno == "EAGAIN", r.outcome
    assert "page_get_anon_vma(P): not mapped, not in the swap cache: -EAGAIN" in [
        name for _pos, kind, name, _args in r.events if kind == "note"]
    assert "try_to_unmap" not in calls(r) and "move_to_new_page" not in calls(r)
    page_is(e, "P", refcount=1, isolated="no", mapcount=0, page="lru")
    page_is(e, "Q", freed=True)
    charged = model != "legacy"  # legacy uncharged the pinned page at its last unmap (F5)
    page_is(e, "P", memcg="A" if charged else "root")
    memcg_is(e, usage=int(charged), rss=int(charged))
