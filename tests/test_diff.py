"""`memcglang diff FILE --models A,B`: lockstep alignment, folding, what is reported as
differing, the plain, JSON and terminal outputs, exit codes (memcglang/diff.py, docs/diff.md)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memcglang import cli
from memcglang.lang import interpreter
from memcglang.runner import load, trace

ROOT = Path(__file__).resolve().parents[1]
MCG = [sys.executable, "-m", "memcglang"]
FOLD = re.compile(r"= (?P<where>\S+): (?P<n>\d+) statements? identical$")


def diff(*args: str) -> tuple[int, str, str]:
    """`memcglang diff ARGS` in this process, from the repository root (plain output)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            status = cli.main(["diff", *args])
        finally:
            sys.stdout, sys.stderr = stdout, stderr
    finally:
        os.chdir(old)
    return status, out.getvalue(), err.getvalue()


def statements_part(text: str) -> list[str]:
    """The lines before the summary (whose differing rows are marked `!` too)."""
    lines = text.splitlines()
    return lines[: next(i for i, line in enumerate(lines) if line.startswith("summary"))]


def block(text: str, statement: str, nth: int = 0) -> list[str]:
    """The lines of the `nth` differing statement whose `!` line ends with `statement` (found
    by text: the scenarios' line numbers move as they grow), that line first."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines)
              if line.startswith("! ") and line.endswith(statement)]
    start = starts[nth]
    end = next((i for i in range(start + 1, len(lines))
                if not lines[i].startswith("  ")), len(lines))
    return lines[start:end]


def after(text: str, lines: list[str]) -> str:
    """The line after a block."""
    all_lines = text.splitlines()
    return all_lines[all_lines.index(lines[0]) + len(lines)]


def verdict(scenario: str, model: str) -> str:
    """The verdict line `memcglang run SCENARIO --model MODEL` ends with."""
    lines: list[str] = []
    program, resolution = load(str(ROOT / scenario))
    trace(program, resolution, model, "plain", True, lines.append)
    return lines[-1]


def write(tmp_path: Path, text: str, name: str = "s.mcg") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_scenario_without_model_differences_is_one_folded_line(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in A\nexpect A usage 1 rss 1\nget P\nput P\n"
                           "show A\n")
    status, out, err = diff(path, "--models", "v1,3.17")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f"# memcglang diff 1: {path}, models v1 and 3.17"
    assert lines[1] == f"= {path}:1-6: 6 statements identical"
    assert lines[2].startswith("summary")
    assert not any(line.startswith("!") for line in lines)


def test_identical_statements_are_folded_between_the_differences():
    status, out, _ = diff("scenarios/e1_anon_fault.mcg", "--models", "v1,3.17")
    assert status == 0
    lines = statements_part(out)
    marks = [line[0] for line in lines if line[:1] in ("=", "!")]
    assert marks.count("=") >= 5
    assert marks.count("!") < marks.count("=") * 2
    # a fold is never followed by another fold: runs are maximal
    assert all(not (x == y == "=") for x, y in zip(marks, marks[1:], strict=False))
    folds = [FOLD.match(line) for line in lines if line.startswith("=")]
    assert all(folds) and max(int(m.group("n")) for m in folds) >= 5
    assert all(re.fullmatch(r"scenarios/e1_anon_fault\.mcg:\d+(-\d+)?", m.group("where"))
               for m in folds)
    # the JSON has every statement: the folded ones add up with the differing ones
    _, text, _ = diff("scenarios/e1_anon_fault.mcg", "--models", "v1,3.17", "--json")
    statements = [json.loads(line) for line in text.splitlines()[1:-1]]
    folded = sum(int(m.group("n")) for m in map(FOLD.match, lines) if m)
    assert len(statements) == folded + marks.count("!")


def test_e4_migrate_shows_v1s_statistics_churn():
    status, out, _ = diff("scenarios/e4_migrate.mcg", "--models", "v1,3.17")
    assert status == 0
    migrate = block(out, ": migrate O to N")
    assert "  state: A.pgpgin A 2 B 1, A.pgpgout A 1 B 0" in migrate
    # v1 uncharges the old page's statistics when it is freed; 3.17 moved them at migration
    assert "  A| mem_cgroup_uncharge(O)" in migrate
    assert "  A|   A.pgpgin: 1 -> 2" in migrate
    assert not any(line.startswith("  B|") and "pgpgin" in line for line in migrate)
    # where each kernel calls mem_cgroup_migrate: 3.17 in move_to_new_page before the ptes
    # are restored, v1 after page_add_anon_rmap(N) restored them
    assert "  B  move_to_new_page(N, O)" in migrate and "  A  page_add_anon_rmap(N)" in migrate
    summary = out[out.index("\nsummary"):].splitlines()
    assert re.fullmatch(r"! A\.pgpgin +2 +1", next(x for x in summary if "A.pgpgin" in x))
    assert re.fullmatch(r"  A\.usage +1 +1", next(x for x in summary if "A.usage" in x))
    scenario = "scenarios/e4_migrate.mcg"
    assert summary[-2:] == [f"verdict v1: {verdict(scenario, 'v1')}",
                            f"verdict 3.17: {verdict(scenario, '3.17')}"]


def test_e4_migrate_in_the_other_order_swaps_the_sides():
    _, out, _ = diff("scenarios/e4_migrate.mcg", "--models", "3.17,v1")
    assert out.startswith("# memcglang diff 1: scenarios/e4_migrate.mcg, models 3.17 and v1\n")
    assert "  state: A.pgpgin A 1 B 2, A.pgpgout A 0 B 1" in out
    skipped = block(out, ": only v1: expect A pgpgin 2 pgpgout 1")
    assert skipped[1:] == ["  A| skipped under 3.17", "  B| (ran: expect, no trace lines)"]


def test_e5_a_bug_under_v1_only_and_a_violation_under_317_only():
    _, out, _ = diff("scenarios/e5_replace_on_lru.mcg", "--models", "v1,3.17")
    violation = block(out, ": expect violation: replace_cache O with N")
    assert violation[1] == "  violation under 3.17 only"
    assert violation[2] == "  A| skipped under v1"
    assert "  B| invariant violated: I1 A usage: is 1, expected 0 (res usage differs from the "\
           "charges its pages, reservations and windows hold)" in violation
    bug = block(out, ": expect bug: replace_cache O with N")
    assert bug[1] == "  bug under v1 only"
    assert "  A| kernel BUG (memcg): mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU(oldpage))" in bug
    assert bug[-1] == "  B| skipped under 3.17"
    # the statements of an `only` block run under one model only
    inside = block(out, ": unlock N")
    m = re.fullmatch(r"  A\| \(not run under v1: in the `only` at line (\d+)\)", inside[1])
    assert m, inside
    source = (ROOT / "scenarios/e5_replace_on_lru.mcg").read_text().splitlines()
    assert source[int(m.group(1)) - 1] == "only 3.17 {"
    assert inside[2:] == ["  B| unlock_page(N)", "  B|   N.page: locked -> none",
                          "  state: N.page A locked B none"]


def test_batch_window_munmap_cost_after_the_munmap():
    _, out, _ = diff("scenarios/batch_window_munmap.mcg", "--models", "v1,3.17")
    munmap = block(out, ": }")  # the first zap's end: tlb_finish_mmu, release_pages
    assert munmap[-1] == "  state: cost.res_counter A 32 B 18, cost.batches A 0 B 1"
    assert "  B| mem_cgroup_uncharge_list(P7, P6, P5, P4, P3, P2, P1, P0)" in munmap
    assert sum(line.startswith("  A| mem_cgroup_uncharge(P") for line in munmap) == 8
    # the cost still differs afterwards, but the same set of fields: folded, not repeated
    assert FOLD.match(after(out, munmap)), after(out, munmap)
    assert re.search(r"^= scenarios/batch_window_munmap\.mcg:(\d+)\[i=0\]-(\d+)\[i=7\]: "
                     r"16 statements identical$", out, re.M)


def test_a_statement_with_the_same_trace_is_reported_when_the_differing_set_changes():
    _, out, _ = diff("scenarios/e1_anon_fault.mcg", "--models", "v1,3.17")
    # v1 charges root at try_charge (reported_usage), 3.17 only at commit
    assert block(out, ": try_charge P to A")[1:] == ["  state: root.reported_usage A 1 B 0"]
    assert block(out, ": commit P")[1:] == ["  state equal again: root.reported_usage"]


def test_a_run_that_stops_leaves_the_others_statements_to_it(tmp_path):
    path = write(tmp_path, "memcg A\nmemcg B\ncache O in A\nalloc N file\nlock N\n"
                           "try_charge N to B\nadd_to_cache N\ncommit N\ndelete_from_cache N\n"
                           "isolate O\nlock O\nreplace_cache O with N\nexpect A usage 1\n"
                           "unlock O\nunlock N\n")
    status, out, _ = diff(path, "--models", "v1,3.17")
    assert status == 0  # v1 stopped at a kernel assertion: that is output, not an error
    stop = block(out, f"! {path}:12: replace_cache O with N")
    assert stop[1] == "  bug under v1 only"
    assert "  A| the run stops here" in stop
    rest = block(out, f"! {path}:13: expect A usage 1")
    assert rest[1:] == [f"  A| (not run: the run under v1 stopped at {path}:12)",
                         "  B| (ran: expect, no trace lines)"]
    assert out.splitlines()[-2].endswith("0 failed -- FAILED")
    assert not out.splitlines()[-1].endswith("FAILED")


def test_plain_and_json_are_byte_for_byte_reproducible():
    """Two processes with different hash seeds: nothing may depend on set or hash order."""
    outputs = []
    for seed, mode, scenario in ((1, "--plain", "e5_replace_charged"),
                                 (2, "--plain", "e5_replace_charged"),
                                 (1, "--json", "batch_window_munmap"),
                                 (3, "--json", "batch_window_munmap")):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        result = subprocess.run([*MCG, "diff", f"scenarios/{scenario}.mcg", "--models",
                                 "v1,3.17", mode], capture_output=True, text=True, cwd=ROOT,
                                env=env)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3]
    assert "!" in outputs[0] and outputs[0] != outputs[2]


def test_json_parses_and_has_the_same_statements_as_plain():
    _, plain, _ = diff("scenarios/e5_replace_on_lru.mcg", "--models", "v1,3.17")
    _, text, _ = diff("scenarios/e5_replace_on_lru.mcg", "--models", "v1,3.17", "--json")
    objects = [json.loads(line) for line in text.splitlines()]
    head, statements, tail = objects[0], objects[1:-1], objects[-1]
    assert head == {"file": "scenarios/e5_replace_on_lru.mcg", "format": "memcglang diff",
                    "models": ["v1", "3.17"], "swap_accounting": True, "version": 1}
    shown = [line[2:] for line in statements_part(plain) if line.startswith("! ")]
    assert [f"{s['pos']}: {s['statement']}" for s in statements if s["differs"]] == shown
    bug = next(s for s in statements if s["statement"].endswith("expect bug: replace_cache O "
                                                                "with N"))
    assert bug["a"]["problems"] == ["bug"] and bug["b"]["outcome"] == "skipped"
    assert bug["tags"] == ["bug under v1 only"]
    inside = next(s for s in statements if s["statement"] == "unlock N")
    assert inside["a"] is None and inside["not_run"].startswith("not run under v1")
    assert inside["b"]["lines"] == ["unlock_page(N)", "  N.page: locked -> none"]
    assert {"field": "root.cache", "a": "0", "b": "-1", "differs": True} in tail["summary"]
    assert [v["model"] for v in tail["verdicts"]] == ["v1", "3.17"]
    for line in text.splitlines():
        assert list(json.loads(line)) == sorted(json.loads(line))


def test_the_terminal_view_puts_the_models_side_by_side(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # rich's width: two columns of 49
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        status = cli.diff("scenarios/e4_migrate.mcg", "3.17,v1", "rich", out, err)
    finally:
        os.chdir(old)
    assert status == 0, err.getvalue()
    text = out.getvalue()
    assert re.search(r"^= scenarios/e4_migrate\.mcg:\d+-\d+: \d+ statements identical", text,
                     re.M)
    row = next(line for line in text.splitlines() if "O.flags: USED|MEM|MEMSW" in line)
    assert re.search(r"-> none .*O\.flags: USED\|MEM\|MEMSW -> USED", row), row
    assert re.search(r"A\.pgpgin 1 +A\.pgpgin 2", text)
    assert f"verdict v1: {verdict('scenarios/e4_migrate.mcg', 'v1')}" in text


@pytest.mark.parametrize("models, message", [
    ("v1", "--models names two different models"),
    ("v1,v1", "--models names two different models"),
    ("v1,3.17,legacy", "--models names two different models"),
    ("v1,v2", "unknown model v2 (models: v1, 3.17, legacy)"),
])
def test_models_that_are_not_two_known_ones_are_a_usage_error(models, message):
    status, out, err = diff("scenarios/e4_migrate.mcg", "--models", models)
    assert (status, out) == (2, "")
    assert message in err


def test_a_model_that_is_not_available_yet_is_exit_2(monkeypatch):
    # legacy stands in for any model named by the language but not built yet
    monkeypatch.setattr(interpreter, "AVAILABLE_MODELS", ("v1", "3.17"))
    status, out, err = diff("scenarios/e4_migrate.mcg", "--models", "v1,legacy")
    assert (status, out) == (2, "")
    assert err.strip() == ("scenarios/e4_migrate.mcg: error: model legacy is not available yet "
                           "(models: v1, 3.17)")


def test_a_model_that_is_available_just_works():
    status, out, _ = diff("scenarios/e4_migrate.mcg", "--models", "legacy,3.17")
    assert status == 0
    assert out.startswith("# memcglang diff 1: scenarios/e4_migrate.mcg, models legacy and 3.17")


def test_with_no_file_it_diffs_the_tour_as_run_runs_it():
    status, out, _ = diff("--models", "v1,3.17")
    assert status == 0
    assert out.startswith("# memcglang diff 1: tour.mcg, models v1 and 3.17\n")
    assert "  bug under v1 only" in out  # the tour's E5: v1 asserts, 3.17 leaks


def test_a_syntax_error_is_exit_2_with_the_diagnostic(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in\n")
    status, out, err = diff(path, "--models", "v1,3.17")
    assert (status, out) == (2, "")
    assert f"{path}:2:11: error:" in err


def test_a_missing_file_or_option_is_exit_2_without_a_traceback(tmp_path):
    missing = subprocess.run([*MCG, "diff", str(tmp_path / "nope.mcg"), "--models", "v1,3.17"],
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert "No such file or directory" in missing.stderr
    assert "Traceback" not in missing.stderr
    no_models = subprocess.run([*MCG, "diff", str(tmp_path / "nope.mcg")], capture_output=True,
                               text=True)
    assert no_models.returncode == 2
    assert "--models" in no_models.stderr and "Traceback" not in no_models.stderr
