"""memcglang/golden.py and `memcglang test`: cases, comparison, updates, reports."""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import pytest
from golden_helpers import TINY

from memcglang import cli, golden

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

def write(dirpath: Path, name: str, text: str) -> Path:
    path = dirpath / name
    path.write_text(text, encoding="utf-8")
    return path


def run_test(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    paths = [a for a in args if a != "--update"]
    status = cli.test(paths, "--update" in args, out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return write(tmp_path, "tiny.mcg", TINY)


# --- the `# models:` line ---------------------------------------------------------------------

@pytest.mark.parametrize("text, models", [
    ("# models: v1 3.17\nmemcg A\n", ["v1", "3.17"]),
    ("# header\n#\n#models:3.17, v1\n", ["3.17", "v1"]),
    ("\n# models: v1 v1 legacy\n", ["v1", "legacy"]),
])
def test_models_line_is_read_from_the_leading_comment(text, models):
    assert golden.models_of(text) == (models, None)


@pytest.mark.parametrize("text, problem", [
    ("memcg A\n# models: v1\n", "no `# models:` line"),
    ("# just a header\n", "no `# models:` line"),
    ("# models:\n", "names no model"),
    ("# models: v1 3.16\n", "names 3.16, which is not a model"),
])
def test_a_missing_or_wrong_models_line_is_a_problem(text, problem):
    models, found = golden.models_of(text)
    assert models == [] and problem in found


# --- discovery ----------------------------------------------------------------------------------

def test_discover_recurses_sorted_and_refuses_what_is_not_a_scenario(tmp_path):
    (tmp_path / "b").mkdir()
    for rel in ("z.mcg", "a.mcg", "b/c.mcg", "b/notes.txt"):
        (tmp_path / rel).write_text("# models: v1\n")
    files, errors = golden.discover([str(tmp_path)])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.mcg", "b/c.mcg", "z.mcg"]
    assert errors == []
    files, errors = golden.discover([str(tmp_path / "b/notes.txt"), str(tmp_path / "nope")])
    assert files == []
    assert errors == [f"{tmp_path / 'b/notes.txt'}: not a .mcg scenario or a directory",
                      f"{tmp_path / 'nope'}: no such file or directory"]


# --- `memcglang test` ---------------------------------------------------------------------------

def test_a_missing_golden_file_fails_and_nothing_is_written(tiny):
    status, out, _ = run_test("tiny.mcg")
    assert status == 1
    assert "FAILED tiny.mcg::v1" in out and "no golden file tiny.v1.out" in out
    assert out.rstrip().endswith("0 passed, 2 failed")
    assert sorted(os.listdir(tiny.parent)) == ["tiny.mcg"]


def test_update_creates_the_golden_files_then_they_pass(tiny):
    status, out, _ = run_test("--update", "tiny.mcg")
    assert status == 0
    assert out.splitlines() == ["created tiny.v1.out", "created tiny.3.17.out",
                                "2 passed, 0 failed (2 created)"]
    status, out, _ = run_test("tiny.mcg")
    assert (status, out) == (0, "2 passed, 0 failed\n")
    status, out, _ = run_test("--update", "tiny.mcg")
    assert (status, out) == (0, "2 passed, 0 failed (no golden file changed)\n")


def test_the_golden_file_is_the_plain_trace_run_from_the_scenario_directory(tiny):
    run_test("--update", "tiny.mcg")
    out = io.StringIO()
    assert cli.run(["tiny.mcg"], "3.17", "plain", False, out, io.StringIO()) == 0
    assert (tiny.parent / "tiny.3.17.out").read_text() == out.getvalue()


def test_golden_files_do_not_depend_on_the_working_directory(tiny, monkeypatch):
    run_test("--update", "tiny.mcg")
    monkeypatch.chdir("/")
    status, out, _ = run_test(str(tiny))
    assert (status, out) == (0, "2 passed, 0 failed\n")


def test_one_changed_number_fails_with_the_line_and_a_unified_diff(tiny):
    run_test("--update", "tiny.mcg")
    g = tiny.parent / "tiny.3.17.out"
    text = g.read_text()
    assert text.count("A.rss: 0 -> 1\n") == 1
    g.write_text(text.replace("A.rss: 0 -> 1\n", "A.rss: 0 -> 2\n"))
    status, out, _ = run_test("tiny.mcg")
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == "FAILED tiny.mcg::3.17"
    assert lines[1] == ("tiny.mcg:4: trace under 3.17 differs from tiny.3.17.out "
                        "(first difference in the trace of `fault P in A`)")
    assert "--- tiny.3.17.out (golden)" in lines and "+++ tiny.mcg under 3.17 (actual)" in lines
    assert "-    A.rss: 0 -> 2" in lines and "+    A.rss: 0 -> 1" in lines
    assert lines[-1] == "1 passed, 1 failed"
    assert g.read_text() != text  # reporting touched nothing
    status, out, _ = run_test("--update", "tiny.mcg")
    assert out.splitlines() == ["updated tiny.3.17.out", "2 passed, 0 failed (1 updated)"]
    assert g.read_text() == text


def test_a_failing_expect_fails_even_when_the_golden_file_agrees(tiny):
    run_test("--update", "tiny.mcg")
    bad = TINY.replace("expect A usage 0 rss 0", "expect A usage 0 rss 5")
    tiny.write_text(bad)
    status, out, _ = run_test("--update", "tiny.mcg")
    assert status == 1
    assert "tiny.mcg: the scenario fails under v1 (golden file not updated):" in out
    assert "    tiny.mcg:9: expect A rss: expected 5, actual 0" in out
    assert "expect A usage 0 rss 5" not in (tiny.parent / "tiny.v1.out").read_text()


def test_a_static_error_fails_the_case_with_the_diagnostic(tiny):
    tiny.write_text(TINY.replace("fault P in A", "fault P in B"))
    status, out, _ = run_test("tiny.mcg")
    assert status == 1
    assert "tiny.mcg: does not run under v1:" in out
    assert "tiny.mcg:4:" in out and "B" in out


def test_a_scenario_without_a_models_line_fails_once(tiny):
    tiny.write_text(TINY.replace("# models: v1 3.17\n", ""))
    status, out, _ = run_test("tiny.mcg")
    assert status == 1
    assert "FAILED tiny.mcg\ntiny.mcg: no `# models:` line" in out
    assert out.rstrip().endswith("0 passed, 1 failed")


def test_a_stale_golden_file_fails_and_update_removes_it(tiny):
    run_test("--update", "tiny.mcg")
    tiny.write_text(TINY.replace("# models: v1 3.17", "# models: 3.17"))
    status, out, _ = run_test("tiny.mcg")
    assert status == 1
    assert "FAILED tiny.mcg::tiny.v1.out" in out
    assert "golden file that tiny.mcg does not keep" in out
    status, out, _ = run_test("--update", "tiny.mcg")
    assert (status, out.splitlines()) == (0, ["removed tiny.v1.out",
                                              "2 passed, 0 failed (1 removed)"])
    assert not (tiny.parent / "tiny.v1.out").exists()


def test_golden_none_keeps_no_trace_and_the_expects_decide(tiny):
    tiny.write_text(TINY.replace("# models: v1 3.17\n", "# models: v1 3.17\n# golden: none\n"))
    status, out, _ = run_test("tiny.mcg")
    assert (status, out) == (0, "2 passed, 0 failed\n")
    assert sorted(os.listdir(tiny.parent)) == ["tiny.mcg"]
    assert run_test("--update", "tiny.mcg")[1] == "2 passed, 0 failed (no golden file changed)\n"
    tiny.write_text(tiny.read_text().replace("expect A usage 0 rss 0", "expect A usage 3 rss 0"))
    status, out, _ = run_test("tiny.mcg")
    assert status == 1 and "expect A usage: expected 3, actual 0" in out
    (tiny.parent / "tiny.v1.out").write_text("left over\n")
    status, out, _ = run_test("tiny.mcg")
    assert "FAILED tiny.mcg::tiny.v1.out" in out


def test_usage_errors_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_test() == (2, "", "memcglang test: no scenarios/ directory here: name the "
                                 "scenarios or directories to test\n")
    status, _, err = run_test("missing.mcg")
    assert (status, err) == (2, "memcglang test: missing.mcg: no such file or directory\n")
    (tmp_path / "empty").mkdir()
    assert run_test("empty")[0] == 2


def test_the_command_line_runs_it(tiny):
    run_test("--update", "tiny.mcg")
    assert cli.main(["test", "tiny.mcg"]) == 0
    assert cli.main(["test", str(tiny.parent)]) == 0


# --- the library ------------------------------------------------------------------------------

LIBRARY = sorted(SCENARIOS.rglob("*.mcg"))


def test_the_library_has_at_least_30_scenarios():
    assert len(LIBRARY) >= 30


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_every_scenario_opens_with_models_and_a_semantics_reference(path):
    text = path.read_text(encoding="utf-8")
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    verdicts, problem = golden.explore_of(text)
    assert problem is None
    assert any("SEMANTICS" in line for line in header), "the header names no SEMANTICS section"
    assert len(header) >= 3, "the header should say what kernel behaviour the scenario shows"
    if verdicts is not None:  # an explore case: its golden is the search's report
        for m, verdict in verdicts.items():
            report = golden.golden_path(path, m, explore=True).read_text()
            assert f"verdict: {verdict}:" in report
        return
    models, problem = golden.models_of(text)
    assert problem is None
    if not golden.golden_kept(text):  # `# golden: none`: the expects are the whole test
        assert "expect cost" in text or text.count("\nexpect ") >= 3
        return
    for m in models:  # the plugin compares them; here: they exist and pin something
        verdict = golden.golden_path(path, m).read_text().splitlines()[-1]
        counts = re.search(r"(\d+) expects passed, (\d+) failed", verdict)
        passed, failed = int(counts[1]), int(counts[2])
        assert passed >= 1 and failed == 0 and not verdict.endswith("FAILED"), verdict


def test_changing_one_number_in_a_library_golden_file_fails(tmp_path, monkeypatch):
    src = SCENARIOS / "e3_swap_out_in.mcg"
    shutil.copy(src, tmp_path)
    for m in ("v1", "3.17", "legacy"):
        shutil.copy(golden.golden_path(src, m), tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_test("e3_swap_out_in.mcg")[0] == 0
    g = tmp_path / "e3_swap_out_in.v1.out"
    g.write_text(g.read_text().replace("A.swap: 0 -> 1", "A.swap: 0 -> 2", 1))
    status, out, _ = run_test("e3_swap_out_in.mcg")
    assert status == 1
    line = src.read_text().splitlines().index("swapout P") + 1
    assert f"e3_swap_out_in.mcg:{line}: trace under v1 differs" in out
    assert "-    A.swap: 0 -> 2\n+    A.swap: 0 -> 1" in out
