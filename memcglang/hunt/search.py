"""Random runs of kernel paths, their findings, and the shrinking of a finding.

A run is drawn from `random.Random(f"{seed}:{run}")`: a setup (swap accounting, one to three
memcgs, perhaps a hierarchy and limits), then up to MAX_PATHS kernel paths (`paths.KINDS`),
each drawn from the state the previous ones left. Every statement is an engine step, so the
invariants of SEMANTICS §5 are checked after each. A run ends at its first finding: a step
that breaks an invariant, or a VM_BUG_ON inside memcg code. A step the engine refuses as an
mm-contract break (or a scenario error) is the generator's bug: the run ends and it is
counted apart, never reported as a finding.

A finding is shrunk (`shrink`) by deleting whole paths, merging memcgs and dropping limits,
each change kept only if a replay still ends in the same finding; the replay leaves out the
paths the kernel would no longer run (`Kind.repair`), so a deletion takes the paths that
depended on it along; then pages and entries are renamed in order of appearance. Findings
are grouped by their key: the invariant broken first (or the assertion) and the memcg
functions involved (docs/hunt.md).
"""

from __future__ import annotations

import random
import re

import attrs

from memcglang.engine import Engine
from memcglang.engine.errors import ScenarioError, VmBug
from memcglang.engine.state import MemCgroup, Page, ResCounter, SwapEntry
from memcglang.hunt import MAX_PATHS
from memcglang.hunt.paths import KINDS, RACE_ONLY, Stmt, World

# the kernel function a statement enters by (docs/kernel-map.md)
FUNCTIONS = {
    "fault": "do_anonymous_page", "cache": "add_to_page_cache_lru", "cow": "do_wp_page",
    "map": "page_add_anon_rmap", "unmap": "zap_pte_range", "zap_begin": "unmap_page_range",
    "zap_end": "tlb_finish_mmu", "truncate": "truncate_inode_page",
    "reclaim": "shrink_page_list", "swapin": "do_swap_page", "readahead":
    "read_swap_cache_async", "free_swap": "swap_free", "isolate": "isolate_lru_page",
    "alloc": "alloc_pages", "migrate": "migrate_pages", "replace_cache":
    "replace_page_cache_page", "get": "get_page", "put": "put_page", "lock": "lock_page",
    "unlock": "unlock_page", "lru_add": "lru_cache_add", "delete_from_cache":
    "delete_from_page_cache", "release": "release_pages", "batch_begin":
    "mem_cgroup_uncharge_start", "batch_end": "mem_cgroup_uncharge_end",
    "move": "mem_cgroup_move_charge", "split": "split_huge_page",
    "set_limits": "mem_cgroup_resize_limit", "putback": "putback_lru_page",
    "try_charge": "mem_cgroup_try_charge", "commit": "mem_cgroup_commit_charge",
    "add_to_cache": "add_to_page_cache_locked", "delete_from_swap_cache":
    "delete_from_swap_cache",
}
# the uncharge window's brackets: called around the work, never the work that breaks
BRACKETS = frozenset(("mem_cgroup_uncharge_start", "mem_cgroup_uncharge_end"))


def function_of(stmt: Stmt) -> str:
    """The kernel function a statement enters by."""
    if stmt.method == "fault" and len(stmt.args) > 2 and stmt.args[2]:
        return "do_huge_pmd_anonymous_page"
    return FUNCTIONS[stmt.method]


@attrs.frozen
class Setup:
    swap_account: bool
    # (path, limit, memsw_limit, hierarchy) of each memcg, parents first
    memcgs: tuple[tuple[str, int | None, int | None, bool | None], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m[0] for m in self.memcgs)


@attrs.frozen
class Path:
    """One kernel path of a run: its kind and arguments; in a race, its thread. `failed_at`:
    the statement whose error value sent it down its failure path (`Kind.recover`)."""

    kind: str
    args: tuple
    thread: str | None = None
    failed_at: int | None = None

    @property
    def stmts(self) -> list[Stmt]:
        kind = KINDS[self.kind]
        stmts = kind.stmts(self.args)
        if self.failed_at is None:
            return stmts
        return stmts[: self.failed_at + 1] + kind.recover(self.args, self.failed_at)


@attrs.frozen
class Failure:
    """What a step broke: "violation" (invariants, lowest first) or "bug" (the assertion)."""

    what: str
    label: str  # "I1", or the assertion ("mem_cgroup_migrate: VM_BUG_ON_PAGE(...)")
    function: str  # the kernel function of the statement
    details: tuple[str, ...]  # each broken invariant with its numbers, or the bug's report
    memcg: str = ""  # a violation's memcg function (`violation`)
    interleaved: bool = False  # found by a race: only some interleaving of threads breaks it

    @property
    def memcg_function(self) -> str:
        """The memcg code involved: the assertion's function, or the violation's."""
        if self.what == "bug":
            return self.label.partition(":")[0]
        return self.memcg or "no memcg function"

    @property
    def key(self) -> tuple[str, str]:
        """The same bug reached by different paths (or by a race) is one finding: the
        invariant broken first (or the assertion) and the memcg code involved."""
        return (self.label, self.memcg_function)

    @property
    def title(self) -> str:
        race = " in an interleaving of threads" if self.interleaved else ""
        if self.what == "bug":
            return f"{self.label} (memcg) from {self.function}{race}"
        return f"{self.label} broken in {self.memcg_function} from {self.function}{race}"


@attrs.frozen
class Refusal:
    """A statement the engine refused as an mm-contract break: the generator's bug."""

    stmt: str
    reason: str


@attrs.define
class Play:
    """What replaying (or generating) a run did."""

    paths: list[Path]
    outcomes: list[list[str]]  # per path, per statement: "ok", "enomem", "error EAGAIN", ...
    failure: Failure | None = None
    at: tuple[int, int] | None = None  # (path, statement) of the failure
    refusal: Refusal | None = None
    statements: int = 0
    world: World | None = None
    setup: Setup | None = None
    avoided: dict = attrs.Factory(dict)  # key -> paths undone: they ended in a known finding
    race: object = None  # a race's explore Result, when it found something
    raced: bool = False  # the run ended in a race that was searched


def order(inv: str) -> int:
    return int(inv[1:]) if inv[1:].isdigit() else 99


def execute(engine: Engine, stmt: Stmt) -> tuple[str, Failure | None, Refusal | None]:
    """Run one statement: its outcome, and a finding or a refusal."""
    try:
        r = getattr(engine, stmt.method)(*stmt.args)
    except VmBug as e:
        if e.origin == "memcg":
            return "bug", Failure("bug", e.assertion, function_of(stmt), (e.report,)), None
        return "refused", None, Refusal(stmt.text, e.report)
    except ScenarioError as e:
        return "refused", None, Refusal(stmt.text, f"scenario error: {e}")
    if r.violations:
        return "violation", violation(r, function_of(stmt)), None
    if r.error is not None:
        errno = r.error.errno
        return ("enomem" if errno == "ENOMEM" else f"error {errno}"), None, None
    return r.outcome, None, None  # ok, or reclaim's "kept", a forced migration's "failed"


def violation(r, function: str, interleaved: bool = False) -> Failure:
    """The finding of a step that broke invariants (the lowest-numbered first), with the
    memcg function that first wrote what the broken invariant is about."""
    vs = sorted(r.violations, key=lambda v: order(v.inv))
    memcg = involved(r, vs[0].obj) or next(
        (name for _, kind, name, _ in r.events if kind == "call" and memcg_code(name)), "")
    return Failure("violation", vs[0].inv, function, tuple(str(v) for v in vs), memcg,
                   interleaved)


def memcg_code(name: str | None) -> bool:
    return name is not None and name.startswith("mem_cgroup") and name not in BRACKETS


def involved(r, subject: str) -> str | None:
    """The memcg function during which the step first wrote the broken invariant's object
    (a page, or a memcg: its counters, statistics, or a page or swap record charged to it):
    the step's records each belong to the last kernel call before them."""
    calls = [(pos, name) for pos, kind, name, _ in r.events if kind == "call"]
    i, owner = 0, None
    for k, (obj, field, old, new) in enumerate(r.changes):
        while i < len(calls) and calls[i][0] <= r.start + k:
            owner = calls[i][1]
            i += 1
        if memcg_code(owner) and subject in names_of(obj, field, old, new):
            return owner
    return None


def names_of(obj, field: str, old, new) -> set[str]:
    """What a journal record is about: its object, and the memcgs (with their ancestors,
    whose hierarchical counters follow theirs) it charges or uncharges."""
    if isinstance(obj, ResCounter):
        memcgs = [obj.memcg]
    elif isinstance(obj, MemCgroup):
        memcgs = [obj]
    elif isinstance(obj, SwapEntry):
        memcgs = [m for m in (old, new) if isinstance(m, MemCgroup)] if field == "record" else []
        return {obj.name} | lineage(memcgs)
    elif isinstance(obj, Page):
        memcgs = [m for m in (old, new, obj.pc_memcg) if isinstance(m, MemCgroup)]
        return {obj.name} | lineage(memcgs)
    else:
        return set()
    return lineage(memcgs)


def lineage(memcgs) -> set[str]:
    out = set()
    for m in memcgs:
        while m is not None:
            out.add(m.name)
            m = m.parent
    return out


def new_world(model: str, setup: Setup) -> World:
    engine = Engine(model, setup.swap_account, track_fingerprint=False)
    for path, limit, memsw_limit, hierarchy in setup.memcgs:
        r = engine.create_memcg(path, limit, memsw_limit, hierarchy)
        assert r.error is None, r.error  # the setup's limits are consistent by construction
    return World(engine, setup.names)


def run_path(world: World, path: Path, play: Play) -> bool:
    """Run one path's statements; False when the run ends here (a finding or a refusal)."""
    outcomes: list[str] = []
    path = attrs.evolve(path, failed_at=None)
    play.paths.append(path)
    play.outcomes.append(outcomes)
    stmts = path.stmts
    i = 0
    while i < len(stmts):
        outcome, failure, refusal = execute(world.engine, stmts[i])
        play.statements += 1
        outcomes.append(outcome)
        if failure is not None or refusal is not None:
            play.failure, play.refusal = failure, refusal
            play.at = (len(play.paths) - 1, i)
            return False
        if outcome.startswith(("enomem", "error")) and KINDS[path.kind].recover is not None \
                and path.failed_at is None and i + 1 < len(stmts):
            path = play.paths[-1] = attrs.evolve(path, failed_at=i)
            stmts = path.stmts
        i += 1
    for name, delta in KINDS[path.kind].pins(path.args).items():
        world.pins[name] = world.pins.get(name, 0) + delta
    return True


def replay(model: str, setup: Setup, paths: list[Path]) -> Play:
    """Run the paths again from the setup, each only if the kernel would run it then: a path
    whose page or entry an earlier deletion took away is left out too, or runs over the
    pages it still has (`Kind.repair`); `play.paths` holds the paths as they ran."""
    world = new_world(model, setup)
    play = Play([], [], world=world, setup=setup)
    for path in paths:
        args = KINDS[path.kind].repair(world, path.args)
        if args is not None and not run_path(world, attrs.evolve(path, args=args), play):
            return play
    return play


# -- generation ---------------------------------------------------------------------------------
SHAPES = (("A",), ("A", "B"), ("A", "A/B"), ("A", "A/B", "C"), ("A", "B", "C"))


def pick_setup(rng: random.Random) -> Setup:
    swap_account = rng.random() < 0.85
    shape = rng.choice(SHAPES)
    memcgs = []
    for path in shape:
        limit = rng.randint(2, 12) if rng.random() < 0.3 else None
        memsw_limit = None
        if swap_account and limit is not None and rng.random() < 0.3:
            memsw_limit = limit + rng.randint(0, 4)
        hierarchy = True if any(p.startswith(path + "/") for p in shape) else None
        memcgs.append((path, limit, memsw_limit, hierarchy))
    return Setup(swap_account, tuple(memcgs))


def generate(model: str, seed: int, run: int, known: frozenset = frozenset()) -> Play:
    """Run `run` of `seed`: a setup and kernel paths drawn one by one from the state; a race
    run (race.RACE_SHARE of them) has a short prefix and ends in threads (`race`). A path
    that ends in a finding whose key is in `known` is undone and another drawn instead (its
    count goes to `play.avoided`), so that one frequent bug does not hide the others."""
    from memcglang.hunt import race

    rng = random.Random(f"{seed}:{run}")
    setup = pick_setup(rng)
    world = new_world(model, setup)
    engine = world.engine
    play = Play([], [], world=world, setup=setup)
    kinds = [k for k in KINDS.values() if k.name not in RACE_ONLY]
    racing = rng.random() < race.RACE_SHARE
    for _ in range(rng.randint(1, 6) if racing else rng.randint(5, MAX_PATHS)):
        path = draw(world, rng, kinds)
        if path is None:
            break
        mark = engine.mark()
        try:
            if run_path(world, path, play):
                continue
            if play.failure is None or play.failure.key not in known:
                return play
            engine.rollback_to(mark)
            key = play.failure.key
            play.avoided[key] = play.avoided.get(key, 0) + 1
            play.statements -= len(play.outcomes.pop())
            play.paths.pop()
            play.failure = play.at = None
        finally:
            engine.release_mark(mark)
    if racing:
        threads = race.pick_race(world, rng)
        if threads is not None:
            raced = race.check(model, setup, play.paths + threads)
            raced.raced = True
            raced.statements = play.statements + sum(
                len(p.stmts) for p in threads if p in raced.paths)
            raced.avoided = play.avoided
            return raced
    return play


def draw(world: World, rng: random.Random, kinds: list) -> Path | None:
    """A kind by weight among those with something to do, and its arguments."""
    left = list(kinds)
    while left:
        kind = rng.choices(left, weights=[k.weight for k in left])[0]
        args = kind.pick(world, rng)
        if args is not None:
            return Path(kind.name, args)
        left.remove(kind)
    return None


# -- shrinking ----------------------------------------------------------------------------------
@attrs.define
class Shrunk:
    setup: Setup
    paths: list[Path]
    play: Play
    replays: int = 0


def shrink(model: str, setup: Setup, paths: list[Path], key: tuple[str, str],
           check=None) -> Shrunk:
    """The smallest run found that still ends in a finding with this key (module docstring);
    `check(model, setup, paths)` replays a candidate (default: `replay`)."""
    best = Shrunk(setup, [], Play([], []))
    check = check or replay

    def holds(setup: Setup, paths: list[Path]) -> bool:
        best.replays += 1
        play = check(model, setup, paths)
        if play.failure is None or play.failure.key != key:
            return False
        best.setup, best.paths, best.play = setup, play.paths, play
        return True

    if not holds(setup, paths):
        raise AssertionError("a finding that does not replay")  # determinism is broken
    changed = True
    while changed:
        changed = _drop_paths(best, holds)
        changed = _substitute(best, holds) or changed
        changed = _simplify_setup(best, holds) or changed
    holds(*canonical(best.setup, best.paths))
    return best


def _drop_paths(best: Shrunk, holds) -> bool:
    """Delete chunks of paths, halving the chunk down to single paths (ddmin's complement
    step); the path of the finding may go too, if another still ends the same way."""
    changed = False
    chunk = max(1, len(best.paths) // 2)
    while True:
        i = len(best.paths) - chunk
        while i >= 0:
            paths = best.paths
            if holds(best.setup, paths[:i] + paths[i + chunk:]):
                changed = True
            i = min(i - chunk, len(best.paths) - chunk)
        if chunk == 1:
            return changed
        chunk //= 2


def _substitute(best: Shrunk, holds) -> bool:
    """A path that brings a page into being in some roundabout way (a replacement's new page,
    a COW copy, a swap-in) replaced by the plainest path that makes such a page: a read into
    the cache for a file page, a fault for an anon page, in each memcg."""
    changed = False
    i = 0
    while i < len(best.paths):
        path = best.paths[i]
        pages = best.play.world.engine.pages
        if path.thread is None and path.kind not in ("cache", "fault"):
            for name in dict.fromkeys(a for a in _flat(path.args) if isinstance(a, str)):
                page = pages.get(name)
                if page is None or page.kind == "shmem" or page.head is not None:
                    continue
                tried = [Path("cache", (name, m)) if page.kind == "file"
                         else Path("fault", (name, m, False)) for m in best.setup.names]
                if any(holds(best.setup, best.paths[:i] + [p] + best.paths[i + 1:])
                       for p in tried):
                    changed = True
                    break
        i += 1
    return changed


def _simplify_setup(best: Shrunk, holds) -> bool:
    """Fewer memcgs (a leaf merged into another), no limits, default hierarchy, swap
    accounting on."""
    changed = False
    names = best.setup.names
    for leaf in reversed(names):
        if any(n.startswith(leaf + "/") for n in best.setup.names) or leaf not in \
                best.setup.names:
            continue
        for into in best.setup.names:
            if into == leaf:
                continue
            setup = attrs.evolve(best.setup, memcgs=tuple(
                m for m in best.setup.memcgs if m[0] != leaf))
            if holds(setup, rename_paths(best.paths, {leaf: into})):
                changed = True
                break
    for i, (path, limit, memsw_limit, hierarchy) in enumerate(best.setup.memcgs):
        parent = any(n.startswith(path + "/") for n in best.setup.names)
        for plain in ((path, None, None, hierarchy), (path, None, memsw_limit, hierarchy),
                      (path, limit, None, hierarchy),
                      (path, limit, memsw_limit, hierarchy if parent else None)):
            if plain != best.setup.memcgs[i] and (plain[2] is None or plain[1] is not None):
                memcgs = list(best.setup.memcgs)
                memcgs[i] = plain
                if holds(attrs.evolve(best.setup, memcgs=tuple(memcgs)), best.paths):
                    changed = True
                    break
    if not best.setup.swap_account and holds(
            attrs.evolve(best.setup, swap_account=True), best.paths):
        changed = True
    return changed


def rename(value, mapping: dict):
    if isinstance(value, tuple):
        return tuple(rename(v, mapping) for v in value)
    if isinstance(value, str):
        if value in mapping:
            return mapping[value]
        head, dot, tail = value.partition(".")
        if dot and head in mapping:
            return f"{mapping[head]}.{tail}"
    return value


def rename_paths(paths: list[Path], mapping: dict) -> list[Path]:
    return [attrs.evolve(p, args=rename(p.args, mapping)) for p in paths]


NAME = re.compile(r"([A-Z]+)(\d+)$")
CREATED = {"cache": "F", "fault": "P"}  # the letter of the page these paths make


def canonical(setup: Setup, paths: list[Path]) -> tuple[Setup, list[Path]]:
    """Pages and entries renumbered per letter in order of appearance (P1, P2, F1, E1, ...),
    threads named again after their first paths."""
    from memcglang.hunt.race import named

    mapping: dict[str, str] = {}
    counts: dict[str, int] = {}
    for path in paths:
        made = CREATED.get(path.kind)  # a page a substitution made by a read or a fault
        for stmt in path.stmts:
            for a in _flat(stmt.args):
                m = NAME.match(a.partition(".")[0]) if isinstance(a, str) else None
                if m and a not in setup.names and a.partition(".")[0] not in mapping:
                    letter = made if made and a == path.args[0] else m.group(1)
                    counts[letter] = counts.get(letter, 0) + 1
                    mapping[a.partition(".")[0]] = f"{letter}{counts[letter]}"
    return setup, named(rename_paths(paths, mapping))


def _flat(args):
    for a in args:
        if isinstance(a, tuple):
            yield from _flat(a)
        else:
            yield a
