"""Every precondition the engine enforces, under the models it applies to.

For each refusal (LANGUAGE §3.2-§3.5, the freeing rules of §3.3, and every `raise` site of
engine/mm.py and engine/memcg/*.py) the test builds a minimal state, snapshots it (the
fingerprint, every page/memcg/entry view, the pending reservations and the cost counters),
runs the refused step, checks the exception (type, `origin`, `assertion`, the dump_page()
report) and checks that nothing changed: a refused step is rolled back whole (LANGUAGE §4),
and the cost counters (outside the fingerprint) must not move either.

Kernel error values (-ENOMEM, -EBUSY, -EINVAL, -EAGAIN) are the other side: the kernel's
failure path is kept, and the tests at the end check exactly that state.

The cases refused after a res_counter call (`touches_cost`) check that the rollback restores
the cost counters too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from memcglang.engine import (
    ChargeFailed,
    Deadlock,
    Engine,
    KernelError,
    ScenarioError,
    VmBug,
)

MODELS = ("3.17", "v1")

FREEZE = "__remove_mapping: page_freeze_refs(page, 2) fails"
PUT_ZERO = "put_page_testzero: VM_BUG_ON_PAGE(atomic_read(&page->_count) == 0)"
GET_ZERO = "get_page: VM_BUG_ON_PAGE(atomic_read(&page->_count) <= 0)"
# a freed page used by anything else: the mm contract names the function
FREED_USE = {"get": GET_ZERO, "put": PUT_ZERO, "release": PUT_ZERO, "lock": "lock_page",
             "map": "page_add_rmap", "lru_add": "lru_cache_add",
             "add_to_cache": "add_to_page_cache", "add_to_swap": "add_to_swap",
             "move": "mem_cgroup_move_charge", "isolate": "isolate_lru_page"}
COMMIT_USED = "commit_charge: VM_BUG_ON_PAGE(PageCgroupUsed(pc))"


# ==========================================================================================
# helpers
# ==========================================================================================
def make(model: str, swap_account: bool = True) -> Engine:
    e = Engine(model, swap_account=swap_account)
    assert e.create_memcg("A").outcome == "ok"
    assert e.create_memcg("B").outcome == "ok"
    return e


def play(e: Engine, script) -> None:
    """Run setup steps; each must succeed. ("set_thread", T) switches the thread; a dict as
    the last element of a step holds keyword arguments."""
    for op, *args in script:
        if op == "set_thread":
            e.set_thread(*args)
            continue
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        r = getattr(e, op)(*args, **kwargs)
        assert r.outcome == "ok", (op, args, r.outcome, r.error)


def state(e: Engine) -> dict:
    """Everything a refused step must leave alone, except the cost counters."""
    return {
        "fingerprint": e.fingerprint(),
        "pages": {n: e.page_view(n) for n in e.pages},
        "memcgs": {m: e.memcg_view(m) for m in e.memcgs},
        "entries": {x: e.entry_view(x) for x in e.entries},
        "reservations": sorted(e.reservations),
        "known": sorted(e.known),
        "thread": e.thread,
    }


@dataclass(frozen=True)
class Refusal:
    id: str
    setup: tuple
    op: str
    args: tuple
    exc: type = VmBug
    origin: str | None = "mm"
    assertion: str | None = None
    page: str | None = None  # the page dump_page() shows; None: no page in the report
    reason: str | None = None  # a fragment of the reason
    models: tuple = MODELS
    swap_account: bool = True
    kwargs: dict = field(default_factory=dict)
    touches_cost: bool = False  # refused after a res_counter call: cost must be restored


def refuse(e: Engine, case: Refusal, check_cost: bool = True):
    before = state(e)
    cost = e.cost_view()
    with pytest.raises(case.exc) as info:
        getattr(e, case.op)(*case.args, **case.kwargs)
    err = info.value
    assert type(err) is case.exc
    if case.exc is VmBug:
        assert err.origin == case.origin
        assert err.assertion == case.assertion
        assert err.report.startswith(f"kernel BUG ({case.origin}): {case.assertion}\n")
        if case.page is None:
            assert err.page_dump is None
        else:
            assert err.page_dump is not None
            assert err.page_dump.startswith(f"page:{case.page} ")
    if case.reason is not None:
        assert case.reason in str(err)
    assert state(e) == before
    if check_cost:
        assert e.cost_view() == cost
    return err


def cases_params(cases):
    return [
        pytest.param(model, case, id=f"{model}-{case.id}")
        for case in cases
        for model in case.models
    ]


# ==========================================================================================
# setups
# ==========================================================================================
FREED_P = (("fault", "P", "A"), ("unmap", "P"))
# P charged, unmapped, isolated, locked, in the swap cache for E (E has one swap pte):
SWAPOUT_READY = (
    ("fault", "P", "A"),
    ("lock", "P"),
    ("add_to_swap", "P", "E"),
    ("isolate", "P"),
    ("try_to_unmap", "P"),
)
# F cached, charged, on the LRU, held by the caller and locked; G a new locked file page
REPLACE_READY = (
    ("cache", "F", "A"),
    ("get", "F"),
    ("lock", "F"),
    ("alloc", "G", "file"),
    ("lock", "G"),
)
MIGRATE_READY = (("fault", "P", "A"), ("isolate", "P"), ("alloc", "Q", "anon"))
# P charged, only the swap cache holds it (E has no swap pte), on the LRU, unlocked
SWAPCACHE_ONLY = (
    ("fault", "P", "A"),
    ("lock", "P"),
    ("add_to_swap", "P", "E"),
    ("try_to_unmap", "P"),
    ("unlock", "P"),
    ("free_swap", "E"),
)


# ==========================================================================================
# mm refusals (origin "mm")
# ==========================================================================================
MM_CASES = [
    # -- refcount > 0 (LANGUAGE §3.2: lock/get/map/isolate/put; the helpers of the rest) ----
    *(
        Refusal(f"{op}-freed-page", FREED_P, op, args, assertion=FREED_USE[op], page="P")
        for op, args in (
            ("get", ("P",)),
            ("put", ("P",)),
            ("lock", ("P",)),
            ("map", ("P",)),
            ("lru_add", ("P",)),
            ("add_to_cache", ("P",)),
            ("add_to_swap", ("P", "E")),
            ("release", ("P",)),
            ("move", ("P", "B")),
        )
    ),
    Refusal(
        "release-same-page-twice",
        (("alloc", "P", "anon"),),
        "release",
        ("P", "P"),
        assertion=PUT_ZERO,
        page="P",
    ),
    # -- page lock -------------------------------------------------------------------------
    Refusal(
        "unlock-unlocked",
        (("alloc", "P", "anon"),),
        "unlock",
        ("P",),
        assertion="unlock_page: VM_BUG_ON_PAGE(!PageLocked(page))",
        page="P",
    ),
    Refusal(
        "lock-self-deadlock",
        (("alloc", "P", "anon"), ("lock", "P")),
        "lock",
        ("P",),
        assertion="lock_page: self-deadlock",
        page="P",
    ),
    # -- mappings --------------------------------------------------------------------------
    Refusal(
        "unmap-unmapped",
        (("alloc", "P", "anon"),),
        "unmap",
        ("P",),
        assertion="page_remove_rmap",
        page="P",
    ),
    *(
        Refusal(
            f"map-{kind}-not-in-page-cache",
            (("alloc", "F", kind),),
            "map",
            ("F",),
            assertion="page_add_file_rmap",
            page="F",
        )
        for kind in ("file", "shmem")
    ),
    Refusal(
        "try_to_unmap-file-unlocked",
        (
            ("alloc", "F", "file"),
            ("lock", "F"),
            ("add_to_cache", "F"),
            ("map", "F"),
            ("unlock", "F"),
        ),
        "try_to_unmap",
        ("F",),
        assertion="rmap_walk_file: VM_BUG_ON(!PageLocked(page))",
        page="F",
    ),
    Refusal(
        "try_to_unmap-anon-not-in-swap-cache",
        (("fault", "P", "A"),),
        "try_to_unmap",
        ("P",),
        assertion="try_to_unmap_one: BUG_ON(TTU_ACTION(flags) != TTU_MIGRATION)",
        page="P",
    ),
    # -- LRU -------------------------------------------------------------------------------
    Refusal(
        "isolate-not-on-lru",
        (("alloc", "P", "anon"),),
        "isolate",
        ("P",),
        assertion="isolate_lru_page",
        page="P",
    ),
    Refusal(
        "putback-not-isolated",
        (("fault", "P", "A"),),
        "putback",
        ("P",),
        assertion="putback_lru_page",
        page="P",
    ),
    Refusal(
        "lru_add-on-lru",
        (("fault", "P", "A"),),
        "lru_add",
        ("P",),
        assertion="__pagevec_lru_add_fn: VM_BUG_ON_PAGE(PageLRU(page))",
        page="P",
    ),
    Refusal(
        "lru_add-isolated",
        (("fault", "P", "A"), ("isolate", "P")),
        "lru_add",
        ("P",),
        assertion="__pagevec_lru_add_fn: VM_BUG_ON_PAGE(PageLRU(page))",
        page="P",
    ),
    # -- page cache ------------------------------------------------------------------------
    Refusal(
        "add_to_cache-unlocked",
        (("alloc", "F", "file"),),
        "add_to_cache",
        ("F",),
        assertion="__add_to_page_cache_locked: VM_BUG_ON_PAGE(!PageLocked(page))",
        page="F",
    ),
    Refusal(
        "add_to_cache-anon",
        (("alloc", "P", "anon"), ("lock", "P")),
        "add_to_cache",
        ("P",),
        assertion="add_to_page_cache",
        page="P",
        reason="anon pages have no page cache",
    ),
    Refusal(
        "add_to_cache-already-cached",
        (("alloc", "F", "shmem"), ("lock", "F"), ("add_to_cache", "F")),
        "add_to_cache",
        ("F",),
        assertion="add_to_page_cache",
        page="F",
        reason="already in a cache",
    ),
    Refusal(
        "delete_from_cache-unlocked",
        (("cache", "F", "A"),),
        "delete_from_cache",
        ("F",),
        assertion="delete_from_page_cache: BUG_ON(!PageLocked(page))",
        page="F",
    ),
    Refusal(
        "delete_from_cache-not-cached",
        (("alloc", "F", "file"), ("lock", "F")),
        "delete_from_cache",
        ("F",),
        assertion="delete_from_page_cache",
        page="F",
        reason="not in the page cache",
    ),
    Refusal(
        "delete_from_cache-mapped",
        (("alloc", "F", "file"), ("lock", "F"), ("add_to_cache", "F"), ("map", "F")),
        "delete_from_cache",
        ("F",),
        assertion="__delete_from_page_cache: BUG_ON(page_mapped(page))",
        page="F",
    ),
    # -- swap cache ------------------------------------------------------------------------
    Refusal(
        "add_to_swap-unlocked",
        (("alloc", "P", "anon"),),
        "add_to_swap",
        ("P", "E"),
        assertion="add_to_swap: VM_BUG_ON_PAGE(!PageLocked(page))",
        page="P",
    ),
    Refusal(
        "add_to_swap-file",
        (("alloc", "F", "file"), ("lock", "F")),
        "add_to_swap",
        ("F", "E"),
        assertion="add_to_swap",
        page="F",
        reason="only anon pages",
    ),
    Refusal(
        "add_to_swap-huge",
        (("alloc", "H", "anon", {"huge": True}), ("lock", "H")),
        "add_to_swap",
        ("H", "E"),
        assertion="add_to_swap",
        page="H",
        reason="split the huge page first",
    ),
    Refusal(
        "add_to_swap-already-in-swap-cache",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E")),
        "add_to_swap",
        ("P", "E2"),
        assertion="__add_to_swap_cache: VM_BUG_ON_PAGE(PageSwapCache(page))",
        page="P",
    ),
    Refusal(
        "delete_from_swap_cache-unlocked",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E"), ("unlock", "P")),
        "delete_from_swap_cache",
        ("P",),
        assertion="delete_from_swap_cache: VM_BUG_ON_PAGE(!PageLocked(page))",
        page="P",
    ),
    Refusal(
        "delete_from_swap_cache-not-in-swap-cache",
        (("alloc", "P", "anon"), ("lock", "P")),
        "delete_from_swap_cache",
        ("P",),
        assertion="delete_from_swap_cache",
        page="P",
        reason="not in the swap cache",
    ),
    # -- swapout (LANGUAGE §3.3: locked, isolated, unmapped, swap cache, refcount exactly 2) --
    Refusal(
        "swapout-unlocked",
        (*SWAPOUT_READY, ("unlock", "P")),
        "swapout",
        ("P",),
        assertion="__remove_mapping: BUG_ON(!PageLocked(page))",
        page="P",
    ),
    Refusal(
        "swapout-not-isolated-count-1",
        (("fault", "P", "A"), ("lock", "P"), ("add_to_swap", "P", "E"), ("try_to_unmap", "P")),
        "swapout",
        ("P",),
        assertion=FREEZE,
        page="P",
        reason="count 1",
    ),
    Refusal(
        "swapout-not-isolated-off-lru",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E")),
        "swapout",
        ("P",),
        assertion="shrink_page_list",
        page="P",
        reason="isolated",
    ),
    Refusal(
        "swapout-mapped",
        (("fault", "P", "A"), ("lock", "P"), ("add_to_swap", "P", "E"), ("isolate", "P")),
        "swapout",
        ("P",),
        assertion=FREEZE,
        page="P",
        reason="still mapped",
    ),
    Refusal(
        "swapout-not-in-swap-cache",
        (("fault", "P", "A"), ("lock", "P"), ("isolate", "P"), ("get", "P"), ("unmap", "P")),
        "swapout",
        ("P",),
        assertion="__remove_mapping",
        page="P",
        reason="swap-cache page",
    ),
    Refusal(
        "swapout-refcount-3",
        (*SWAPOUT_READY, ("get", "P")),
        "swapout",
        ("P",),
        assertion=FREEZE,
        page="P",
        reason="count 3",
    ),
    Refusal(
        "swapout-refcount-1",
        (
            ("alloc", "P", "anon"),
            ("lock", "P"),
            ("add_to_swap", "P", "E"),
            ("lru_add", "P"),
            ("isolate", "P"),
            ("put", "P"),
            ("put", "P"),
        ),
        "swapout",
        ("P",),
        assertion=FREEZE,
        page="P",
        reason="count 1",
    ),
    # -- swap entries ----------------------------------------------------------------------
    Refusal(
        "readahead-freed-entry",
        (("fault", "P", "A"), ("reclaim", "P", "E"), ("free_swap", "E")),
        "readahead",
        ("E", "Q"),
        assertion="read_swap_cache_async",
        reason="is free",
    ),
    Refusal(
        "readahead-entry-already-cached",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E")),
        "readahead",
        ("E", "Q"),
        assertion="read_swap_cache_async",
        reason="already has P cached",
    ),
    Refusal(
        "free_swap-no-pte-reference",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E")),
        "free_swap",
        ("E",),
        assertion="swap_free",
    ),
    Refusal(
        "free_swap-freed-entry",
        (("fault", "P", "A"), ("reclaim", "P", "E"), ("free_swap", "E")),
        "free_swap",
        ("E",),
        assertion="swap_free",
    ),
    # -- reservations (LANGUAGE §3.2) ------------------------------------------------------
    Refusal(
        "commit-without-reservation",
        (("alloc", "P", "anon"), ("map", "P")),
        "commit",
        ("P",),
        assertion="commit/cancel without try_charge",
        page="P",
    ),
    Refusal(
        "cancel-without-reservation",
        (("alloc", "P", "anon"),),
        "cancel",
        ("P",),
        assertion="commit/cancel without try_charge",
        page="P",
    ),
    Refusal(
        "commit-of-another-threads-reservation",
        (
            ("alloc", "P", "anon"),
            ("map", "P"),
            ("set_thread", "t1"),
            ("try_charge", "P", "A"),
            ("set_thread", "main"),
        ),
        "commit",
        ("P",),
        assertion="commit/cancel without try_charge",
        page="P",
        reason="main has no pending reservation",
    ),
    Refusal(
        "cancel-of-another-threads-reservation",
        (
            ("alloc", "P", "anon"),
            ("set_thread", "t1"),
            ("try_charge", "P", "A"),
            ("set_thread", "main"),
        ),
        "cancel",
        ("P",),
        assertion="commit/cancel without try_charge",
        page="P",
    ),
    Refusal(
        "second-try_charge",
        (("alloc", "P", "anon"), ("try_charge", "P", "A")),
        "try_charge",
        ("P", "B"),
        assertion="mem_cgroup_try_charge",
        page="P",
        reason="already has a reservation",
    ),
    Refusal(
        "second-try_charge-after-null-reservation",
        (*SWAPCACHE_ONLY, ("lock", "P"), ("try_charge", "P", "A")),
        "try_charge",
        ("P", "A"),
        assertion="mem_cgroup_try_charge",
        page="P",
        reason="already has a reservation",
    ),
    Refusal(
        "charge-with-pending-reservation",
        (("alloc", "P", "anon"), ("try_charge", "P", "A"), ("map", "P")),
        "charge",
        ("P", "A"),
        assertion="mem_cgroup_try_charge",
        page="P",
        reason="already has a reservation",
    ),
    # -- composites ------------------------------------------------------------------------
    Refusal(
        "cow-unmapped",
        (("alloc", "P", "anon"),),
        "cow",
        ("P", "Q", "A"),
        assertion="do_wp_page",
        page="P",
    ),
    Refusal(
        "truncate-not-cached",
        (("alloc", "F", "file"),),
        "truncate",
        ("F",),
        assertion="truncate_inode_page",
        page="F",
    ),
    Refusal(
        "swapin-entry-without-pte",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E"), ("unlock", "P")),
        "swapin",
        ("E", "P"),
        assertion="do_swap_page",
    ),
    Refusal(
        "swapin-freed-entry",
        (("fault", "P", "A"), ("reclaim", "P", "E"), ("free_swap", "E")),
        "swapin",
        ("E", "Q"),
        assertion="do_swap_page",
    ),
    Refusal(
        "reclaim-not-on-lru",
        (("alloc", "P", "anon"),),
        "reclaim",
        ("P", "E"),
        assertion="isolate_lru_page",
        page="P",
    ),
    # -- migrate (LANGUAGE §3.5) -----------------------------------------------------------
    Refusal(
        "migrate-old-not-isolated",
        (("fault", "P", "A"), ("alloc", "Q", "anon")),
        "migrate",
        ("P", "Q"),
        assertion="migrate_pages",
        page="P",
        reason="must be isolated",
    ),
    *(
        Refusal(
            f"migrate-new-not-fresh-{what}",
            (*MIGRATE_READY, *extra),
            "migrate",
            ("P", "Q"),
            assertion="migrate_pages",
            page="Q",
            reason="freshly allocated",
        )
        for what, extra in (
            ("referenced", (("get", "Q"),)),
            ("locked", (("lock", "Q"),)),
            ("on-lru", (("lru_add", "Q"),)),
            ("mapped", (("map", "Q"),)),
            (
                "charged-and-unmapped",
                (("map", "Q"), ("try_charge", "Q", "A"), ("commit", "Q"), ("unmap", "Q")),
            ),
            ("freed", (("put", "Q"),)),
            (
                "in-swap-cache",
                (("lock", "Q"), ("add_to_swap", "Q", "E"), ("unlock", "Q"), ("put", "Q")),
            ),
        )
    ),
    Refusal(
        "migrate-new-other-kind",
        (("fault", "P", "A"), ("isolate", "P"), ("alloc", "Q", "file")),
        "migrate",
        ("P", "Q"),
        assertion="migrate_pages",
        page="Q",
        reason="same kind and size",
    ),
    Refusal(
        "migrate-new-other-size",
        (("fault", "P", "A"), ("isolate", "P"), ("alloc", "Q", "anon", {"huge": True})),
        "migrate",
        ("P", "Q"),
        assertion="migrate_pages",
        page="Q",
        reason="same kind and size",
    ),
    Refusal(
        "migrate-old-locked-by-self",
        (*MIGRATE_READY, ("lock", "P")),
        "migrate",
        ("P", "Q"),
        assertion="lock_page: self-deadlock",
        page="P",
    ),
    # -- replace_cache (LANGUAGE §3.5) -----------------------------------------------------
    Refusal(
        "replace_cache-old-unlocked",
        (*REPLACE_READY, ("unlock", "F")),
        "replace_cache",
        ("F", "G"),
        assertion="replace_page_cache_page: VM_BUG_ON_PAGE(!PageLocked(old))",
        page="F",
    ),
    Refusal(
        "replace_cache-new-unlocked",
        (*REPLACE_READY, ("unlock", "G")),
        "replace_cache",
        ("F", "G"),
        assertion="replace_page_cache_page: VM_BUG_ON_PAGE(!PageLocked(new))",
        page="G",
    ),
    Refusal(
        "replace_cache-old-not-cached",
        (
            ("alloc", "F", "file"),
            ("get", "F"),
            ("lock", "F"),
            ("alloc", "G", "file"),
            ("lock", "G"),
        ),
        "replace_cache",
        ("F", "G"),
        assertion="replace_page_cache_page",
        page="F",
        reason="not in the cache",
    ),
    Refusal(
        "replace_cache-old-not-held",
        (("cache", "F", "A"), ("lock", "F"), ("alloc", "G", "file"), ("lock", "G")),
        "replace_cache",
        ("F", "G"),
        assertion="replace_page_cache_page",
        page="F",
        reason="refcount >= 2",
    ),
    Refusal(
        "replace_cache-new-cached",
        (*REPLACE_READY, ("add_to_cache", "G")),
        "replace_cache",
        ("F", "G"),
        assertion="replace_page_cache_page: VM_BUG_ON_PAGE(new->mapping)",
        page="G",
    ),
    Refusal(
        "replace_cache-other-kind",
        (("cache", "F", "A"), ("get", "F"), ("lock", "F"), ("alloc", "G", "shmem"), ("lock", "G")),
        "replace_cache",
        ("F", "G"),
        assertion="replace_page_cache_page",
        page="G",
        reason="same kind",
    ),
    Refusal(
        "replace_cache-old-mapped",
        (*REPLACE_READY, ("map", "F")),
        "replace_cache",
        ("F", "G"),
        assertion="__delete_from_page_cache: BUG_ON(page_mapped(page))",
        page="F",
    ),
    # -- split -----------------------------------------------------------------------------
    Refusal(
        "split-not-huge",
        (("fault", "P", "A"),),
        "split",
        ("P",),
        assertion="split_huge_page",
        page="P",
        reason="not a huge page",
    ),
    Refusal(
        "split-never-mapped",
        (("alloc", "H", "anon", {"huge": True}),),
        "split",
        ("H",),
        assertion="split_huge_page: BUG_ON(!PageAnon(page))",
        page="H",
    ),
]


@pytest.mark.parametrize(("model", "case"), cases_params(MM_CASES))
def test_mm_refusal_is_rolled_back(model, case):
    e = make(model, case.swap_account)
    play(e, case.setup)
    refuse(e, case, check_cost=True)


# ==========================================================================================
# bad_page: the last reference of a page that is mapped, locked, cached, isolated or has a
# pending reservation (LANGUAGE §3.3), through every freeing path
# ==========================================================================================
def bad(id_, setup, op, args, page, reason, **kw):
    return Refusal(
        f"bad_page-{id_}", setup, op, args, assertion="bad_page", page=page, reason=reason, **kw
    )


BAD_PAGE_CASES = [
    bad("put-mapped", (("fault", "P", "A"),), "put", ("P",), "P", "still mapped (1 ptes)"),
    bad("put-locked", (("alloc", "P", "anon"), ("lock", "P")), "put", ("P",), "P", "PG_locked"),
    bad(
        "put-in-page-cache",
        (
            ("alloc", "F", "file"),
            ("lock", "F"),
            ("add_to_cache", "F"),
            ("unlock", "F"),
            ("put", "F"),
        ),
        "put",
        ("F",),
        "F",
        "in the page cache or swap cache",
    ),
    bad(
        "put-in-swap-cache",
        (
            ("alloc", "P", "anon"),
            ("lock", "P"),
            ("add_to_swap", "P", "E"),
            ("unlock", "P"),
            ("put", "P"),
        ),
        "put",
        ("P",),
        "P",
        "in the page cache or swap cache",
    ),
    bad(
        "put-isolated",
        (("fault", "P", "A"), ("isolate", "P"), ("unmap", "P")),
        "put",
        ("P",),
        "P",
        "isolated",
    ),
    bad(
        "put-own-reservation",
        (("alloc", "P", "anon"), ("try_charge", "P", "A")),
        "put",
        ("P",),
        "P",
        "reservation of main",
    ),
    bad(
        "put-other-threads-reservation",
        (
            ("alloc", "P", "anon"),
            ("set_thread", "t1"),
            ("try_charge", "P", "A"),
            ("set_thread", "main"),
        ),
        "put",
        ("P",),
        "P",
        "reservation of t1",
    ),
    bad("unmap-locked", (("fault", "P", "A"), ("lock", "P")), "unmap", ("P",), "P", "PG_locked"),
    bad(
        "release-locked",
        (("alloc", "P", "anon"), ("lock", "P")),
        "release",
        ("P",),
        "P",
        "PG_locked",
    ),
    bad(
        "release-second-page-locked",
        (("fault", "X", "A"), ("get", "X"), ("unmap", "X"), ("alloc", "P", "anon"), ("lock", "P")),
        "release",
        ("X", "P"),
        "P",
        "PG_locked",
    ),
    bad(
        "delete_from_cache-last-reference",
        (("alloc", "F", "file"), ("lock", "F"), ("add_to_cache", "F"), ("put", "F")),
        "delete_from_cache",
        ("F",),
        "F",
        "PG_locked",
    ),
    bad(
        "delete_from_swap_cache-last-reference",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E"), ("put", "P")),
        "delete_from_swap_cache",
        ("P",),
        "P",
        "PG_locked",
    ),
    bad(
        "zap_end-locked",
        (("fault", "P", "A"), ("lock", "P"), ("zap_begin",), ("unmap", "P")),
        "zap_end",
        (),
        "P",
        "PG_locked",
    ),
    bad(
        "truncate-reservation",
        (("cache", "F", "A"), ("try_charge", "F", "A")),
        "truncate",
        ("F",),
        "F",
        "reservation of main",
    ),
    bad(
        "migrate-old-with-reservation",
        (("fault", "P", "A"), ("try_charge", "P", "B"), ("isolate", "P"), ("alloc", "Q", "anon")),
        "migrate",
        ("P", "Q"),
        "P",
        "reservation of main",
    ),
    bad(
        "migrate-new-with-reservation",
        (
            ("fault", "P", "A"),
            ("isolate", "P"),
            ("unmap", "P"),
            ("alloc", "Q", "anon"),
            ("try_charge", "Q", "B"),
        ),
        "migrate",
        ("P", "Q"),
        "Q",
        "reservation of main",
    ),
    bad(
        "swapout-null-reservation",
        (*SWAPCACHE_ONLY, ("lock", "P"), ("try_charge", "P", "A"), ("isolate", "P")),
        "swapout",
        ("P",),
        "P",
        "reservation of main",
        touches_cost=True,
    ),
    bad(
        "reclaim-null-reservation",
        (*SWAPCACHE_ONLY, ("lock", "P"), ("try_charge", "P", "A"), ("unlock", "P")),
        "reclaim",
        ("P",),
        "P",
        "reservation of main",
        touches_cost=True,
    ),
    bad(
        "cow-of-locked-sole-mapping",
        (("fault", "P", "A"), ("lock", "P")),
        "cow",
        ("P", "Q", "A"),
        "P",
        "PG_locked",
        touches_cost=True,
    ),
    bad(
        "release-huge-then-locked",
        (
            ("fault", "H", "A", {"huge": True}),
            ("get", "H"),
            ("unmap", "H"),
            ("alloc", "P", "anon"),
            ("lock", "P"),
        ),
        "release",
        ("H", "P"),
        "P",
        "PG_locked",
        touches_cost=True,
    ),
    bad(
        "v1-zap_end-flush-then-locked",
        (
            ("fault", "X", "A"),
            ("get", "X"),
            ("unmap", "X"),
            ("fault", "P", "A"),
            ("lock", "P"),
            ("zap_begin",),
            ("put", "X"),
            ("unmap", "P"),
        ),
        "zap_end",
        (),
        "P",
        "PG_locked",
        models=("v1",),
        touches_cost=True,
    ),
]


@pytest.mark.parametrize(("model", "case"), cases_params(BAD_PAGE_CASES))
def test_bad_page_is_rolled_back(model, case):
    e = make(model, case.swap_account)
    play(e, case.setup)
    refuse(e, case, check_cost=True)


# ==========================================================================================
# memcg refusals (origin "memcg")
# ==========================================================================================
MEMCG_CASES = [
    Refusal(
        "swapout-on-lru",
        (("fault", "P", "A"), ("lock", "P"), ("add_to_swap", "P", "E"), ("try_to_unmap", "P"),
         ("get", "P")),
        "swapout",
        ("P",),
        origin="memcg",
        assertion="mem_cgroup_swapout: VM_BUG_ON_PAGE(PageLRU(page))",
        page="P",
    ),
    Refusal(
        "try_charge-swapcache-unlocked",
        (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E"), ("unlock", "P")),
        "try_charge",
        ("P", "A"),
        origin="memcg",
        assertion="try_get_mem_cgroup_from_page: VM_BUG_ON_PAGE(!PageLocked(page))",
        page="P",
    ),
    Refusal(
        "charge-swapcache-unlocked",
        (
            ("alloc", "P", "anon"),
            ("lock", "P"),
            ("add_to_swap", "P", "E"),
            ("unlock", "P"),
            ("map", "P"),
        ),
        "charge",
        ("P", "A"),
        origin="memcg",
        assertion="try_get_mem_cgroup_from_page: VM_BUG_ON_PAGE(!PageLocked(page))",
        page="P",
    ),
    Refusal(
        "commit-without-mapping",
        (("alloc", "P", "anon"), ("try_charge", "P", "A")),
        "commit",
        ("P",),
        origin="memcg",
        assertion="mem_cgroup_commit_charge: VM_BUG_ON_PAGE(!page->mapping)",
        page="P",
    ),
    Refusal(
        "commit-on-lru-without-lrucare",
        (("alloc", "P", "anon"), ("lru_add", "P"), ("map", "P"), ("try_charge", "P", "A")),
        "commit",
        ("P",),
        origin="memcg",
        assertion="mem_cgroup_commit_charge: VM_BUG_ON_PAGE(PageLRU(page) && !lrucare)",
        page="P",
    ),
    Refusal(
        "commit-null-reservation-on-lru-without-lrucare",
        (*SWAPCACHE_ONLY, ("lock", "P"), ("try_charge", "P", "A")),
        "commit",
        ("P",),
        origin="memcg",
        assertion="mem_cgroup_commit_charge: VM_BUG_ON_PAGE(PageLRU(page) && !lrucare)",
        page="P",
    ),
    Refusal(
        "commit-already-charged",
        (
            ("alloc", "P", "anon"),
            ("try_charge", "P", "A"),
            ("map", "P"),
            ("commit", "P"),
            ("try_charge", "P", "A"),
        ),
        "commit",
        ("P",),
        origin="memcg",
        assertion=COMMIT_USED,
        page="P",
    ),
    Refusal(
        "commit-lrucare-already-charged",
        (("fault", "P", "A"), ("try_charge", "P", "B")),
        "commit",
        ("P",),
        origin="memcg",
        assertion=COMMIT_USED,
        page="P",
        kwargs={"lrucare": True},
    ),
    Refusal(
        "split-never-charged",
        (("alloc", "H", "anon", {"huge": True}), ("map", "H")),
        "split",
        ("H",),
        origin="memcg",
        assertion="mem_cgroup_split_huge_fixup: NULL pc->mem_cgroup",
        page="H",
    ),
    Refusal(
        "move-page-to-its-own-memcg",
        (("fault", "P", "A"),),
        "move",
        ("P", "A"),
        origin="memcg",
        assertion="mem_cgroup_can_attach: VM_BUG_ON(from == memcg)",
        page="P",
    ),
    Refusal(
        "move-entry-to-its-own-memcg",
        (("fault", "P", "A"), ("reclaim", "P", "E")),
        "move",
        ("E", "A"),
        origin="memcg",
        assertion="mem_cgroup_can_attach: VM_BUG_ON(from == memcg)",
    ),
    # -- v1 only: mem_cgroup_migrate as posted ---------------------------------------------
    Refusal(
        "v1-replace_cache-old-on-lru",
        REPLACE_READY,
        "replace_cache",
        ("F", "G"),
        origin="memcg",
        assertion="mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU(oldpage))",
        page="F",
        models=("v1",),
    ),
    Refusal(
        "v1-replace_cache-new-on-lru",
        (
            ("alloc", "F", "file"),
            ("lock", "F"),
            ("add_to_cache", "F"),
            ("try_charge", "F", "A"),
            ("commit", "F"),
            ("alloc", "G", "file"),
            ("lru_add", "G"),
            ("lock", "G"),
        ),
        "replace_cache",
        ("F", "G"),
        origin="memcg",
        assertion="mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU(newpage))",
        page="G",
        models=("v1",),
    ),
    Refusal(
        "v1-replace_cache-new-already-charged",
        (
            ("alloc", "F", "file"),
            ("lock", "F"),
            ("add_to_cache", "F"),
            ("try_charge", "F", "A"),
            ("commit", "F"),
            ("alloc", "G", "file"),
            ("lock", "G"),
            ("add_to_cache", "G"),
            ("try_charge", "G", "B"),
            ("commit", "G"),
            ("delete_from_cache", "G"),
        ),
        "replace_cache",
        ("F", "G"),
        origin="memcg",
        assertion=COMMIT_USED,
        page="G",
        models=("v1",),
    ),
    Refusal(
        "v1-replace_cache-old-already-replaced",
        (
            ("alloc", "F", "file"),
            ("lock", "F"),
            ("add_to_cache", "F"),
            ("try_charge", "F", "A"),
            ("commit", "F"),
            ("alloc", "G", "file"),
            ("lock", "G"),
            ("replace_cache", "F", "G"),
            ("add_to_cache", "F"),
            ("alloc", "H", "file"),
            ("lock", "H"),
        ),
        "replace_cache",
        ("F", "H"),
        origin="memcg",
        assertion="mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEM))",
        page="F",
        models=("v1",),
    ),
    # v1's mem_cgroup_swapout has no readahead check (SEMANTICS §2.6): an uncharged
    # readahead page records its stale pc->mem_cgroup over the entry's live record
    Refusal(
        "v1-swapout-readahead-page-over-record",
        (
            ("fault", "P", "A"),
            ("reclaim", "P", "E"),
            ("readahead", "E", "Q"),
            ("lock", "Q"),
            ("isolate", "Q"),
        ),
        "swapout",
        ("Q",),
        origin="memcg",
        assertion="mem_cgroup_swapout: VM_BUG_ON_PAGE(oldid)",
        page="Q",
        models=("v1",),
    ),
]


@pytest.mark.parametrize(("model", "case"), cases_params(MEMCG_CASES))
def test_memcg_refusal_is_rolled_back(model, case):
    e = make(model, case.swap_account)
    play(e, case.setup)
    refuse(e, case, check_cost=True)


def test_try_charge_swapcache_unlocked_is_fine_without_swap_accounting():
    """The lock is only needed to look the swap record up (do_swap_account)."""
    for model in MODELS:
        e = make(model, swap_account=False)
        play(e, (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E"), ("unlock", "P")))
        assert e.try_charge("P", "A").outcome == "ok"
        assert ("main", "P") in e.reservations


def test_commit_on_lru_with_lrucare_is_fine():
    for model in MODELS:
        e = make(model)
        play(e, (("alloc", "P", "anon"), ("lru_add", "P"), ("map", "P"), ("try_charge", "P", "A")))
        assert e.commit("P", lrucare=True).outcome == "ok"
        v = e.page_view("P")
        assert (v["flags"], v["memcg"], v["page"]) == ("USED|MEM|MEMSW", "A", "lru")


V1_MIGRATE_CASES = {c.id: c for c in MEMCG_CASES if c.models == ("v1",)}


@pytest.mark.parametrize(
    ("case_id", "expect"),
    [
        # page -> (pc flags, pc memcg) after the replacement under 3.17
        # old page on the LRU: the lrucare dance switches it to root first (SEMANTICS E5)
        (
            "v1-replace_cache-old-on-lru",
            {"G": ("USED|MEM|MEMSW", "root"), "F": ("none", "root")},
        ),
        ("v1-replace_cache-new-on-lru", {"G": ("USED|MEM|MEMSW", "A"), "F": ("none", "A")}),
        # the "new page already charged" bail-out: each keeps its own charge
        (
            "v1-replace_cache-new-already-charged",
            {"G": ("USED|MEM|MEMSW", "B"), "F": ("USED|MEM|MEMSW", "A")},
        ),
        # the old page lost PCG_USED at the first replacement: nothing to transfer
        ("v1-replace_cache-old-already-replaced", {"H": ("none", "none"), "F": ("none", "A")}),
    ],
)
def test_v1_only_migrate_refusals_pass_under_317(case_id, expect):
    c = V1_MIGRATE_CASES[case_id]
    e = make("3.17")
    play(e, c.setup)
    assert e.replace_cache(*c.args).outcome == "ok"
    for name, (flags, memcg) in expect.items():
        v = e.page_view(name)
        assert (v["flags"], v["memcg"]) == (flags, memcg), name


def test_317_swapout_of_readahead_page_is_fine():
    e = make("3.17")
    play(
        e,
        (
            ("fault", "P", "A"),
            ("reclaim", "P", "E"),
            ("readahead", "E", "Q"),
            ("lock", "Q"),
            ("isolate", "Q"),
        ),
    )
    assert e.swapout("Q").outcome == "ok"
    assert e.page_view("Q")["freed"]
    assert e.entry_view("E") == {"memcg": "A", "count": 1, "page": "none", "freed": False}


# ==========================================================================================
# cost counters on refused steps (engine bug: Cost is not journaled)
# ==========================================================================================
COST_CASES = [c for c in MM_CASES + BAD_PAGE_CASES + MEMCG_CASES if c.touches_cost] + [
    Refusal(
        "charge-without-mapping",
        (("alloc", "P", "anon"),),
        "charge",
        ("P", "A"),
        origin="memcg",
        assertion="mem_cgroup_commit_charge: VM_BUG_ON_PAGE(!page->mapping)",
        page="P",
        touches_cost=True,
    ),
    Refusal(
        "charge-on-lru-without-lrucare",
        (("alloc", "P", "anon"), ("lru_add", "P"), ("map", "P")),
        "charge",
        ("P", "A"),
        origin="memcg",
        assertion="mem_cgroup_commit_charge: VM_BUG_ON_PAGE(PageLRU(page) && !lrucare)",
        page="P",
        touches_cost=True,
    ),
    Refusal(
        "charge-already-charged",
        (("alloc", "P", "anon"), ("map", "P"), ("charge", "P", "A")),
        "charge",
        ("P", "B"),
        origin="memcg",
        assertion=COMMIT_USED,
        page="P",
        touches_cost=True,
    ),
]


@pytest.mark.parametrize(
    ("model", "case"), cases_params([c for c in COST_CASES if c.id.startswith("charge-")])
)
def test_refused_charge_is_rolled_back(model, case):
    """`charge` = try_charge + commit in one step: the state is rolled back, cost included."""
    e = make(model, case.swap_account)
    play(e, case.setup)
    refuse(e, case, check_cost=True)


@pytest.mark.parametrize(("model", "case"), cases_params(COST_CASES))
def test_refused_step_leaves_cost_unchanged(model, case):
    e = make(model, case.swap_account)
    play(e, case.setup)
    refuse(e, case, check_cost=True)


# ==========================================================================================
# isolate of a freed page: the kernel checks the count first
# ==========================================================================================
@pytest.mark.parametrize("model", MODELS)
def test_isolate_freed_page_names_the_count_check(model):
    e = make(model)
    play(e, FREED_P)
    refuse(e, Refusal("isolate-freed", FREED_P, "isolate", ("P",),
                      assertion=FREED_USE["isolate"], page="P"))


# ==========================================================================================
# scenario errors: names, setup, unsupported paths, threads, deadlocks
# ==========================================================================================
SCENARIO_CASES = [
    *(
        Refusal(f"unknown-{what}", (), op, args, exc=ScenarioError, reason=reason)
        for what, op, args, reason in (
            ("page", "put", ("X",), "no page named X"),
            ("memcg", "fault", ("P", "Z"), "no memcg named Z"),
            ("memcg-parent", "create_memcg", ("Z/C",), "no memcg named Z"),
            ("entry", "free_swap", ("E",), "no swap entry named E"),
        )
    ),
    *(
        Refusal(
            f"reused-name-{what}",
            (
                ("alloc", "P", "anon"),
                ("lock", "P"),
                ("add_to_swap", "P", "E"),
                ("alloc", "R", "anon"),
                ("lock", "R"),
                ("fault", "X", "A"),
                ("reclaim", "X", "S"),
            ),
            op,
            args,
            exc=ScenarioError,
            reason=f"{name} is already bound",
        )
        for what, op, args, name in (
            ("alloc-page", "alloc", ("P", "file"), "P"),
            ("alloc-entry", "alloc", ("E", "file"), "E"),
            ("alloc-memcg", "alloc", ("A", "anon"), "A"),
            ("fault", "fault", ("P", "A"), "P"),
            ("cache", "cache", ("E", "A"), "E"),
            ("memcg", "create_memcg", ("P",), "P"),
            ("memcg-twice", "create_memcg", ("A",), "A"),
            ("entry-as-memcg", "add_to_swap", ("R", "A"), "A"),
            ("entry-as-page", "add_to_swap", ("R", "X"), "X"),
            ("entry-as-entry", "add_to_swap", ("R", "E"), "E"),
            ("readahead-as-memcg", "readahead", ("S", "B"), "B"),
            ("readahead-as-page", "readahead", ("S", "R"), "R"),
            ("swapin-readahead", "swapin", ("S", "P"), "P"),
        )
    ),
    Refusal(
        "reused-name-cow",
        (("fault", "P", "A"), ("fault", "Q", "A")),
        "cow",
        ("P", "Q", "A"),
        exc=ScenarioError,
        reason="Q is already bound",
    ),
    Refusal(
        "reused-name-freed-page",
        FREED_P,
        "alloc",
        ("P", "anon"),
        exc=ScenarioError,
        reason="P is already bound",
    ),
    Refusal(
        "alloc-unknown-kind",
        (),
        "alloc",
        ("P", "slab"),
        exc=ScenarioError,
        reason="unknown page kind",
    ),
    Refusal(
        "alloc-huge-file",
        (),
        "alloc",
        ("P", "file"),
        exc=ScenarioError,
        reason="anon only",
        kwargs={"huge": True},
    ),
    Refusal(
        "memcg-root-not-first",
        (),
        "create_memcg",
        ("root",),
        exc=ScenarioError,
        reason="must be the first",
        kwargs={"hierarchy": False},
    ),
    Refusal(
        "set-limits-on-root",
        (),
        "set_limits",
        ("root",),
        exc=ScenarioError,
        reason="cannot be set on root",
        kwargs={"limit": 4},
    ),
    Refusal(
        "set-memsw-without-swap-accounting",
        (),
        "set_limits",
        ("A",),
        exc=ScenarioError,
        reason="needs swap accounting",
        swap_account=False,
        kwargs={"limit": 4, "memsw_limit": 8},
    ),
    Refusal(
        "create-memsw-without-swap-accounting",
        (),
        "create_memcg",
        ("C",),
        exc=ScenarioError,
        reason="needs swap accounting",
        swap_account=False,
        kwargs={"memsw_limit": 8},
    ),
    Refusal(
        "zap-nested", (("zap_begin",),), "zap_begin", (), exc=ScenarioError, reason="do not nest"
    ),
    Refusal(
        "zap_end-without-zap", (), "zap_end", (), exc=ScenarioError, reason="no zap block is open"
    ),
    Refusal(
        "cow-huge",
        (("fault", "H", "A", {"huge": True}),),
        "cow",
        ("H", "Q", "A"),
        exc=ScenarioError,
        reason="split it",
    ),
    Refusal(
        "migrate-huge",
        (
            ("fault", "H", "A", {"huge": True}),
            ("isolate", "H"),
            ("alloc", "Q", "anon", {"huge": True}),
        ),
        "migrate",
        ("H", "Q"),
        exc=ScenarioError,
        reason="split it",
    ),
    Refusal(
        "reclaim-shmem",
        (
            ("alloc", "S", "shmem"),
            ("lock", "S"),
            ("add_to_cache", "S"),
            ("lru_add", "S"),
            ("unlock", "S"),
        ),
        "reclaim",
        ("S",),
        exc=ScenarioError,
        reason="shmem",
    ),
    Refusal(
        "reclaim-huge",
        (("fault", "H", "A", {"huge": True}),),
        "reclaim",
        ("H", "E"),
        exc=ScenarioError,
        reason="split it first",
    ),
    Refusal(
        "reclaim-anon-without-entry",
        (("fault", "P", "A"),),
        "reclaim",
        ("P",),
        exc=ScenarioError,
        reason="needs `as ENTRY`",
    ),
    Refusal(
        "reclaim-file-with-entry",
        (("cache", "F", "A"),),
        "reclaim",
        ("F", "E"),
        exc=ScenarioError,
        reason="gets no new swap entry",
    ),
    Refusal(
        "reclaim-swapcache-with-entry",
        SWAPCACHE_ONLY,
        "reclaim",
        ("P", "E2"),
        exc=ScenarioError,
        reason="gets no new swap entry",
    ),
    Refusal(
        "swapin-wrong-page-name",
        (("fault", "P", "A"), ("reclaim", "P", "E"), ("readahead", "E", "Q")),
        "swapin",
        ("E", "R"),
        exc=ScenarioError,
        reason="swap-cache page is Q, not R",
    ),
    Refusal(
        "move-freed-entry",
        (("fault", "P", "A"), ("reclaim", "P", "E"), ("free_swap", "E")),
        "move",
        ("E", "B"),
        exc=ScenarioError,
        reason="is free",
    ),
]


@pytest.mark.parametrize(("model", "case"), cases_params(SCENARIO_CASES))
def test_scenario_error_is_rolled_back(model, case):
    e = make(model, case.swap_account)
    play(e, case.setup)
    refuse(e, case)


@pytest.mark.parametrize("model", MODELS)
def test_memcg_root_hierarchy_off_is_accepted_as_first_memcg(model):
    e = Engine(model)
    assert e.create_memcg("root", hierarchy=False).outcome == "ok"
    with pytest.raises(ScenarioError, match="limits cannot be set on root"):
        e.create_memcg("root", limit=4)


# -- threads -------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_lock_held_by_another_thread_is_a_deadlock(model):
    e = make(model)
    play(e, (("set_thread", "t1"), ("alloc", "P", "anon"), ("lock", "P"), ("set_thread", "main")))
    err = refuse(e, Refusal("deadlock", (), "lock", ("P",), exc=Deadlock))
    assert isinstance(err, ScenarioError)
    assert (err.page, err.holder, err.thread) == ("P", "t1", "main")
    assert e.page_view("P")["page"] == "locked"


@pytest.mark.parametrize("model", MODELS)
def test_deadlock_inside_truncate_rolls_back_the_uncharge_window(model):
    """truncate opens v1's uncharge window and takes the lookup reference before lock_page."""
    e = make(model)
    play(e, (("cache", "F", "A"), ("set_thread", "t1"), ("lock", "F"), ("set_thread", "main")))
    refuse(e, Refusal("truncate-deadlock", (), "truncate", ("F",), exc=Deadlock))
    assert e.page_view("F")["refcount"] == 1
    e.end_thread("main")  # no window left open


@pytest.mark.parametrize("model", MODELS)
def test_deadlock_inside_migrate(model):
    e = make(model)
    play(e, (*MIGRATE_READY, ("set_thread", "t1"), ("lock", "P"), ("set_thread", "main")))
    err = refuse(e, Refusal("migrate-deadlock", (), "migrate", ("P", "Q"), exc=Deadlock))
    assert (err.page, err.holder) == ("P", "t1")


@pytest.mark.parametrize("model", MODELS)
def test_deadlock_inside_swapin(model):
    e = make(model)
    play(
        e,
        (
            ("fault", "P", "A"),
            ("reclaim", "P", "E"),
            ("readahead", "E", "Q"),
            ("set_thread", "t1"),
            ("lock", "Q"),
            ("set_thread", "main"),
        ),
    )
    err = refuse(e, Refusal("swapin-deadlock", (), "swapin", ("E", "Q"), exc=Deadlock))
    assert (err.page, err.holder, err.thread) == ("Q", "t1", "main")


END_THREAD = [
    ("lock", (("alloc", "P", "anon"), ("lock", "P")), "holds the lock of P", MODELS),
    (
        "reservation",
        (("alloc", "P", "anon"), ("try_charge", "P", "A")),
        "has a pending reservation for P",
        MODELS,
    ),
    (
        "null-reservation",
        (*SWAPCACHE_ONLY, ("lock", "P"), ("try_charge", "P", "A"), ("unlock", "P")),
        "has a pending reservation for P",
        MODELS,
    ),
    ("zap", (("zap_begin",),), "has a zap block open", MODELS),
    ("window", (("batch_begin",),), "has an uncharge window open", ("v1",)),
]


@pytest.mark.parametrize(
    ("model", "setup", "problem"),
    [
        pytest.param(m, setup, problem, id=f"{m}-{name}")
        for name, setup, problem, models in END_THREAD
        for m in models
    ],
)
def test_end_thread_with_leftovers_is_a_scenario_error(model, setup, problem):
    e = make(model)
    play(e, (("set_thread", "t1"), *setup))
    before, cost = state(e), e.cost_view()
    with pytest.raises(ScenarioError) as info:
        e.end_thread()
    assert type(info.value) is ScenarioError
    assert str(info.value).startswith("t1 ends but ")
    assert problem in str(info.value)
    with pytest.raises(ScenarioError, match=problem):
        e.end_thread("t1")
    e.end_thread("main")  # the other thread is clean
    assert state(e) == before and e.cost_view() == cost


def test_317_batch_block_opens_no_window():
    e = make("3.17")
    play(e, (("batch_begin",),))
    e.end_thread()


# ==========================================================================================
# kernel error values: the failure path is kept (LANGUAGE §4)
# ==========================================================================================
def kernel_error(e: Engine, op: str, *args, errno: str, **kwargs):
    fp = e.fingerprint()
    r = getattr(e, op)(*args, **kwargs)
    assert r.outcome == "error"
    assert isinstance(r.error, KernelError)
    assert r.error.errno == errno
    return r, fp


@pytest.mark.parametrize("model", MODELS)
def test_fault_enomem_keeps_failcnt_and_frees_the_page(model):
    e = make(model)
    play(e, (("set_limits", "A", {"limit": 1}), ("fault", "P1", "A")))
    r, fp = kernel_error(e, "fault", "P2", "A", errno="ENOMEM")
    err = r.error
    assert isinstance(err, ChargeFailed)
    assert (err.counter_kind, err.memcg, err.usage, err.limit, err.attempts) == (
        "res",
        "A",
        1,
        1,
        6,
    )
    a = e.memcg_view("A")
    assert (a["usage"], a["memsw"], a["max_usage"], a["failcnt"], a["memsw_failcnt"]) == (
        1,
        1,
        1,
        6,
        0,
    )
    assert (a["rss"], a["pgpgin"], a["pgpgout"]) == (1, 1, 0)
    p2 = e.page_view("P2")
    assert p2["freed"] and p2["refcount"] == 0 and p2["mapcount"] == 0
    assert (p2["flags"], p2["page"]) == ("none", "none")
    assert e.fingerprint() != fp
    assert not e.reservations
    assert r.violations == []


@pytest.mark.parametrize(("model", "failcnt"), [("3.17", 1), ("v1", 6)])
def test_huge_fault_enomem_failcnt(model, failcnt):
    e = make(model)
    play(e, (("set_limits", "A", {"limit": 100}),))
    r, _ = kernel_error(e, "fault", "H", "A", errno="ENOMEM", huge=True)
    assert r.error.attempts == failcnt
    a = e.memcg_view("A")
    assert (a["usage"], a["failcnt"], a["max_usage"]) == (0, failcnt, 0)
    assert e.page_view("H")["freed"]


@pytest.mark.parametrize("model", MODELS)
def test_memsw_enomem_names_the_memsw_counter(model):
    e = make(model)
    play(
        e,
        (
            ("set_limits", "A", {"limit": 1, "memsw_limit": 1}),
            ("fault", "P1", "A"),
            ("reclaim", "P1", "E"),
        ),
    )
    r, _ = kernel_error(e, "fault", "P2", "A", errno="ENOMEM")
    assert (r.error.counter_kind, r.error.memcg, r.error.usage, r.error.limit) == (
        "memsw",
        "A",
        1,
        1,
    )
    a = e.memcg_view("A")
    assert (a["usage"], a["memsw"], a["failcnt"], a["memsw_failcnt"], a["swap"]) == (
        0,
        1,
        0,
        6,
        1,
    )
    assert e.page_view("P2")["freed"]
    assert e.entry_view("E")["memcg"] == "A"


@pytest.mark.parametrize("model", MODELS)
def test_try_charge_enomem_reserves_nothing(model):
    e = make(model)
    play(e, (("set_limits", "A", {"limit": 0}), ("alloc", "P", "anon")))
    kernel_error(e, "try_charge", "P", "A", errno="ENOMEM")
    assert not e.reservations
    assert e.memcg_view("A")["failcnt"] == 6
    assert e.put("P").outcome == "ok"  # no reservation pins it


@pytest.mark.parametrize("model", MODELS)
def test_cache_enomem_unlocks_and_frees(model):
    e = make(model)
    play(e, (("set_limits", "A", {"limit": 0}),))
    kernel_error(e, "cache", "F", "A", errno="ENOMEM")
    f = e.page_view("F")
    assert f["freed"] and (f["page"], f["refcount"], f["flags"]) == ("none", 0, "none")
    assert e.memcg_view("A")["failcnt"] == 6
    e.end_thread()


@pytest.mark.parametrize("model", MODELS)
def test_cow_enomem_frees_the_new_page_and_keeps_the_old(model):
    e = make(model)
    play(e, (("fault", "P", "A"), ("set_limits", "B", {"limit": 0})))
    before = e.page_view("P")
    kernel_error(e, "cow", "P", "Q", "B", errno="ENOMEM")
    assert e.page_view("P") == before
    assert e.page_view("Q")["freed"]
    assert e.memcg_view("B")["failcnt"] == 6
    assert e.memcg_view("A")["usage"] == 1


@pytest.mark.parametrize("model", MODELS)
def test_swapin_enomem_unlocks_and_leaves_the_page_in_swap_cache(model):
    e = make(model)
    play(e, (("fault", "P", "A"), ("reclaim", "P", "E"), ("set_limits", "A", {"limit": 0})))
    kernel_error(e, "swapin", "E", "Q", "B", errno="ENOMEM")
    q = e.page_view("Q")
    assert (q["page"], q["refcount"], q["mapcount"], q["flags"], q["entry"]) == (
        "lru|swapcache",
        1,
        0,
        "none",
        "E",
    )
    assert e.entry_view("E") == {"memcg": "A", "count": 1, "page": "Q", "freed": False}
    assert e.memcg_view("A")["failcnt"] == 6  # charged to the record's memcg, not B
    assert e.memcg_view("B")["failcnt"] == 0
    e.end_thread()


@pytest.mark.parametrize("model", MODELS)
def test_set_limits_below_usage_is_ebusy(model):
    e = make(model)
    play(e, (("fault", "P", "A"), ("fault", "P2", "A")))
    r, fp = kernel_error(e, "set_limits", "A", errno="EBUSY", limit=1)
    assert "res usage 2 > new limit 1" in r.error.message
    assert e.memcg_view("A")["limit"] == "max"
    assert e.fingerprint() == fp


@pytest.mark.parametrize("model", MODELS)
def test_set_memsw_limit_below_memsw_usage_is_ebusy(model):
    e = make(model)
    play(
        e,
        (
            ("set_limits", "A", {"limit": 1, "memsw_limit": 2}),
            ("fault", "P1", "A"),
            ("reclaim", "P1", "E"),
            ("fault", "P2", "A"),
        ),
    )
    r, fp = kernel_error(e, "set_limits", "A", errno="EBUSY", limit=1, memsw_limit=1)
    assert "memsw usage 2 > new limit 1" in r.error.message
    a = e.memcg_view("A")
    assert (a["limit"], a["memsw_limit"]) == (1, 2)
    assert e.fingerprint() == fp


@pytest.mark.parametrize(
    ("limits", "preset", "message"),
    [
        ({"limit": 10, "memsw_limit": 5}, None, "limit 10 > memsw_limit 5"),
        ({"memsw_limit": 5}, None, "limit max > memsw_limit 5"),
        ({"memsw_limit": 5}, {"limit": 8, "memsw_limit": 16}, "limit 8 > memsw_limit 5"),
        ({"limit": 20}, {"limit": 8, "memsw_limit": 16}, "limit 20 > memsw_limit 16"),
        # -EINVAL is checked before -EBUSY (usage is 2)
        ({"limit": 1, "memsw_limit": 0}, None, "limit 1 > memsw_limit 0"),
    ],
)
@pytest.mark.parametrize("model", MODELS)
def test_limit_above_memsw_limit_is_einval(model, limits, preset, message):
    e = make(model)
    if preset:
        play(e, (("set_limits", "A", preset),))
    play(e, (("fault", "P", "A"), ("fault", "P2", "A")))
    before = e.memcg_view("A")
    r, fp = kernel_error(e, "set_limits", "A", errno="EINVAL", **limits)
    assert message in r.error.message
    assert e.memcg_view("A") == before
    assert e.fingerprint() == fp


@pytest.mark.parametrize("model", MODELS)
def test_memcg_without_hierarchy_under_hierarchical_parent_is_einval(model):
    e = make(model)
    r, fp = kernel_error(e, "create_memcg", "A/C", errno="EINVAL", hierarchy=False)
    assert "C" not in e.memcgs and "A/C" not in e.memcgs
    assert e.fingerprint() == fp


@pytest.mark.parametrize("model", MODELS)
def test_move_precharge_enomem_moves_nothing(model):
    e = make(model)
    play(e, (("fault", "P", "A"), ("set_limits", "B", {"limit": 0})))
    before = e.page_view("P")
    r, _ = kernel_error(e, "move", "P", "B", errno="ENOMEM")
    assert isinstance(r.error, ChargeFailed)
    assert e.page_view("P") == before
    a, b = e.memcg_view("A"), e.memcg_view("B")
    assert (a["usage"], a["rss"]) == (1, 1)
    # 3.17: one bulk attempt without reclaim, then the page-by-page charge with its retries;
    # v1 (3.16's function) tries the bulk charge only for more than one page
    failcnt = 7 if model == "3.17" else 6
    assert (b["usage"], b["rss"], b["failcnt"], b["max_usage"]) == (0, 0, failcnt, 0)


def test_317_move_of_locked_page_is_ebusy():
    e = make("3.17")
    play(e, (("fault", "P", "A"), ("lock", "P")))
    before_p, before_a = e.page_view("P"), e.memcg_view("A")
    r, _ = kernel_error(e, "move", "P", "B", errno="EBUSY")
    assert "trylock_page(P)" in r.error.message
    assert e.page_view("P") == before_p  # charged to A, back on the LRU, not isolated
    assert e.page_view("P")["page"] == "locked|lru"
    assert e.memcg_view("A") == before_a
    b = e.memcg_view("B")
    # the precharge was cancelled; max_usage keeps its transient peak
    assert (b["usage"], b["memsw"], b["max_usage"], b["memsw_max_usage"]) == (0, 0, 1, 1)
    assert (b["rss"], b["pgpgin"], b["pgpgout"], b["failcnt"]) == (0, 0, 0, 0)
    assert r.violations == []


def test_v1_move_of_locked_page_does_not_trylock():
    e = make("v1")
    play(e, (("fault", "P", "A"), ("lock", "P")))
    assert e.move("P", "B").outcome == "ok"
    assert e.page_view("P")["memcg"] == "B"
    assert (e.memcg_view("A")["usage"], e.memcg_view("B")["usage"]) == (0, 1)


@pytest.mark.parametrize("model", MODELS)
def test_move_of_uncharged_page_is_einval_and_cancels_the_precharge(model):
    e = make(model)
    play(e, (("alloc", "P", "anon"), ("lru_add", "P")))
    before = e.page_view("P")
    kernel_error(e, "move", "P", "B", errno="EINVAL")
    assert e.page_view("P") == before
    b = e.memcg_view("B")
    assert (b["usage"], b["max_usage"], b["rss"]) == (0, 1, 0)


@pytest.mark.parametrize("model", MODELS)
def test_move_of_entry_without_record_is_einval_and_cancels_the_precharge(model):
    e = make(model)
    play(e, (("alloc", "P", "anon"), ("lock", "P"), ("add_to_swap", "P", "E")))
    before = e.entry_view("E")
    kernel_error(e, "move", "E", "B", errno="EINVAL")
    assert e.entry_view("E") == before
    b = e.memcg_view("B")
    assert (b["usage"], b["memsw"], b["max_usage"], b["swap"], b["css"]) == (0, 0, 1, 0, 0)


@pytest.mark.parametrize("fail", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_migrate_failure_path(model, fail):
    """-EAGAIN (an extra reference) and `fail` both run the kernel's failure path: P's ptes
    restored, P put back on the LRU (no longer isolated), Q freed uncharged."""
    e = make(model)
    play(e, (("fault", "P", "A"), ("isolate", "P"), ("alloc", "Q", "anon")))
    if fail:
        r = e.migrate("P", "Q", fail=True)
        assert (r.outcome, r.error) == ("failed", None)
        refs = 1
    else:
        play(e, (("get", "P"),))
        r, _ = kernel_error(e, "migrate", "P", "Q", errno="EAGAIN")
        refs = 2
    p = e.page_view("P")
    assert (p["page"], p["isolated"], p["mapcount"], p["refcount"]) == ("lru", "no", 1, refs)
    assert (p["flags"], p["memcg"], p["freed"]) == ("USED|MEM|MEMSW", "A", False)
    q = e.page_view("Q")
    assert q["freed"] and (q["flags"], q["page"], q["refcount"], q["mapcount"]) == (
        "none",
        "none",
        0,
        0,
    )
    a = e.memcg_view("A")
    assert (a["usage"], a["rss"]) == (1, 1)
    assert r.violations == []
    e.end_thread()


# ==========================================================================================
# the snapshot the refusal tests compare is not blind
# ==========================================================================================
@pytest.mark.parametrize(
    ("model", "step", "part"),
    [
        ("3.17", ("lock", "P"), "pages"),
        ("3.17", ("try_charge", "P", "A"), "reservations"),
        ("3.17", ("set_limits", "A", {"limit": 9}), "memcgs"),
        ("3.17", ("add_to_swap", "L", "E"), "entries"),
        ("v1", ("batch_begin",), "fingerprint"),
        ("v1", ("zap_begin",), "fingerprint"),
    ],
)
def test_state_snapshot_sees_every_kind_of_change(model, step, part):
    e = make(model)
    play(e, (("alloc", "P", "anon"), ("alloc", "L", "anon"), ("lock", "L")))
    before = state(e)
    play(e, (step,))
    after = state(e)
    assert after[part] != before[part]
    assert after["fingerprint"] != before["fingerprint"]
