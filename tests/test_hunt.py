"""`memcglang hunt`: what it finds under each model, how it shrinks and writes it, and that
every statement it generates is one the kernel could run (docs/hunt.md)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import mcg

from memcglang import cli
from memcglang.hunt import DEFAULT_BUDGET
from memcglang.hunt.paths import KINDS, Stmt
from memcglang.hunt.race import check as race_check
from memcglang.hunt.render import Lines, setup_lines
from memcglang.hunt.report import hunt
from memcglang.hunt.search import Path, Setup, generate, replay
from memcglang.lang import ast
from memcglang.lang.interpreter import engine_call
from memcglang.runner import load_text

E5 = ("I1", "mem_cgroup_migrate")
E5_SCENARIO = """\
swapaccount on
memcg A

cache F1 in A
# FUSE splice (fuse_try_move_page): replace_page_cache_page
get F1
lock F1
alloc G1 file
lock G1
expect violation: replace_cache F1 with G1
unlock F1
unlock G1
"""


def quiet(model: str, seed: int, runs: int, out_dir=None):
    return hunt(model, seed, runs, 0.0, None if out_dir is None else str(out_dir))


# -- 3.17: the replace_page_cache_page leak (SEMANTICS §6 E5) -------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_317_finds_the_replace_page_cache_leak_from_several_seeds(seed):
    """Within 20 runs (a few hundredths of a second; the default budget is a minute), shrunk
    to at most 10 statements, the leak at the replacement."""
    h = quiet("3.17", seed, 20)
    assert h.refused_runs == 0
    assert not any(f.unverified for f in h.findings.values())
    finding = h.findings[E5]
    assert finding.run < 20
    assert finding.size <= 10
    assert "expect violation: replace_cache" in finding.text
    assert "I1 A usage: is 1, expected 0" in finding.text
    assert DEFAULT_BUDGET >= 60


def test_the_shrunk_leak_is_the_textbook_case():
    """Seed 1's run 4 (6 paths, 10 statements) shrinks to SEMANTICS E5 bullet 2: a cached
    page on the LRU, held and locked, replaced by a new locked page."""
    finding = quiet("3.17", 1, 10).findings[E5]
    assert (finding.run, finding.paths, finding.statements) == (4, 6, 10)
    head, _, body = finding.text.partition("swapaccount on\n")
    assert "swapaccount on\n" + body == E5_SCENARIO
    assert head.startswith("# models: 3.17\n# Found by `memcglang hunt --model 3.17 --seed 1`: "
                           "run 4, after 6 kernel paths\n# (10 statements); shrunk to 8 "
                           "statements, 2 pages, 1 memcg.\n# I1 broken in mem_cgroup_migrate "
                           "from replace_page_cache_page:\n")
    assert finding.trace.endswith("9 statements, 16 events, 1 expects passed, 0 failed\n")


# -- v1: what SEMANTICS §2.12 and the July 2014 fixes say it got wrong -------------------------
@pytest.fixture(scope="module")
def v1_hunt(tmp_path_factory):
    out = tmp_path_factory.mktemp("v1")
    status, stdout, stderr = mcg("hunt", "--model", "v1", "--runs", "2100", "-o", str(out))
    return status, stdout, stderr, out


def test_v1_findings(v1_hunt):
    status, out, err, _ = v1_hunt
    assert status == 1 and err == ""
    assert "generator bugs" not in out and "does not reproduce" not in out
    titles = [line for line in out.splitlines() if line[:1].isdigit()]
    assert titles == [
        # §2.12 #5: both pages asserted off the LRU, lrucare or not: the old page ...
        "1. mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU(oldpage)) (memcg) from "
        "replace_page_cache_page",
        # §2.12 #3: PCG_MEMSW set at commit with swap accounting off
        "2. I3 broken in mem_cgroup_commit_charge from add_to_page_cache_lru",
        # ... and the new page (stolen from another file's cache by a splice, on the LRU)
        "3. mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU(newpage)) (memcg) from "
        "replace_page_cache_page",
        # §2.12 #8 (E7): swapout of an uncharged readahead page, its entry recorded already
        "4. mem_cgroup_swapout: VM_BUG_ON_PAGE(oldid) (memcg) from shrink_page_list",
        # July 2014 fix, point 2: the old page of a migration that survives keeps PCG_USED;
        # reclaim swaps it out and records a memsw charge it no longer holds
        "5. I2 broken in mem_cgroup_swapout from shrink_page_list in an interleaving of "
        "threads",
        # July 2014 fix, point 1: the double migration (Hugh Dickins' VM_BUG_ON)
        "6. mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEM)) (memcg) from "
        "migrate_pages in an interleaving of threads",
    ]


def test_the_double_migration_race_is_written_as_an_explore_case(v1_hunt):
    *_, out = v1_hunt
    text = (out / "06-bug-mem_cgroup_migrate.mcg").read_text()
    assert text.startswith("# explore: v1 Sometimes\n")
    threads = text[text.index("thread "):]
    assert threads == """\
thread walker {
  get F1
  put F1
}

thread migration {
  # migration (compaction, NUMA, hot-remove): isolate, a new page, migrate_pages
  isolate F1
  alloc N1 file
  migrate F1 to N1
}

thread migration2 {
  # migration (compaction, NUMA, hot-remove): isolate, a new page, migrate_pages
  isolate F1
  alloc N2 file
  migrate F1 to N2
}
"""
    report = (out / "06-bug-mem_cgroup_migrate.v1.explore.out").read_text()
    assert "verdict: Sometimes" in report
    assert "mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEM)) (memcg)" in report


def test_written_findings_pass_as_golden_tests(v1_hunt):
    *_, out = v1_hunt
    assert len(list(out.glob("*.mcg"))) == 6
    status, stdout, _ = mcg("test", str(out))
    assert status == 0
    assert "6 passed, 0 failed" in stdout


# -- legacy: SEMANTICS §4.3 F2 case D --------------------------------------------------------
def test_legacy_finds_the_reuse_swap_page_uncharge():
    h = quiet("legacy", 1, 100)
    assert h.refused_runs == 0
    (finding,) = h.findings.values()
    assert finding.failure.label == "I4"
    assert finding.failure.memcg_function == "mem_cgroup_uncharge_swapcache"
    assert finding.text.endswith("fault P1 in A\nget P1\nreclaim P1 as E1\n"
                                 "expect violation: swapin E1 as P1 in A reuse\n")


# -- the generator keeps the callers' contracts ------------------------------------------------
@pytest.mark.parametrize("model", ["v1", "3.17", "legacy"])
def test_no_step_is_refused_as_an_mm_contract_break(model):
    h = quiet(model, 7, 1500)
    assert h.refused_runs == 0, h.refusals


def flat_calls(program: ast.Program) -> list[tuple]:
    """The engine calls a scenario's statements make, in order (blocks as begin and end)."""
    out: list[tuple] = []

    def walk(stmt) -> None:
        if isinstance(stmt, ast.ExpectOutcome):
            stmt = stmt.stmt
        if isinstance(stmt, (ast.Zap, ast.Batch)):
            kind = "zap" if isinstance(stmt, ast.Zap) else "batch"
            out.append((f"{kind}_begin", ()))
            for inner in stmt.body:
                walk(inner)
            out.append((f"{kind}_end", ()))
        elif not isinstance(stmt, (ast.Memcg, ast.Swapaccount, ast.Model)):
            method, args = engine_call(stmt, {})
            out.append((method, args))

    for stmt in program.stmts:
        walk(stmt)
    return out


@pytest.mark.parametrize("model", ["v1", "3.17", "legacy"])
def test_each_statement_is_the_engine_call_it_was_generated_for(model):
    """The language reads back each generated statement as the very engine call (the text is
    the inverse of the interpreter's engine_call), over every kind of path."""
    seen = set()
    for run in range(150):
        play = generate(model, 11, run)
        sequential = [p for p in play.paths if p.thread is None]
        lines = Lines()
        for path in sequential:
            lines.path(path)
            seen.add(path.kind)
        text = "\n".join(setup_lines(play.setup) + lines.lines) + "\n"
        program, _ = load_text(text, "gen.mcg")
        calls = [(s.method, s.args) for p in sequential for s in p.stmts]
        expected = [(m, tuple(a)) for m, a in calls]
        got = [(m, tuple(a)[: len(b)]) for (m, a), (_, b) in zip(flat_calls(program), calls,
                                                                strict=True)]
        assert got == expected
    assert seen >= set(KINDS) - {"walker"}


# -- shrinking ----------------------------------------------------------------------------------
def test_a_deletion_takes_the_paths_that_depended_on_it_along():
    setup = Setup(True, (("A", None, None, None),))
    paths = [Path("cache", ("F1", "A")), Path("truncate", ("F1",)),
             Path("fault", ("P1", "A", False)), Path("zap", ("P1",))]
    play = replay("3.17", setup, [paths[1], paths[2], paths[3]])  # F1 never cached
    assert [p.kind for p in play.paths] == ["fault", "zap"]
    play = replay("3.17", setup, [paths[0], paths[2], Path("zap", ("F1", "P1"))])
    assert play.paths[-1] == Path("zap", ("P1",))  # F1 is not mapped: the zap keeps P1 only


def test_a_race_whose_threads_fail_one_after_the_other_is_not_a_race():
    """The E5 replacement in a thread fails however the threads are ordered: the sequential
    runs report it, the race does not."""
    setup = Setup(True, (("A", None, None, None),))
    paths = [Path("cache", ("F1", "A")),
             Path("replace_cache", ("F1", None, "G1", False, False), "fuse"),
             Path("walker", ("F1",), "walker")]
    play = race_check("3.17", setup, paths)
    assert play.failure is None


def test_a_race_that_needs_the_interleaving_is_one():
    setup = Setup(True, (("A", None, None, None),))
    paths = [Path("cache", ("F1", "A")),
             Path("migrate", ("F1", "N1", "file", False), "migration"),
             Path("migrate", ("F1", "N2", "file", False), "migration"),
             Path("walker", ("F1",), "walker")]
    play = race_check("v1", setup, paths)
    assert play.failure is not None and play.failure.interleaved
    assert play.failure.label == "mem_cgroup_migrate: VM_BUG_ON_PAGE(!(pc->flags & PCG_MEM))"
    assert race_check("3.17", setup, paths).failure is None  # 3.17 clears the old page


# -- the command line ------------------------------------------------------------------------------
def test_same_seed_same_output_and_exit_statuses():
    first = mcg("hunt", "--model", "3.17", "--runs", "30", "--seed", "4")
    assert first == mcg("hunt", "--model", "3.17", "--runs", "30", "--seed", "4")
    assert first[0] == 1 and "findings: 1 distinct" in first[1]
    assert mcg("hunt", "--model", "3.17", "--runs", "30", "--seed", "5")[1] != first[1]
    status, out, _ = mcg("hunt", "--model", "3.17", "--runs", "3", "--seed", "1")
    assert status == 0 and out.endswith("no finding\n")


@pytest.mark.parametrize("args, message", [
    (["--runs", "0"], "--runs must be at least 1"),
    (["--seed", "-1"], "--seed must be a number from 0"),
    (["--budget", "0"], "--budget must be more than 0 seconds"),
    (["--runs", "3", "--budget", "3"], "not allowed with argument"),
    (["--runs", "x"], "invalid int value"),
])
def test_usage_errors(args, message):
    status, out, err = mcg("hunt", "--model", "v1", *args)
    assert status == 2 and out == "" and message in err


def test_usage_errors_about_the_output_directory(tmp_path):
    (tmp_path / "f").write_text("")
    status, _, err = mcg("hunt", "--model", "v1", "--runs", "1", "-o", str(tmp_path / "f"))
    assert status == 2 and "not a directory" in err
    status, _, err = mcg("hunt", "--runs", "1")
    assert status == 2 and "--model" in err


def test_a_budget_bounds_the_search():
    status, out, _ = mcg("hunt", "--model", "legacy", "--budget", "0.5", "--stats")
    assert status in (0, 1) and "time: " in out and " runs/s" in out


def test_block_end_expect_judges_the_end(tmp_path):
    """`expect OUTCOME: zap {…}` judges the block's end (the deferred releases), as the
    hunt writes it for a finding at a `}`."""
    f = tmp_path / "z.mcg"
    f.write_text("memcg A\nfault P in A\nexpect violation: zap {\n  unmap P\n}\n")
    status, out, _ = mcg("run", str(f), "--model", "3.17", "--plain")
    assert status == 1
    assert "z.mcg:3: expect violation failed: the statement ended ok" in out
    f.write_text("memcg A\nfault P in A\n\nthread t {\n  expect violation: batch {\n"
                 "    unmap P\n  }\n}\n")
    status, out, _ = mcg("explore", str(f), "--model", "3.17")
    assert status == 1 and "failure: expect failed" in out


def test_the_statement_text_of_each_method():
    assert Stmt("swapin", ("E1", "Q1", None, True)).text == "swapin E1 as Q1 reuse"
    assert Stmt("set_limits", ("A", None)).text == "set A limit=max"
    assert Stmt("zap_begin").text == "zap {" and Stmt("batch_end").text == "}"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_and_the_rates():
    """On a terminal: a status line on stderr (runs, statements, findings, time), rewritten
    in place and cleared at the end; the summary gets the time and rates."""
    out, err = Terminal(), Terminal()
    status = cli.hunt("3.17", 2, 0.3, None, None, False, out, err)
    assert status == 1
    progress = err.getvalue()
    assert progress.startswith("\rhunt 3.17 seed 2: ") and progress.endswith("\r\033[K")
    assert " runs, " in progress and " statements, 1 finding (" in progress
    assert "time: " in out.getvalue() and "races searched: " in out.getvalue()


def test_same_output_in_processes_with_other_string_hashes():
    """Nothing depends on the order of a set of strings: two processes with other hash seeds
    print the same bytes (700 runs of v1 take in races and their shrinking)."""
    outs = []
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        done = subprocess.run([sys.executable, "-m", "memcglang", "hunt", "--model", "v1",
                               "--runs", "700"], capture_output=True, text=True, env=env,
                              check=False)
        assert done.returncode == 1, done.stderr
        outs.append(done.stdout)
    assert outs[0] == outs[1] and "in an interleaving of threads" in outs[0]


def test_ctrl_c_ends_the_search_with_the_summary():
    proc = subprocess.Popen([sys.executable, "-m", "memcglang", "hunt", "--model", "3.17",
                             "--budget", "300"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # past the start-up: the search is running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and err == ""
    assert " statements (interrupted)\n" in out and "1. I1 broken in mem_cgroup_migrate" in out
