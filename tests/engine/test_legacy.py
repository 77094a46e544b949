"""The legacy (3.16) model against SEMANTICS §4 and the L notes of §6, number for number."""

from __future__ import annotations

import pytest
from test_worked_examples import calls, memcg_is, new_engine, ok, page_is

from memcglang.engine import ChargeFailed, VmBug


def legacy(*memcgs: str, **limits):
    return new_engine("legacy", *memcgs, **limits)


def zap(e, *names: str):
    ok(e.zap_begin())
    for n in names:
        ok(e.unmap(n))
    return ok(e.zap_end())


def test_e1_charge_before_map_uncharge_at_last_unmap():
    """E1 L: charge and commit together before the rmap; the uncharge happens at
    page_remove_rmap (statistics at once, res at the zap window's end); freeing: nothing."""
    e = legacy("A")
    r = ok(e.fault("P", "A"))
    names = calls(r)
    assert names.index("__mem_cgroup_commit_charge") < names.index("page_add_new_anon_rmap")
    page_is(e, "P", flags="USED", memcg="A", mapcount=1)
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=1)
    ok(e.zap_begin())
    ok(e.unmap("P"))
    page_is(e, "P", flags="none", refcount=1)
    memcg_is(e, usage=1, memsw=1, rss=0, pgpgout=1)  # res deferred by the window
    r = ok(e.zap_end())
    assert "mem_cgroup_uncharge" not in calls(r) and "mem_cgroup_uncharge_end" in calls(r)
    memcg_is(e, usage=0, memsw=0, rss=0, pgpgin=1, pgpgout=1)
    assert e.cost_view() == {"res_counter": 4, "pc_lock": 2, "batches": 1}


def test_e2_truncate_uncharges_at_cache_removal_even_with_an_extra_reference():
    e = legacy("A")
    ok(e.cache("F", "A"))
    memcg_is(e, usage=1, cache=1, pgpgin=1)
    ok(e.get("F"))  # a pipe buffer
    ok(e.truncate("F"))
    page_is(e, "F", flags="none", refcount=1, freed=False)
    memcg_is(e, usage=0, memsw=0, cache=0, pgpgout=1)  # F5: the page lives on uncharged
    ok(e.put("F"))
    memcg_is(e, usage=0, cache=0, pgpgout=1)


def test_e3_swap_out_and_in():
    """E3 L: swapcache_free with the entry still referenced is a SWAPOUT uncharge (res 0,
    SWP 1, rec A, css +1, msw stays); swap-in try/commit charges the record's memcg and
    drops the record."""
    e = legacy("A")
    ok(e.fault("P", "A"))
    ok(e.reclaim("P", "E"))
    memcg_is(e, usage=0, memsw=1, rss=0, swap=1, css=1, pgpgout=1)
    assert e.entry_view("E")["memcg"] == "A"
    ok(e.swapin("E", "Q"))
    page_is(e, "Q", flags="USED", memcg="A", mapcount=1)
    memcg_is(e, usage=1, memsw=1, rss=1, swap=0, css=0, pgpgin=2)
    assert e.entry_view("E")["memcg"] == "none"


def e4_start():
    """E4's start: O charged to A and isolated, N freshly allocated."""
    e = legacy("A")
    ok(e.fault("O", "A"))
    ok(e.isolate("O"))
    ok(e.alloc("N", "anon"))
    return e


def test_e4_migration_rows_b_f_and_final():
    e = e4_start()
    r = ok(e.migrate("O", "N"))
    names = calls(r)
    assert names.index("mem_cgroup_prepare_migration") < names.index("try_to_unmap")
    assert names.index("remove_migration_ptes") < names.index("mem_cgroup_end_migration")
    assert any(kind == "note" and "PCG_MIGRATION" in text for _p, kind, text, _a in r.events)
    page_is(e, "N", flags="USED", memcg="A", mapcount=1)
    page_is(e, "O", freed=True)
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=2, pgpgout=1, css=0)


def test_e4_migration_failure_keeps_the_old_charge():
    e = e4_start()
    r = e.migrate("O", "N", fail=True)
    assert r.outcome == "failed" and r.violations == []
    page_is(e, "O", flags="USED", memcg="A", mapcount=1)
    page_is(e, "N", freed=True)
    memcg_is(e, usage=1, memsw=1, rss=1, pgpgin=2, pgpgout=1, css=0)


def test_e5_replace_page_cache():
    e = legacy("A")
    ok(e.cache("O", "A"))
    ok(e.lock("O"))
    ok(e.get("O"))
    ok(e.alloc("N", "file"))
    ok(e.lock("N"))
    ok(e.replace_cache("O", "N"))
    page_is(e, "O", flags="none")
    page_is(e, "N", flags="USED", memcg="A")
    memcg_is(e, usage=1, memsw=1, cache=1, pgpgin=2, pgpgout=1)


def test_e6_batching_driven_by_page_remove_rmap():
    """E6 L: the zap window's batch memcg is A (first seen); b1 is uncharged directly."""
    e = legacy("A", "B")
    for name, m in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A")):
        ok(e.fault(name, m))
    ok(e.zap_begin())
    for name in ("a1", "a2", "b1", "a3"):
        ok(e.unmap(name))
    memcg_is(e, "A", usage=3, rss=0, pgpgout=3)
    memcg_is(e, "B", usage=0, rss=0, pgpgout=1)
    ok(e.zap_end())
    memcg_is(e, "A", usage=0, memsw=0)
    assert e.cost_view()["batches"] == 1


def test_e7_readahead_page_never_charged():
    e = legacy("A")
    ok(e.fault("P", "A"))
    ok(e.reclaim("P", "E2"))
    ok(e.readahead("E2", "R"))
    r = ok(e.reclaim("R"))
    assert "mem_cgroup_uncharge_swapcache" not in calls(r)  # R not USED: quick return
    memcg_is(e, usage=0, memsw=1, swap=1, css=1)
    ok(e.free_swap("E2"))
    memcg_is(e, usage=0, memsw=0, swap=0, css=0)


def test_thp_charge_fails_after_one_attempt():
    e = legacy("A")
    ok(e.set_limits("A", limit=10))
    r = e.fault("H", "A", huge=True)
    assert isinstance(r.error, ChargeFailed) and r.error.attempts == 1
    memcg_is(e, failcnt=1, usage=0)


def test_munmap_of_many_pages_takes_the_page_cgroup_lock_once_per_page():
    """F3: the page_cgroup lock per commit and per uncharge; the res_counter work batched."""
    e = legacy("A")
    for i in range(100):
        ok(e.fault(f"P{i}", "A"))
    before = e.cost_view()
    zap(e, *(f"P{i}" for i in range(100)))
    after = e.cost_view()
    assert after["pc_lock"] - before["pc_lock"] == 100
    assert after["res_counter"] - before["res_counter"] == 2
    assert after["batches"] - before["batches"] == 1


def test_f2_case_d_leaves_a_mapped_page_uncharged():
    """SEMANTICS §4.3 F2 case D (3.14-3.16): reuse_swap_page's swap-cache removal takes the
    swap-out uncharge; the NULL commit does not re-charge: a mapped page without a charge."""
    e = legacy("A")
    ok(e.fault("P", "A"))
    ok(e.map("P"))  # fork: Y maps it too
    ok(e.isolate("P"))
    ok(e.lock("P"))
    ok(e.add_to_swap("P", "E"))
    ok(e.try_to_unmap("P"))  # both ptes -> E (count 2); uncharge deferred (swap cache)
    ok(e.unlock("P"))
    ok(e.putback("P"))
    page_is(e, "P", flags="USED", mapcount=0)
    ok(e.swapin("E", "P"))  # X faults it back: USED -> memcg NULL; count 1
    zap(e, "P")  # X exits: deferred again (swap cache)
    page_is(e, "P", flags="USED", mapcount=0)
    r = e.swapin("E", "P", reuse=True)  # Y write-faults: reuse -> SWAPOUT uncharge
    assert r.outcome == "ok"
    page_is(e, "P", flags="none", mapcount=1)
    memcg_is(e, usage=0, memsw=0, rss=0, swap=0)
    assert any(v.inv == "I4" for v in r.violations), [str(v) for v in r.violations]


def test_move_precharge_fails_after_one_attempt():
    """3.16's mem_cgroup_do_precharge charges page by page with oom = false: the first
    CHARGE_NOMEM gives up (mm/memcontrol.c, __mem_cgroup_try_charge: `if (!oom ...) goto
    nomem`), so a failed one-page precharge adds 1 to failcnt, not 6."""
    e = legacy("A", "B")
    ok(e.set_limits("B", limit=0))
    ok(e.fault("P", "A"))
    r = e.move("P", "B")
    assert isinstance(r.error, ChargeFailed) and r.error.attempts == 1
    memcg_is(e, "B", failcnt=1)


def test_swapout_of_a_page_on_the_lru_is_bad_page():
    """3.16 has no mem_cgroup_swapout to assert: shrink_page_list frees the page without
    taking it off the LRU, and free_pages_check finds PG_lru (bad_page, origin mm)."""
    e = legacy("A")
    ok(e.fault("P", "A"))
    ok(e.lock("P"))
    ok(e.add_to_swap("P", "E"))
    ok(e.try_to_unmap("P"))
    ok(e.get("P"))
    fp = e.fingerprint()
    with pytest.raises(VmBug) as bug:
        e.swapout("P")
    assert bug.value.origin == "mm" and bug.value.assertion == "bad_page"
    assert e.fingerprint() == fp


def test_try_charge_is_the_anon_swap_in_charge():
    e = legacy("A")
    ok(e.alloc("F", "file"))
    with pytest.raises(VmBug) as bug:
        e.try_charge("F", "A")
    assert bug.value.assertion == "mem_cgroup_try_charge_swapin"
