"""Races: a run that ends in two or three threads, searched in every interleaving.

Some bugs need two CPUs: v1's double migration (SEMANTICS §2.12 #4, the July 2014 fix) needs
a reference taken after a migration's reference check and before the old page is put back,
which no sequence of whole paths can give. A race run draws a short sequential prefix as
any run, then picks one or two pages and gives each of two or three threads one or two
paths over them (a compaction, reclaim, a walker's get and put, a fault, a truncation, ...),
each drawn from the state at the fork: what one thread does may take another's page away,
and `explore` drops such interleavings (an mm contract the kernel's callers check first). The
race is written as a scenario with `thread` blocks and handed to `explore` (bounded: a race is
small); a memcg assertion or an invariant in some interleaving is a finding, unless the
threads run one after the other in some order fail as well (then the sequential runs find
it). Its key is a sequential finding's: the failing step is replayed for the memcg functions
it called. Shrinking deletes prefix paths, thread paths and memcgs as for a sequential run,
each change kept if `explore` still finds it.
"""

from __future__ import annotations

import itertools
import random

import attrs

from memcglang.hunt.paths import KINDS, Stmt, World, quiet
from memcglang.hunt.render import Lines, setup_lines
from memcglang.hunt.search import (
    Failure,
    Path,
    Play,
    Setup,
    draw,
    function_of,
    replay,
    violation,
)

RACE_SHARE = 0.25  # of the runs
RACE_MAX_STATES = 20_000  # a race's search bound (the double migration takes 180 states)
RACE_MAX_TIME = 5.0


# Not in races: `move` (the language's `move P to B` takes P's memcg for the moving task's,
# which two movers of one page would make wrong: the kernel's second mover, its task still
# in the old memcg, finds the page in another memcg and skips it) and `map` (fork's
# copy_one_pte of a pte that a migration or reclaim has just turned into a migration or swap
# entry copies the entry, not a mapping of the page, which `map` cannot say).
RACE_KINDS = [KINDS[n] for n in (
    "migrate", "reclaim", "swapin", "readahead", "truncate", "zap", "unmap", "cow",
    "replace_cache", "free_swap", "split", "walker")]
# a thread is named by what its first path is (the names are not keywords of the language)
THREAD_NAMES = {
    "migrate": "migration", "reclaim": "kswapd", "walker": "walker", "swapin": "cpu",
    "cow": "cpu", "readahead": "reader", "truncate": "truncator", "zap": "munmapper",
    "unmap": "munmapper", "map": "forker", "replace_cache": "fuse", "move": "mover",
    "free_swap": "exiting", "split": "khugepaged",
}


def pick_race(world: World, rng: random.Random) -> list[Path] | None:
    """Two or three threads of one or two paths over one or two pages of the fork's state."""
    pages = world.live(quiet)
    if not pages:
        return None
    world.focus = {rng.choice(pages).name}
    if rng.random() < 0.3:
        world.focus.add(rng.choice(pages).name)
    out: list[Path] = []
    try:
        for _ in range(rng.randint(2, 3)):
            paths = [p for p in (draw(world, rng, RACE_KINDS) for _ in range(rng.choice((1, 1, 2))))
                     if p is not None]
            if not paths:
                continue
            name = THREAD_NAMES[paths[0].kind]
            taken = {p.thread for p in out}
            n = 1
            while (name if n == 1 else f"{name}{n}") in taken:
                n += 1
            thread = name if n == 1 else f"{name}{n}"
            out += [attrs.evolve(p, thread=thread) for p in paths]
    finally:
        world.focus = None
    return out if len({p.thread for p in out}) >= 2 else None


def named(paths: list[Path]) -> list[Path]:
    """Each thread named again after its first path (a deletion may have taken the path
    that named it)."""
    names: dict[str, str] = {}
    for p in paths:
        if p.thread is not None and p.thread not in names:
            base = THREAD_NAMES[p.kind]
            n = 1
            while (base if n == 1 else f"{base}{n}") in names.values():
                n += 1
            names[p.thread] = base if n == 1 else f"{base}{n}"
    return [attrs.evolve(p, thread=names.get(p.thread)) for p in paths]


def threads_of(paths: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for p in paths:
        if p.thread is not None:
            out.setdefault(p.thread, []).append(p)
    return out


def race_text(setup: Setup, prefix: Play, paths: list[Path], header: list[str]) -> str:
    """The race as a scenario: the setup, the prefix as it ran, the threads."""
    body = Lines()
    sequential = [p for p in prefix.paths if p.thread is None]
    for path, outcomes in zip(sequential, prefix.outcomes, strict=True):
        body.path(path, outcomes)
    for name, thread in threads_of(paths).items():
        body.lines.append("")
        body.lines.append(f"thread {name} {{")
        inner = Lines(1)
        for path in thread:
            inner.path(path)
        body.lines += inner.lines
        body.lines.append("}")
    return "\n".join(header + setup_lines(setup) + [""] + body.lines) + "\n"


def check(model: str, setup: Setup, paths: list[Path]) -> Play:
    """Run the prefix; keep the thread paths the fork's state still allows; search the
    race's interleavings. The play's failure is the race's (module docstring)."""
    from memcglang.explore.search import Search
    from memcglang.explore.threads import Machine
    from memcglang.runner import load_text

    play = replay(model, setup, [p for p in paths if p.thread is None])
    if play.failure is not None or play.refusal is not None:
        return play
    world = play.world
    kept = [p for p in paths if p.thread is not None
            and KINDS[p.kind].repair(world, p.args) == p.args]
    if len(threads_of(kept)) < 2:
        return play
    program, resolution = load_text(race_text(setup, play, kept, []), "race.mcg")
    machine = Machine(program, resolution, model)
    _, failed = machine.setup()
    if failed:
        return play
    result = Search(machine, RACE_MAX_STATES, 10_000, True, RACE_MAX_TIME).run()
    for example in result.counterexamples():
        failure = race_failure(program, resolution, model, example)
        if failure is not None:
            break
    else:
        return play
    if sequential(model, setup, play.paths, kept):
        return play
    play.paths = play.paths + kept
    play.failure = failure
    play.race = result
    return play


def race_failure(program, resolution, model: str, example) -> Failure | None:
    """A memcg assertion or an invariant the search found, as a finding (the failing step
    replayed for the memcg functions it called); None for anything else (a deadlock, a
    scenario error)."""
    from memcglang.explore.report import replay_records

    if example.kind != "fail" or not (example.label.endswith(" (memcg)")
                                      or example.label.startswith("invariant ")):
        return None
    *_, (machine, rec) = replay_records(program, resolution, model, example.schedule)
    t, pc = example.schedule[-1]
    op = machine.ops[t][pc[0]]
    function = function_of(Stmt(op.method, op.args))
    if example.label.endswith(" (memcg)"):
        return Failure("bug", example.label.removesuffix(" (memcg)"), function,
                       tuple(example.messages), interleaved=True)
    return violation(rec.results[-1], function, interleaved=True)


def sequential(model: str, setup: Setup, prefix: list[Path], kept: list[Path]) -> bool:
    """Whether the threads run one after the other, in some order, already fail: then it is
    no race, and the sequential runs find it (with its memcg function for a key)."""
    threads = list(threads_of(kept).values())
    for order in itertools.permutations(threads):
        play = replay(model, setup, prefix + [p for thread in order for p in thread])
        if play.failure is not None:
            return True
    return False
