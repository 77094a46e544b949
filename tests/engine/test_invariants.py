"""The invariant checker itself: each invariant fires on the state that breaks it, names the
object and both numbers, and a carried discrepancy is reported once."""

from __future__ import annotations

import pytest

from memcglang.engine import Engine


def hier() -> Engine:
    e = Engine("3.17")
    e.create_memcg("A")
    e.create_memcg("A/B")
    return e


def keys(result):
    return sorted((v.inv, v.obj, v.field, v.actual, v.expected) for v in result.violations)


def test_a_parents_own_share_off_breaks_i1_and_i10_there():
    e = hier()
    e.fault("P", "A/B")
    a = e.memcgs["A"]
    e.j.w(a.res, "usage", a.res.usage + 1)  # corrupt A's own counter (not its parent's)
    found = keys(e.fault("Q", "A"))
    assert ("I1", "A", "usage", 3, 2) in found
    assert ("I10", "A", "usage", 3, 2) in found
    assert ("I10", "root", "usage", 2, 3) in found  # root now holds less than its child A


def test_a_childs_counter_off_breaks_the_parents_i10_not_its_i1():
    e = hier()
    b = e.memcgs["A/B"]
    e.j.w(b.res, "usage", b.res.usage + 2)
    found = keys(e.fault("P", "A/B"))
    assert ("I1", "A/B", "usage", 3, 1) in found
    assert ("I10", "A", "usage", 1, 3) in found
    assert not any(k[0] == "I1" and k[1] == "A" for k in found)


def test_a_leak_propagates_through_i1_but_i10_locates_it():
    """3.17's replace_cache leak (E5) in A/B: every level's I1 breaks, no level's I10 does."""
    e = hier()
    e.cache("O", "A/B")
    e.get("O")
    e.lock("O")
    e.alloc("N", "file")
    e.lock("N")
    found = keys(e.replace_cache("O", "N"))
    assert [k[:3] for k in found if k[2] == "usage"] == [
        ("I1", "A", "usage"), ("I1", "A/B", "usage"), ("I1", "root", "usage"),
    ]
    assert not any(k[0] == "I10" for k in found)


def test_a_carried_violation_is_reported_once():
    e = hier()
    e.fault("P", "A")
    a = e.memcgs["A"]
    e.j.w(a.res, "usage", a.res.usage + 1)
    first = keys(e.fault("Q", "A"))
    assert ("I1", "A", "usage", 3, 2) in first
    again = keys(e.fault("R", "A"))  # same discrepancy (+1): carried, not new
    assert not any(k[:3] == ("I1", "A", "usage") for k in again)
    assert e.known[("I1", "A", "usage")] == 1


@pytest.mark.parametrize("field, inv", [("rss", "I5"), ("pgpgin", "I11"), ("css", "I6")])
def test_statistics_events_and_css(field, inv):
    e = Engine("3.17")
    e.create_memcg("A")
    e.fault("P", "A")
    a = e.memcgs["A"]
    e.j.w(a, field, getattr(a, field) - 1)
    found = keys(e.fault("Q", "A"))
    assert any(k[0] == inv and k[1] == "A" for k in found), found


def test_an_uncharge_below_zero_is_the_kernels_warn_every_time():
    e = Engine("v1", swap_account=False)  # v1 sets PCG_MEMSW anyway: memsw underflows
    e.create_memcg("A")
    r = e.fault("P", "A")
    assert ("I3", "P", "flags") in [(v.inv, v.obj, v.field) for v in r.violations]
    assert ("I9", "A", "memsw", -1, ">= 0") in keys(e.unmap("P"))
    e.fault("Q", "A")
    assert ("I9", "A", "memsw", -1, ">= 0") in keys(e.unmap("Q"))
