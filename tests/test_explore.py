"""`memcglang explore` and `memcglang run --replay` (memcglang/explore/, docs/explore.md): the
verdicts of scenarios/explore/, bounds, counterexamples that replay, reduction that keeps every
outcome, deadlocks, and composites run phase by phase giving the atomic run's outcomes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import mcg

from memcglang.engine import Engine, StepResult, VmBug
from memcglang.engine.mm import PATH_ARGS, PATHS, path_context
from memcglang.explore.search import Search
from memcglang.explore.threads import Machine
from memcglang.golden import explore_of
from memcglang.lang.interpreter import Interpreter
from memcglang.runner import load

ROOT = Path(__file__).resolve().parents[1]
EXPLORE = ROOT / "scenarios" / "explore"
STEP = re.compile(r"^  (\d+)\. (.*)$")
HEAD = re.compile(r"^counterexample(?: (\d+) of \d+)? \((\d+) steps?\): (.*)$")


def counterexamples(out: str) -> list[tuple[str, list[str]]]:
    """[(what failed, [its step lines])] of an explore report, in order."""
    found: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        head = HEAD.match(line)
        if head:
            found.append((head.group(3), []))
        elif found and STEP.match(line):
            found[-1][1].append(STEP.match(line).group(2))
    return found


def search(text: str, model: str, tmp_path: Path, **kw):
    path = tmp_path / "s.mcg"
    path.write_text(text, encoding="utf-8")
    program, resolution = load(str(path))
    m = Machine(program, resolution, model)
    _records, failed = m.setup()
    assert not failed
    return Search(m, **kw).run()


# -- the scenarios of issue 7 --------------------------------------------------------------
@pytest.mark.parametrize("name, model, verdict, steps, failure", [
    ("swapin_unlocked", "3.17", "Sometimes", 8, "commit_charge: VM_BUG_ON_PAGE(PageCgroupUsed"),
    ("swapin_unlocked", "legacy", "Sometimes", 8,
     "__mem_cgroup_commit_charge: VM_BUG_ON_PAGE(PageCgroupUsed"),
    ("swapin_locked", "3.17", "Always", None, None),
    ("swapin_locked", "legacy", "Always", None, None),
    ("double_migration", "v1", "Sometimes", 21,
     "mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEM))"),
    ("double_migration", "v1", "Sometimes", 14, "invariant I2 violated (A memsw)"),
    ("double_migration", "3.17", "Always", None, None),
    ("double_migration", "legacy", "Always", None, None),
    ("legacy_case_d_race", "legacy", "Sometimes", 6, "invariant I4 violated (P charge)"),
    ("legacy_case_d_race", "3.17", "Always", None, None),
    ("legacy_case_d_race", "v1", "Always", None, None),
])
def test_scenario_verdicts(name, model, verdict, steps, failure):
    status, out, err = mcg("explore", f"scenarios/explore/{name}.mcg", "--model", model)
    assert err == ""
    assert f"verdict: {verdict}:" in out
    assert status == (0 if verdict == "Always" else 1)
    if steps is None:
        assert "counterexample" not in out and "failure:" not in out
    else:
        (found,) = [s for what, s in counterexamples(out) if what.startswith(failure)]
        assert len(found) == steps


def test_the_unlocked_race_needs_both_try_charges_before_a_commit(tmp_path):
    """Sequential orders are clean: run (file order) passes; the explorer finds the bug only in
    interleavings where both tasks reserve before the first commit."""
    status, out, _ = mcg("run", "scenarios/explore/swapin_unlocked.mcg", "--model", "3.17")
    assert status == 0, out
    _, out, _ = mcg("explore", "scenarios/explore/swapin_unlocked.mcg", "--model", "3.17")
    ((_, steps),) = counterexamples(out)
    tries = [i for i, s in enumerate(steps) if "try_charge Q" in s]
    commits = [i for i, s in enumerate(steps) if "commit Q" in s]
    assert len(tries) == 2 and len(commits) == 2 and max(tries) < min(commits)


# -- bounds ----------------------------------------------------------------------------------
def test_a_bound_hit_is_incomplete_with_exit_3():
    status, out, _ = mcg("explore", "scenarios/explore/double_migration.mcg", "--model", "3.17",
                         "--max-states", "10")
    assert status == 3
    assert "verdict: incomplete (the search hit --max-states 10); so far" in out
    assert "states: 10 explored, 10 distinct" in out
    status, out, _ = mcg("explore", "scenarios/explore/double_migration.mcg", "--model", "3.17",
                         "--max-depth", "5")
    assert status == 3
    assert "incomplete (the search hit --max-depth 5)" in out
    assert "max depth 5;" in out


def test_the_time_bound_is_incomplete_too():
    status, out, _ = mcg("explore", "benchmarks/explore_swapin_three.mcg", "--model", "3.17",
                         "--no-reduction", "--max-time", "0.000001")
    assert status == 3
    assert "verdict: incomplete (the search hit --max-time 1e-06); so far" in out


def test_a_bound_hit_in_a_golden_case_is_not_a_verdict():
    from memcglang import golden

    case = golden.Case(EXPLORE / "double_migration.mcg", "3.17", verdict="Always")
    assert golden.check(case).ok
    text, status = golden.explored(case.scenario, "3.17")
    assert status == 0 and "verdict: Always:" in text


# -- counterexamples replay ------------------------------------------------------------------
@pytest.mark.parametrize("name, model, which", [("swapin_unlocked", "3.17", 1),
                                                ("double_migration", "v1", 1),
                                                ("double_migration", "v1", 2),
                                                ("legacy_case_d_race", "legacy", 1)])
def test_the_counterexample_replays_step_for_step(name, model, which, tmp_path):
    replay = tmp_path / f"{name}.replay"
    status, out, _ = mcg("explore", f"scenarios/explore/{name}.mcg", "--model", model,
                         "-o", str(replay), "--counterexample", str(which))
    assert status == 1
    assert f"replay: {replay} (memcglang run --replay {replay}), counterexample {which}" in out
    found = counterexamples(out)[which - 1][1]
    status, trace, err = mcg("run", "--replay", str(replay))
    assert err == "" and status == 1
    assert trace.splitlines()[-1].endswith("-- FAILED")
    replayed = [line for line in trace.splitlines() if "] " in line and line.startswith(
        f"scenarios/explore/{name}.mcg:")]
    assert replayed == found
    # the failure is reported at the last step, with the same report as the explorer's
    block = out.split("\ncounterexample")[which].split("\nreplay:")[0]
    tail_explore = block.split(f"  {len(found)}. ")[1].splitlines()[1:]
    tail_run = trace.split(replayed[-1])[1].split("state:")[0].splitlines()[1:]
    assert [s.strip() for s in tail_explore] == [s.strip() for s in tail_run if s.strip()
                                                 and "the run stops" not in s]


def test_a_replay_that_does_not_fit_is_a_usage_error(tmp_path):
    replay = tmp_path / "r.replay"
    mcg("explore", "scenarios/explore/swapin_unlocked.mcg", "--model", "3.17", "-o",
        str(replay))
    text = replay.read_text().replace("\nY 0 0", "\nY 3 0", 1)
    replay.write_text(text)
    status, _, err = mcg("run", "--replay", str(replay))
    assert status == 2 and "does not fit the scenario" in err
    replay.write_text("scenario scenarios/explore/swapin_unlocked.mcg\nmodel 3.17\nZ 0 0\n")
    status, _, err = mcg("run", "--replay", str(replay))
    assert status == 2 and "no thread Z" in err
    replay.write_text("nonsense\n")
    status, _, err = mcg("run", "--replay", str(replay))
    assert status == 2 and "not a replay line" in err
    status, _, err = mcg("run", "--replay", str(tmp_path / "missing.replay"))
    assert status == 2 and "cannot read it" in err


# -- the search itself -----------------------------------------------------------------------
TWO_INDEPENDENT = """memcg A
memcg B
alloc P anon
alloc Q anon
thread X {
  get P
  put P
}
thread Y {
  get Q
  put Q
}
expect P refcount 1
expect Q refcount 1
"""


def test_the_state_graph_of_two_independent_threads(tmp_path):
    """Two threads of two steps: a 3 x 3 grid of states, 12 edges; reduced to one line of 5."""
    full = search(TWO_INDEPENDENT, "3.17", tmp_path, reduction=False)
    assert (full.distinct, full.transitions, full.good, full.verdict) == (9, 12, 1, "Always")
    reduced = search(TWO_INDEPENDENT, "3.17", tmp_path)
    assert (reduced.distinct, reduced.good, reduced.verdict) == (5, 1, "Always")


@pytest.mark.parametrize("name", ["swapin_unlocked", "swapin_locked", "double_migration",
                                  "legacy_case_d_race"])
@pytest.mark.parametrize("model", ["v1", "3.17", "legacy"])
def test_reduction_keeps_every_outcome(name, model):
    """With and without partial-order reduction: the same verdict, final states, failures
    (by kind and place) and cuts; the shortest counterexample has the same length."""
    program, resolution = load(str(EXPLORE / f"{name}.mcg"))
    results = []
    for reduction in (True, False):
        m = Machine(program, resolution, model)
        _records, failed = m.setup()
        if failed:
            pytest.skip(f"{name} does not set up under {model}")
        results.append(Search(m, reduction=reduction).run())
    on, off = results
    assert on.distinct <= off.distinct
    assert (on.verdict, on.good, on.bad) == (off.verdict, off.good, off.bad)
    assert set(on.failures) == set(off.failures)
    assert set(on.cuts) == set(off.cuts)
    a, b = on.counterexample(), off.counterexample()
    assert (a is None) == (b is None)
    if a is not None:
        assert len(a.schedule) == len(b.schedule)


def _final_states(text: str, model: str, tmp_path: Path, reduction: bool):
    path = tmp_path / "s.mcg"
    path.write_text(text, encoding="utf-8")
    program, resolution = load(str(path))
    m = Machine(program, resolution, model)
    m.setup()
    search = Search(m, reduction=reduction)
    finals = set()
    judge = search._final

    def final(new):
        finals.add(m.engine.fingerprint())
        judge(new)

    search._final = final
    return search.run(), finals


# found by a fuzz of explore (generated threads): the end of a zap releases the pages its
# unmaps deferred, so another thread's step on P1 does not commute with it
ZAP_END_RELEASES = """swapaccount off
memcg A
memcg B
fault P1 in A
fault P2 in A
map P2
thread T0 {
  get P1
  put P1
  alloc T0x2 anon
  isolate P1
  migrate P1 to T0x2
  reclaim P2 as T0x3E
}
thread T1 {
  cow P2 to T1x4 in B
  zap {
    unmap P1
  }
  fault T1x6 in A huge
  split T1x6
  unmap T1x6
}
expect P1 memcg root
"""


@pytest.mark.parametrize("model", ["3.17", "legacy"])  # (v1: swap accounting off is I3)
def test_reduction_reaches_every_final_state(model, tmp_path):
    on, finals_on = _final_states(ZAP_END_RELEASES, model, tmp_path, True)
    off, finals_off = _final_states(ZAP_END_RELEASES, model, tmp_path, False)
    assert finals_on == finals_off and len(finals_off) == 3
    assert (on.verdict, on.good, on.bad, set(on.failures)) == (
        off.verdict, off.good, off.bad, set(off.failures))
    assert on.distinct < off.distinct


def test_the_shortest_counterexample_is_found_with_reduction(tmp_path):
    """The reduction delays a failure behind steps that commute with it (X's steps on R come
    first); the second search, without reduction and one step short of it, finds the
    shortest path: Y's only step fails at once."""
    text = ("memcg A\nfault P in A\nalloc R anon\n"
            "thread X {\n  get R\n  put R\n  get P\n  put P\n}\n"
            "thread Y {\n  charge P to A\n}\n")
    on = search(text, "3.17", tmp_path)
    off = search(text, "3.17", tmp_path, reduction=False)
    program, resolution = load(str(tmp_path / "s.mcg"))
    m = Machine(program, resolution, "3.17")
    m.setup()
    unshortened = Search(m)._search()  # the reduced search alone
    assert len(unshortened.counterexample().schedule) == 3
    label = "mem_cgroup_commit_charge: VM_BUG_ON_PAGE(PageLRU(page) && !lrucare) (memcg)"
    assert set(on.failures) == set(off.failures) == {label}
    assert len(on.counterexample().schedule) == len(off.counterexample().schedule) == 1
    assert on.shortening is not None and off.shortening is None


def test_reduction_shrinks_a_three_thread_search():
    program, resolution = load(str(ROOT / "benchmarks" / "explore_three_cpus.mcg"))
    counts = {}
    for reduction in (True, False):
        m = Machine(program, resolution, "3.17")
        m.setup()
        res = Search(m, reduction=reduction).run()
        assert res.verdict == "Always"
        counts[reduction] = res.distinct
    assert counts[True] * 3 < counts[False]


def test_charges_commute_unless_a_limit_orders_them(tmp_path):
    """Two faults in two memcgs: their counters chain up to root, but two charges of counters
    without a limit commute (usage adds up, max_usage ends the same), so one order is enough:
    2 + 2 phases give a line of 5 states, not the 3 x 3 grid. With a limit, the order can
    decide which charge fails: both orders are taken."""
    text = "memcg A%s\nmemcg B\nthread X {\n  fault P in A\n}\nthread Y {\n  fault Q in B\n}\n"
    assert search(text % "", "3.17", tmp_path, reduction=False).distinct == 9
    assert search(text % "", "3.17", tmp_path).distinct == 5
    limited = search(text % " limit=4", "3.17", tmp_path)
    assert 5 < limited.distinct <= 9 and limited.verdict == "Always"


def test_a_charge_and_an_uncharge_do_not_commute(tmp_path):
    """max_usage tells their order: both orders are kept, and they end in different states."""
    text = ("memcg A\nfault P in A\nthread X {\n  fault Q in A\n}\nthread Y {\n"
            "  unmap P\n}\n")
    res = search(text, "3.17", tmp_path)
    assert res.good == 2  # max_usage 2 (charge first) or 1 (uncharge first)


def test_equal_states_made_of_recreated_objects_have_one_fingerprint():
    """Backtracking re-creates pages and zap blocks as new objects: the fingerprint must see
    the same state (it did not when a tuple of pages hashed by object identity)."""
    e = Engine("3.17")
    e.create_memcg("A")
    mark = e.mark()
    seen = []
    for _ in range(3):
        e.fault("R", "A")
        e.zap_begin()
        e.unmap("R")
        seen.append(e.fingerprint())
        assert e.fingerprint() == e.full_fingerprint()
        e.rollback_to(mark)
    assert len(set(seen)) == 1


def test_a_deadlock_is_reported(tmp_path):
    text = """memcg A
cache P in A
cache Q in A
thread X {
  lock P
  lock Q
  unlock Q
  unlock P
}
thread Y {
  lock Q
  lock P
  unlock P
  unlock Q
}
"""
    res = search(text, "3.17", tmp_path)
    assert res.verdict == "Sometimes"
    (label,) = [f for f in res.failures if f.startswith("deadlock")]
    assert label == "deadlock: X lock Q; Y lock P"
    assert len(res.failures[label].schedule) == 2


def test_a_deadlock_replays_as_one(tmp_path):
    path = tmp_path / "abba.mcg"
    path.write_text("memcg A\nfault P in A\ncache F in A\nthread T0 {\n  lock P\n  lock F\n"
                    "  unlock F\n  unlock P\n}\nthread T1 {\n  lock F\n  lock P\n  unlock P\n"
                    "  unlock F\n}\n")
    replay = tmp_path / "abba.replay"
    status, out, _ = mcg("explore", str(path), "-o", str(replay))
    assert status == 1 and "counterexample (2 steps): deadlock: T0 lock F; T1 lock P" in out
    status, trace, _ = mcg("run", "--replay", str(replay))
    assert status == 1
    assert "  deadlock: no thread can move; waiting: T0 lock F; T1 lock P" in trace.splitlines()
    assert trace.splitlines()[-1].endswith("-- FAILED")
    status, out, _ = mcg("explore", str(path), "-o", str(replay), "--counterexample", "2")
    assert status == 2
    assert "replay: there is no counterexample 2 (there is 1); nothing written" in out


def test_a_lock_held_at_the_thread_end_is_a_scenario_error(tmp_path):
    text = "memcg A\ncache P in A\nthread X {\n  lock P\n}\nthread Y {\n  get P\n  put P\n}\n"
    res = search(text, "3.17", tmp_path)
    assert res.verdict == "Never"
    assert any("X ends but holds the lock of P" in f for f in res.failures)


def test_kernel_error_values_are_outcomes_and_expect_makes_one_required(tmp_path):
    """A migration's -EAGAIN is the kernel's retry, not a failure; `expect error EAGAIN:` in a
    thread makes it required in every interleaving."""
    base = """memcg A
fault P in A
isolate P
alloc Q anon
get P
thread M {
  %s
}
thread H {
  put P
}
expect A usage 1
"""
    res = search(base % "migrate P to Q", "3.17", tmp_path)
    assert res.verdict == "Always" and res.good == 2  # migrated, or not (P kept)
    res = search(base % "expect error EAGAIN: migrate P to Q", "3.17", tmp_path)
    assert res.verdict == "Sometimes"
    assert res.failures["expect failed"].threads == {"M"}


def test_an_expect_inside_a_thread_turns_reduction_off(tmp_path):
    res = search(TWO_INDEPENDENT.replace("  put P\n", "  expect P refcount 2\n  put P\n"),
                 "3.17", tmp_path)
    assert res.reduction is False and res.verdict == "Always" and res.distinct == 12


def test_a_file_without_threads_is_a_usage_error():
    status, out, err = mcg("explore", "scenarios/e1_anon_fault.mcg")
    assert status == 2 and out == ""
    assert err.startswith("scenarios/e1_anon_fault.mcg:1:1: error: no `thread` block")


def test_expect_cost_or_events_is_a_usage_error(tmp_path):
    """Cost and event counters are outside the fingerprint: one path to a state stands for
    all, and paths may count them differently."""
    path = tmp_path / "c.mcg"
    path.write_text("memcg A\nthread X {\n  fault P in A\n  expect A pgpgin 1 rss 1\n}\n"
                    "expect cost res_counter 2\nexpect A usage 1 pgpgout 0\n")
    status, out, err = mcg("explore", str(path))
    assert status == 2 and out == ""
    assert f"{path}:4:12: error: explore cannot check `pgpgin`" in err
    assert f"{path}:6:1: error: explore cannot check `cost`" in err
    assert f"{path}:7:18: error: explore cannot check `pgpgout`" in err
    assert "^~~~~~~~~~~" in err


def test_stats_are_shown_only_when_asked():
    _, out, _ = mcg("explore", "scenarios/explore/swapin_locked.mcg", "--model", "3.17")
    assert "states/s" not in out
    _, out, _ = mcg("explore", "scenarios/explore/swapin_locked.mcg", "--model", "3.17",
                    "--stats")
    assert re.search(r"^time: [0-9.]+ s, [0-9,]+ distinct states/s$", out, re.M)


# -- composites phase by phase -----------------------------------------------------------
class PhasedEngine(Engine):
    """Runs every composite as its phases, each a step of its own (as the explorer does), and
    rolls them all back on a kernel assertion (as the atomic step does)."""


def _phased(verb: str):
    def run(self, *args):
        c = path_context(verb, args)
        mark = self.mark()
        results: list[StepResult] = []
        try:
            for i in range(len(PATHS[verb])):
                r = self.phase(verb, i, c)
                results.append(r)
                if r.outcome != "ok" or c["end"]:
                    break
        except VmBug:
            self.rollback_to(mark)
            raise
        finally:
            self.release_mark(mark)
        last = results[-1]
        return StepResult(last.outcome, last.error, [x for r in results for x in r.changes],
                          [x for r in results for x in r.events],
                          [v for r in results for v in r.violations], results[0].start)
    return run


for _verb in PATHS:
    setattr(PhasedEngine, _verb, _phased(_verb))


SCENARIOS = sorted(p for p in (ROOT / "scenarios").rglob("*.mcg")
                   if explore_of(p.read_text())[0] is None  # not an explore case
                   and "golden: none" not in p.read_text())


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(ROOT)))
def test_composites_run_as_phases_give_the_same_outcomes(path):
    """Every state between two phases is one the invariants accept: the library's scenarios
    give the same outcome, statement by statement, with composites split into phases."""
    assert set(PATH_ARGS) == set(PATHS)
    program, resolution = load(str(path))
    models = re.search(r"#\s*models\s*:(.*)", path.read_text()).group(1).split()
    for model in models:
        atomic = [(r.line, r.outcome, r.messages) for r in
                  Interpreter(program, resolution, model).run()]
        phased_interp = Interpreter(program, resolution, model)
        phased_interp.engine = PhasedEngine(model, resolution.swapaccount,
                                            track_fingerprint=False)
        phased = [(r.line, r.outcome, r.messages) for r in phased_interp.run()]
        assert phased == atomic, f"{path.name} under {model}"


@pytest.mark.parametrize("model", ["v1", "3.17", "legacy"])
def test_reclaim_keeps_a_page_a_truncation_took_out_of_the_cache(tmp_path, model):
    """shrink_page_list: `if (!mapping || !__remove_mapping(...)) goto keep_locked` — a page
    truncated between reclaim's isolation and its lock has no mapping: reclaim keeps it and
    the walker's reference keeps it alive (found by the review of `hunt`'s races)."""
    f = tmp_path / "gone.mcg"
    f.write_text("swapaccount on\nmemcg A\ncache F1 in A\nget F1\n\nthread kswapd {\n"
                 "  reclaim F1\n}\n\nthread truncator {\n  truncate F1\n}\n\n"
                 "expect F1 refcount 1\n")
    status, out, _ = mcg("explore", str(f), "--model", model)
    assert status == 0 and "verdict: Always" in out
