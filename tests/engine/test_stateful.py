"""Random sequences of kernel paths and primitives under v1 and 3.17 (hypothesis).

* every accepted step keeps the invariants (no violation reported);
* every refused step (kernel assertion, scenario error) leaves the fingerprint, every view
  and the cost counters as they were, and so does rolling an accepted step back;
* the incremental fingerprint equals one recomputed from scratch;
* freeing every page and swap entry brings every counter back to zero.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from memcglang.engine import Engine, EngineError, KernelError
from memcglang.engine.state import PCG_USED, PG_locked, PG_lru, PG_swapcache

MEMCGS = ("A", "A/B", "C")
PRIMITIVES = (
    "try_charge", "commit", "cancel", "map", "unmap", "try_to_unmap", "get", "put", "lock",
    "unlock", "lru_add", "isolate", "putback", "add_to_cache", "delete_from_cache",
    "delete_from_swap_cache", "swapout", "free_swap", "release", "split", "truncate",
    "reclaim", "migrate", "replace_cache", "move", "cow", "swapin", "readahead", "add_to_swap",
)


def state_of(e: Engine):
    return (
        e.fingerprint(),
        {n: e.page_view(n) for n in e.pages},
        {n: e.memcg_view(n) for n in e.memcgs},
        {n: e.entry_view(n) for n in e.entries},
        e.cost_view(),
    )


class EngineMachine(RuleBasedStateMachine):
    """3.17 with root's hierarchy off: A and A/B chained, C on its own."""

    model = "3.17"
    root_hierarchy = False

    def __init__(self):
        super().__init__()
        self.e = Engine(self.model, root_hierarchy=self.root_hierarchy)
        for path, kw in (
            ("A", {"limit": 3000, "memsw_limit": 3600, "hierarchy": True}),
            ("A/B", {"limit": 40}),
            ("C", {}),
        ):
            assert self.e.create_memcg(path, **kw).outcome == "ok"
        self.n = 0

    # -- helpers ------------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def live(self, pred=lambda p: True):
        return sorted(
            (p for p in self.e.pages.values() if not p.freed and pred(p)), key=lambda p: p.name
        )

    def do(self, op: str, *args, **kwargs):
        """An accepted step must report no violation; a refused one must change nothing."""
        before = state_of(self.e)
        try:
            r = getattr(self.e, op)(*args, **kwargs)
        except EngineError:
            assert state_of(self.e) == before, f"refused {op}{args} changed the state"
            return None
        assert r.violations == [], f"{op}{args}: {[str(v) for v in r.violations]}"
        if r.outcome == "error":
            assert isinstance(r.error, KernelError)
        return r

    # -- kernel paths -------------------------------------------------------------------------
    @rule(memcg=st.sampled_from(MEMCGS), huge=st.sampled_from((False,) * 4 + (True,)))
    def fault(self, memcg, huge):
        self.do("fault", self.fresh("P"), memcg, huge=huge)

    @rule(memcg=st.sampled_from(MEMCGS))
    def cache(self, memcg):
        self.do("cache", self.fresh("F"), memcg)

    @rule(data=st.data(), memcg=st.sampled_from(MEMCGS))
    def cow(self, data, memcg):
        pages = self.live(lambda p: p.mapcount > 0 and not p.huge and p.pc_flags & PCG_USED)
        if pages:
            self.do("cow", data.draw(st.sampled_from(pages)).name, self.fresh("P"), memcg)

    @rule(data=st.data())
    def reclaim(self, data):
        pages = self.live(lambda p: p.flags & PG_lru and p.kind != "shmem" and not p.huge)
        if self.model == "v1":  # v1's swapout records an uncharged readahead page (E7): a bug
            pages = [p for p in pages if p.pc_flags & PCG_USED]
        if pages:
            p = data.draw(st.sampled_from(pages))
            entry = self.fresh("E") if p.anon and not p.flags & PG_swapcache else None
            self.do("reclaim", p.name, entry)

    @rule(data=st.data(), memcg=st.sampled_from(MEMCGS), reuse=st.booleans())
    def swapin(self, data, memcg, reuse):
        entries = [e for e in self.e.entries.values() if not e.freed and e.count > 0]
        if entries:
            entry = data.draw(st.sampled_from(sorted(entries, key=lambda x: x.name)))
            name = entry.page.name if entry.page is not None else self.fresh("Q")
            if self.model == "legacy" and entry.page is not None and \
                    entry.page.pc_flags & PCG_USED:
                reuse = False  # legacy's F2 case D (SEMANTICS §4.3), tested on its own
            self.do("swapin", entry.name, name, memcg, reuse=reuse)

    @rule(data=st.data())
    def readahead(self, data):
        entries = [
            e for e in self.e.entries.values() if not e.freed and e.count > 0 and e.page is None
        ]
        if entries:
            entry = data.draw(st.sampled_from(sorted(entries, key=lambda x: x.name)))
            self.do("readahead", entry.name, self.fresh("R"))

    @rule(data=st.data())
    def truncate(self, data):
        pages = self.live(lambda p: p.in_cache and not p.flags & PG_locked)
        if pages:
            self.do("truncate", data.draw(st.sampled_from(pages)).name)

    @rule(data=st.data())
    def unmap_or_zap(self, data):
        pages = self.live(lambda p: p.mapcount > 0 and p.pc_flags & PCG_USED)
        if not pages:
            return
        chosen = data.draw(st.lists(st.sampled_from(pages), min_size=1, max_size=4, unique=True))
        if data.draw(st.booleans()):
            self.do("zap_begin")
            for p in chosen:
                self.do("unmap", p.name)
            self.do("zap_end")
        else:
            self.do("unmap", chosen[0].name)

    @rule(data=st.data())
    def batch_of_puts(self, data):
        pages = self.live(lambda p: p.pc_flags & PCG_USED and p.refcount > 0)
        if not pages:
            return
        chosen = data.draw(st.lists(st.sampled_from(pages), min_size=1, max_size=3, unique=True))
        self.do("batch_begin")
        for p in chosen:
            self.do("get", p.name)
        self.do("release", *(p.name for p in chosen))
        self.do("batch_end")

    @rule(data=st.data())
    def get_put(self, data):
        pages = self.live(lambda p: p.refcount > 0)
        if pages:
            p = data.draw(st.sampled_from(pages))
            self.do("get", p.name)
            self.do("put", p.name)

    @rule(data=st.data())
    def isolate_putback(self, data):
        pages = self.live(lambda p: p.flags & PG_lru)
        if pages:
            p = data.draw(st.sampled_from(pages))
            self.do("isolate", p.name)
            if data.draw(st.booleans()):
                self.do("putback", p.name)

    @rule(data=st.data())
    def putback(self, data):
        pages = self.live(lambda p: p.isolated)
        if pages:
            self.do("putback", data.draw(st.sampled_from(pages)).name)

    @rule(data=st.data(), fail=st.booleans())
    def migrate(self, data, fail):
        pages = self.live(lambda p: p.isolated and not p.huge and not p.flags & PG_locked)
        if pages:
            p = data.draw(st.sampled_from(pages))
            q = self.fresh("N")
            self.do("alloc", q, p.kind)
            self.do("migrate", p.name, q, fail=fail)

    @rule(data=st.data())
    def replace_cache(self, data):
        pages = self.live(lambda p: p.in_cache and not p.flags & PG_locked)
        if self.model == "3.17":  # its on-LRU case leaks (SEMANTICS E5), tested on its own
            pages = [p for p in pages if not p.flags & PG_lru]
        if not pages:
            return
        p = data.draw(st.sampled_from(pages))
        q = self.fresh("G")
        self.do("get", p.name)
        self.do("lock", p.name)
        self.do("alloc", q, p.kind)
        self.do("lock", q)
        self.do("replace_cache", p.name, q)  # v1 refuses LRU pages: rolled back
        for name in (p.name, q):
            if self.e.pages[name].flags & PG_locked:
                self.do("unlock", name)
        if not self.e.pages[p.name].freed:
            self.do("put", p.name)
        if not self.e.pages[q].in_cache:
            self.do("put", q)  # the replacement was refused: give the new page back

    @rule(data=st.data(), memcg=st.sampled_from(MEMCGS))
    def move(self, data, memcg):
        to = self.e.memcgs[memcg]
        charged = self.live(lambda p: p.pc_flags & PCG_USED and p.pc_memcg is not to)
        targets = [p.name for p in charged]
        targets += sorted(
            e.name for e in self.e.entries.values() if e.record is not None and e.record is not to
        )
        if targets:
            self.do("move", data.draw(st.sampled_from(targets)), memcg)

    @rule(data=st.data())
    def split(self, data):
        pages = self.live(lambda p: p.huge and p.mapping == "anon")
        if pages:
            self.do("split", data.draw(st.sampled_from(pages)).name)

    @rule(data=st.data())
    def free_swap(self, data):
        entries = [e for e in self.e.entries.values() if not e.freed and e.count > 0]
        if entries:
            entry = data.draw(st.sampled_from(sorted(entries, key=lambda x: x.name)))
            self.do("free_swap", entry.name)

    @rule(memcg=st.sampled_from(("A", "A/B")), limit=st.integers(0, 3000))
    def set_limit(self, memcg, limit):
        self.do("set_limits", memcg, limit=limit)

    # -- anything at all: refused or rolled back, it must leave no trace -----------------------
    @rule(data=st.data(), op=st.sampled_from(PRIMITIVES))
    def chaos(self, data, op):
        names = sorted(self.e.pages) + sorted(self.e.entries)
        if not names:
            return
        arg = data.draw(st.sampled_from(names))
        other = data.draw(st.sampled_from(names + [self.fresh("X")]))
        args = {
            "try_charge": (arg, data.draw(st.sampled_from(MEMCGS))),
            "move": (arg, data.draw(st.sampled_from(MEMCGS))),
            "cow": (arg, self.fresh("X"), "A"),
            "swapin": (arg, other, "A"),
            "readahead": (arg, self.fresh("X")),
            "add_to_swap": (arg, self.fresh("X")),
            "migrate": (arg, other),
            "replace_cache": (arg, other),
            "release": (arg, other),
            "reclaim": (arg, self.fresh("X")),
        }.get(op, (arg,))
        before = state_of(self.e)
        mark = self.e.mark()
        try:
            getattr(self.e, op)(*args)
        except EngineError:
            assert state_of(self.e) == before, f"refused {op}{args} changed the state"
        else:
            self.e.rollback_to(mark)
            assert state_of(self.e) == before, f"rolling back {op}{args} left a trace"
        finally:
            self.e.release_mark(mark)

    @invariant()
    def fingerprint_is_canonical(self):
        assert self.e.fingerprint() == self.e.full_fingerprint()

    @invariant()
    def nothing_carried(self):
        assert self.e.known == {}

    def teardown(self):
        drain(self.e)


def drain(e: Engine) -> None:
    """Free every page and swap entry; then every counter must be back at zero."""
    for p in list(e.pages.values()):
        if p.freed:
            continue
        if p.flags & PG_locked:
            e.set_thread(p.locker)
            e.unlock(p.name)
            e.set_thread("main")
    for p in sorted(e.pages.values(), key=lambda p: p.name):
        if p.freed:
            continue
        if p.isolated:
            e.putback(p.name)
        while not p.freed and p.mapcount:
            e.unmap(p.name)
        if p.freed:
            continue
        if p.in_cache:
            e.truncate(p.name)
        elif p.flags & PG_swapcache:
            e.get(p.name)  # a lookup reference, so the page outlives the cache's
            e.lock(p.name)
            e.delete_from_swap_cache(p.name)
            e.unlock(p.name)
            e.put(p.name)
        while not p.freed:
            e.put(p.name)
    for entry in list(e.entries.values()):
        while not entry.freed:
            e.free_swap(entry.name)
    assert e.known == {}, e.known
    fields = ("usage", "memsw", "rss", "cache", "rss_huge", "swap", "css", "reported_usage")
    for name in e.memcgs:
        view = e.memcg_view(name)
        for field in fields:
            assert view[field] == 0, (name, field, view[field])


class HierMachine(EngineMachine):
    """3.17 with root's hierarchy on (every memcg chained to root's counters)."""

    root_hierarchy = True


class V1Machine(EngineMachine):
    model = "v1"


class V1HierMachine(EngineMachine):
    model = "v1"
    root_hierarchy = True


class LegacyMachine(EngineMachine):
    model = "legacy"


SETTINGS = settings(
    derandomize=bool(os.environ.get("CI")),  # CI replays the same examples; locally, new ones
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize(
    "machine",
    [EngineMachine, HierMachine, V1Machine, V1HierMachine, LegacyMachine],
    ids=["3.17", "3.17-hier", "v1", "v1-hier", "legacy"],
)
def test_random_sequences(machine):
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine, settings=SETTINGS)
