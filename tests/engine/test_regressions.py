"""Engine bugs found by writing the scenario library, each pinned by a test written first."""

from __future__ import annotations

import pytest
from test_worked_examples import calls, memcg_is, new_engine, ok, page_is

from memcglang.engine import ChargeFailed

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


@pytest.mark.parametrize("model", MODELS)
def test_failed_move_precharge_reports_every_failed_attempt(model):
    """mem_cgroup_do_precharge: one bulk attempt, then 1 + 5 with reclaim: failcnt +7, and the
    report says 7 attempts, not 6."""
    e = new_engine(model, "A", "B")
    ok(e.set_limits("B", limit=0))
    ok(e.fault("P", "A"))
    r = e.move("P", "B")
    assert r.outcome == "error" and isinstance(r.error, ChargeFailed)
    memcg_is(e, "B", failcnt=7)
    assert r.error.attempts == 7
