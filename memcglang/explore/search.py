"""Every interleaving of a scenario's threads: depth-first search with the engine's journal
rollback, a visited set of state fingerprints, and partial-order reduction (docs/explore.md).

A state is the engine's fingerprint (the cost and event counters excluded) with every
thread's position. From each state the search takes one step of each thread that can move, rolls the
engine back to the state's mark and takes the next. A state already reached at the same or a
smaller depth is not expanded again, so the first counterexample of each length is found and
the shortest one is kept.

Partial-order reduction (ample sets): when the step of one thread touches nothing any other
thread can still touch — no page, swap entry or memcg field that their remaining statements
name or may write — the other threads' steps commute with it, and the search takes that step
alone. Statistics (rss, cache, swap, pgpgin, pgpgout, css) and cost counters are sums whose
order does not matter; res_counters are one shared object for all memcgs, since a hierarchy
chains them, whose charges commute with charges when no counter has a limit and whose
uncharges commute with uncharges. The state graph has no cycles (every
step moves a thread forward), so the ample set needs no cycle proviso; final states,
deadlocks and the step that breaks an invariant or a kernel assertion are all kept. A
scenario whose threads contain `expect` reads state mid-way: reduction is off for it.
"""

from __future__ import annotations

import time

import attrs

from memcglang.engine.state import MemCgroup, Page, ResCounter, SwapEntry
from memcglang.explore import DEFAULT_MAX_DEPTH, DEFAULT_MAX_STATES, DEFAULT_MAX_TIME
from memcglang.explore.threads import START, Machine, Move, Op

# What a step does to res_counters (any memcg's: a hierarchy chains them up to root): charges
# (+), uncharges (-), or reads or resets them in a way whose result depends on the order (!:
# a failed charge's failcnt, a limit). Two charges commute when no counter has a limit (usage
# adds up, max_usage ends the same); two uncharges commute; a charge and an uncharge do not
# (max_usage tells their order).
CHARGE, UNCHARGE, EXCLUSIVE = "<res_counter +>", "<res_counter ->", "<res_counter !>"
STAT_FIELDS = frozenset(("cache", "rss", "rss_huge", "swap", "pgpgin", "pgpgout", "css"))
# engine methods that never touch a res_counter
NO_COUNTERS = frozenset(("alloc", "get", "lock", "unlock", "lru_add", "isolate", "map",
                         "add_to_cache", "add_to_swap", "readahead", "zap_begin", "batch_begin"))
CHARGES_ONLY = frozenset(("try_charge", "fault"))  # (`charge` of a swap-cache page uncharges
# its entry's memsw: it is in neither list)
UNCHARGES_ONLY = frozenset(("put", "unmap", "release", "zap_end", "free_swap", "cancel",
                            "delete_from_cache", "delete_from_swap_cache", "swapout",
                            "try_to_unmap", "putback", "batch_end", "truncate", "reclaim",
                            "commit", "migrate"))
ORDERED = frozenset(("set_limits", "move"))  # read usage against a limit, or precharge


@attrs.define
class Failure:
    """A step that breaks something, with the shortest schedule found that reaches it."""

    kind: str  # "fail" (bug, violation, scenario error, expect) or "deadlock"
    label: str
    messages: list
    schedule: list  # [(thread index, position)] from the initial state, the last one failing
    threads: set = attrs.Factory(set)  # the threads whose step failed so
    count: int = 1


@attrs.define
class Result:
    explored: int = 0  # states expanded (a state reached again at a smaller depth counts again)
    distinct: int = 0
    transitions: int = 0
    max_depth: int = 0
    good: int = 0  # distinct final states where the postcondition holds
    bad: int = 0  # … where it does not
    failures: dict = attrs.Factory(dict)  # label -> Failure
    cuts: dict = attrs.Factory(dict)  # label -> times an interleaving was dropped there
    incomplete: str | None = None  # the bound that was hit
    bad_final: Failure | None = None  # the shortest schedule to a final state that fails
    reduction: bool = True
    shortening: int | None = None  # distinct states of the search for shorter counterexamples
    shortening_incomplete: bool = False  # … which hit --max-states

    @property
    def verdict(self) -> str:
        if self.good and not self.bad and not self.failures:
            return "Always"
        if not self.good:
            return "Never"
        return "Sometimes"

    def counterexamples(self) -> list[Failure]:
        """One per kind of failure (its shortest schedule), shortest first."""
        found = list(self.failures.values())
        if self.bad_final is not None:
            found.append(self.bad_final)
        return sorted(found, key=lambda f: (len(f.schedule), f.label))

    def counterexample(self) -> Failure | None:
        """The shortest failing schedule."""
        found = self.counterexamples()
        return found[0] if found else None


class Tokens:
    """Footprints for the reduction: the names a statement may touch, with pages and swap
    entries that ever belong together (a swap-cache page and its entry, migration's old and
    new page) in one class, and a tail `P.3` in its head's."""

    def __init__(self, machine: Machine):
        self.parent: dict[str, str] = {}
        self.found: dict[str, str] = {}  # name -> its class, remembered
        e = machine.engine
        # memcgs exist from the setup on (their counters are the CHARGE/UNCHARGE tokens); the
        # other strings a statement passes are kinds
        self.not_names = frozenset(e.memcgs) | {"root", "anon", "file", "shmem"}
        for page in e.pages.values():
            if page.entry is not None:
                self.union(page.name, page.entry.name)
        for ops in machine.ops:
            for op in ops:
                if op.method in ("add_to_swap", "readahead", "swapin", "reclaim", "migrate",
                                 "replace_cache"):
                    names = self.names(op)
                    for a in names[1:]:
                        self.union(names[0], a)

    def names(self, op: Op) -> list[str]:
        """The pages and swap entries a statement names (or reaches: `Op.touches`)."""
        return [a for a in (*op.args, *op.touches)
                if isinstance(a, str) and a not in self.not_names]

    def find(self, name: str) -> str:
        found = self.found.get(name)
        if found is None:
            root = name.split(".", 1)[0]
            parent = self.parent
            while parent.get(root, root) != root:
                root = parent[root]
            found = self.found[name] = root
        return found

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
            self.found.clear()

    def of_op(self, op: Op) -> frozenset:
        """Everything the statement may touch, from its names and its kind."""
        out = {self.find(a) for a in self.names(op)}
        method = op.method
        if method in ORDERED:
            out |= {CHARGE, UNCHARGE, EXCLUSIVE}
        elif method in CHARGES_ONLY:
            out.add(CHARGE)
        elif method in UNCHARGES_ONLY:
            out.add(UNCHARGE)
        elif method not in NO_COUNTERS:
            out |= {CHARGE, UNCHARGE}
        return frozenset(out)

    def of_step(self, machine: Machine, op: Op, records) -> set:
        """What one executed step touched: its names (what it read) and what it wrote."""
        e = machine.engine
        out = {self.find(a) for a in self.names(op)}
        if op.method in ORDERED:
            out.add(EXCLUSIVE)
        skip = (e.windows, e.zaps, e.known)  # per-thread bookkeeping; carried violations
        for obj, field, old, new in records:
            cls = obj.__class__
            if cls is Page or cls is SwapEntry:
                out.add(self.find(obj.name))
            elif cls is ResCounter:
                if field == "usage":
                    out.add(CHARGE if new > old else UNCHARGE)
                elif field == "max_usage":
                    out.add(CHARGE)
                elif field != "expected":  # failcnt, limit (expected: the checker's)
                    out.add(EXCLUSIVE)
            elif cls is MemCgroup:
                if field not in STAT_FIELDS:
                    out.add(obj.name)
            elif cls is dict:
                if obj is e.pages or obj is e.entries or obj is e.memcgs:
                    out.add(self.find(field))
                elif obj is e.reservations:
                    out.add(self.find(field[1]))
                elif not any(obj is s for s in skip):
                    out |= {CHARGE, UNCHARGE, EXCLUSIVE}  # unknown: assume the worst
        return out


@attrs.define
class Frame:
    """A state on the search stack: its journal mark, the threads' positions, its depth, the
    threads still to take from it, and what its steps so far did."""

    mark: int
    pcs: tuple
    depth: int
    pending: list
    fp: int = 0  # the engine's fingerprint here (restored with the rollback, not refolded)
    fresh: bool = True  # no step from here has been followed yet: an ample step may still be
    moved: bool = False  # some thread could move
    blocked: list = attrs.Factory(list)  # threads waiting for a page lock
    cut: bool = False  # some thread's step does not exist here (this path is infeasible)
    failed: bool = False  # some thread's step failed here: reported so, not as a deadlock


class Search:
    def __init__(self, machine: Machine, max_states: int = DEFAULT_MAX_STATES,
                 max_depth: int = DEFAULT_MAX_DEPTH, reduction: bool = True,
                 max_time: float = DEFAULT_MAX_TIME):
        self.m = machine
        self.max_states = max_states
        self.max_depth = max_depth
        self.max_time = max_time
        self.deadline = time.monotonic() + max_time
        has_expect = any(op.kind == "expect" for ops in machine.ops for op in ops)
        self.reduction = reduction and not has_expect
        self.result = Result(reduction=self.reduction)
        self.tokens = Tokens(machine)
        self.visited: dict = {}
        self.stack: list[Frame] = []
        self.schedule: list = []  # [(thread, position)] from the initial state to the top frame
        # rest[t][i]: the footprint of thread t's statements from i to its end
        self.named = [[frozenset(map(self.tokens.find, self.tokens.names(op))) for op in ops]
                      for ops in machine.ops]
        # charges commute unless a limit can make one fail
        e = machine.engine
        limited = any(c.limit is not None for m in e.memcgs.values() for c in (m.res, m.memsw))
        limited = limited or any(op.method == "set_limits" for ops in machine.ops for op in ops)
        self.conflicting = {
            CHARGE: {UNCHARGE, EXCLUSIVE} | ({CHARGE} if limited else set()),
            UNCHARGE: {CHARGE, EXCLUSIVE},
            EXCLUSIVE: {CHARGE, UNCHARGE, EXCLUSIVE},
        }
        self.rest = []
        for ops in machine.ops:
            acc: frozenset = frozenset()
            suffix = [acc] * (len(ops) + 1)
            for i in range(len(ops) - 1, -1, -1):
                acc = acc | self.tokens.of_op(ops[i])
                suffix[i] = acc
            self.rest.append(suffix)

    def run(self) -> Result:
        """The search, then, when the reduction found failures, the shortest paths to them."""
        res = self._search()
        if self.reduction and not res.incomplete:
            self._shorten(res)
        return res

    def _shorten(self, res: Result) -> None:
        """The reduction keeps every failure but may reach one later than the shortest
        interleaving does (steps of other threads that commute with it come first). A second
        search without reduction, to one step short of the longest counterexample, finds any
        shorter path to each failure."""
        found = res.counterexamples()
        if not found:
            return
        probe = Search(self.m, self.max_states, max(len(f.schedule) for f in found) - 1,
                       reduction=False,
                       max_time=max(0.0, self.deadline - time.monotonic()))._search()
        res.shortening = probe.distinct
        res.shortening_incomplete = (probe.distinct >= self.max_states
                                     or (probe.incomplete or "").startswith("--max-time"))
        for label, short in probe.failures.items():
            mine = res.failures.get(label)
            if mine is not None and len(short.schedule) < len(mine.schedule):
                mine.schedule, mine.messages = short.schedule, short.messages
        short = probe.bad_final
        if (short is not None and res.bad_final is not None
                and len(short.schedule) < len(res.bad_final.schedule)):
            res.bad_final = short

    def _search(self) -> Result:
        """Depth-first: each step is run once; a step that fails, blocks or is cut is undone
        at once; an ok step is followed into its state."""
        m, e, stack, res = self.m, self.m.engine, self.stack, self.result
        self._push(tuple(START if ops else None for ops in m.ops), 0)
        while stack:
            f = stack[-1]
            if not f.pending:
                if f.blocked and not f.moved and not f.cut and not f.failed:
                    self._deadlock(f)
                stack.pop()
                e.release_mark(f.mark)
                if stack:
                    e.rollback_to(stack[-1].mark, stack[-1].fp)
                    self.schedule.pop()
                continue
            if f.fresh:
                f.fresh = False
                if self.reduction and len(f.pending) > 1:
                    self._ample(f)
                    continue
            t = f.pending.pop(0)
            mv = m.step(t, f.pcs[t])
            res.transitions += 1
            if mv.kind == "ok":
                f.moved = True
                self._descend(f, t, mv)
                continue
            if mv.kind == "blocked":
                f.blocked.append(t)
            else:
                self._record(f, t, mv)
            e.rollback_to(f.mark, f.fp)
        return res

    # -- states -----------------------------------------------------------------------------
    def _key(self, pcs) -> tuple:
        return (self.m.engine.fingerprint(),
                tuple(pc if pc is None else (pc[0], pc[1], pc[3]) for pc in pcs))

    def _push(self, pcs, depth: int) -> bool:
        """The engine is in a state just reached: expand it (push a frame) when it is new or
        reached at a smaller depth than before; judge it when it is final."""
        res = self.result
        key = self._key(pcs)
        seen = self.visited.get(key)
        if seen is not None and seen <= depth:
            return False
        if seen is None:
            if res.distinct >= self.max_states:
                res.incomplete = res.incomplete or f"--max-states {self.max_states}"
                return False
            if not res.distinct % 1024 and time.monotonic() > self.deadline:
                res.incomplete = res.incomplete or f"--max-time {self.max_time:g}"
                return False
            res.distinct += 1
        self.visited[key] = depth
        res.explored += 1
        if depth > res.max_depth:
            res.max_depth = depth
        live = [t for t, pc in enumerate(pcs) if pc is not None]
        if not live:
            self._final(new=seen is None)
            return False
        if depth >= self.max_depth:
            res.incomplete = res.incomplete or f"--max-depth {self.max_depth}"
            return False
        e = self.m.engine
        self.stack.append(Frame(e.mark(), pcs, depth, live, key[0]))
        return True

    def _descend(self, f: Frame, t: int, mv: Move) -> None:
        """Thread t's step from frame f ran: go into the state it reached."""
        pcs = f.pcs[:t] + (mv.pc,) + f.pcs[t + 1:]
        self.schedule.append((t, f.pcs[t]))
        if not self._push(pcs, f.depth + 1):
            self.schedule.pop()
            self.m.engine.rollback_to(f.mark, f.fp)

    def _final(self, new: bool) -> None:
        res, m = self.result, self.m
        problem = m.main_end()
        messages = [f"scenario error: {problem}"] if problem else []
        for rec in m.postcondition():
            if rec.expects_failed:
                messages.extend(rec.messages)
        if not messages:
            res.good += new
            return
        res.bad += new
        if res.bad_final is None or len(self.schedule) < len(res.bad_final.schedule):
            res.bad_final = Failure("postcondition", "the postcondition fails", messages,
                                    list(self.schedule))

    def conflicts(self, footprint: set) -> set:
        """A step's footprint as what it conflicts with: its names, and for each kind of
        res_counter access the kinds that do not commute with it."""
        out = set(footprint)
        for token in (CHARGE, UNCHARGE, EXCLUSIVE):
            if token in footprint:
                out.discard(token)
                out |= self.conflicting[token]
        return out

    # -- steps ------------------------------------------------------------------------------
    def _ample(self, f: Frame) -> None:
        """Look for an ample step: run the steps that may be independent of everything the
        other threads can still do (a step reads what its statement names, so a name another
        thread may touch rules it out without running it); follow the first that is, alone.
        Steps run here that fail, block or are cut are recorded and leave `pending`; the
        others stay, to be followed one by one."""
        m, e, res = self.m, self.m.engine, self.result
        for t in [t for t in f.pending if self._may_be_independent(f, t)]:
            mv = m.step(t, f.pcs[t])
            res.transitions += 1
            if mv.kind == "ok":
                f.moved = True
                if self._independent(f, t):
                    f.pending = []
                    self._descend(f, t, mv)
                    return
            else:
                f.pending.remove(t)
                if mv.kind == "blocked":
                    f.blocked.append(t)
                else:
                    self._record(f, t, mv)
            e.rollback_to(f.mark, f.fp)

    def _may_be_independent(self, f: Frame, t: int) -> bool:
        return self._apart(f, t, self.named[t][f.pcs[t][0]])

    def _independent(self, f: Frame, t: int) -> bool:
        """Whether thread t's step, just run, touched nothing another thread may still touch."""
        m = self.m
        op = m.ops[t][f.pcs[t][0]]
        return self._apart(f, t, self.conflicts(
            self.tokens.of_step(m, op, m.engine.j.since(f.mark))))

    def _apart(self, f: Frame, t: int, mine) -> bool:
        """Whether `mine` meets nothing the other unfinished threads may still touch."""
        return all(u == t or pc is None or mine.isdisjoint(self.rest[u][pc[0]])
                   for u, pc in enumerate(f.pcs))

    def _record(self, f: Frame, t: int, mv: Move) -> None:
        res = self.result
        if mv.kind == "cut":
            f.cut = True
            label = f"{mv.label} in {self.m.names[t]}"
            res.cuts[label] = res.cuts.get(label, 0) + 1
            return
        f.failed = True
        schedule = self.schedule + [(t, f.pcs[t])]
        self._failure("fail", mv.label, mv.messages, schedule, self.m.names[t])

    def _deadlock(self, f: Frame) -> None:
        m = self.m
        waiting = "; ".join(m.label(t, f.pcs[t]) for t in f.blocked)
        self._failure("deadlock", f"deadlock: {waiting}",
                      [f"deadlock: no thread can move; waiting: {waiting}"], list(self.schedule))

    def _failure(self, kind: str, label: str, messages: list, schedule: list,
                 thread: str | None = None) -> None:
        found = self.result.failures.get(label)
        if found is None:
            found = self.result.failures[label] = Failure(kind, label, messages, schedule)
            found.threads.add(thread)
            return
        found.threads.add(thread)
        found.count += 1
        if len(schedule) < len(found.schedule):
            found.messages, found.schedule = messages, schedule
