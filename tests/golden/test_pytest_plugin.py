"""The pytest plugin (pytest11 entry point), driven through pytester in a scratch project."""

from __future__ import annotations

import pytest
from golden_helpers import TINY

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester):
    """A scratch project: scenarios/tiny.mcg and scenarios/deep/other.mcg with goldens."""
    pytester.mkdir("scenarios")
    pytester.mkdir("scenarios/deep")
    pytester.path.joinpath("scenarios/tiny.mcg").write_text(TINY)
    pytester.path.joinpath("scenarios/deep/other.mcg").write_text(
        TINY.replace("# models: v1 3.17", "# models: 3.17"))
    pytester.path.joinpath("notes.mcg").write_text(TINY)  # not under scenarios/: ignored
    result = pytester.runpytest("--mcg-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    return pytester


def break_golden(pytester, rel="scenarios/tiny.3.17.out"):
    g = pytester.path / rel
    g.write_text(g.read_text().replace("A.rss: 0 -> 1\n", "A.rss: 0 -> 2\n"))


def test_collects_one_item_per_scenario_and_model(project):
    result = project.runpytest("--collect-only", "-q")
    assert sorted(result.outlines[:3]) == ["scenarios/deep/other.mcg::3.17",
                                           "scenarios/tiny.mcg::3.17", "scenarios/tiny.mcg::v1"]
    assert not any("notes.mcg" in line for line in result.outlines)


def test_update_lists_the_golden_files_it_wrote(pytester):
    pytester.mkdir("scenarios")
    pytester.path.joinpath("scenarios/tiny.mcg").write_text(TINY)
    result = pytester.runpytest("--mcg-update")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*memcglang golden files*", "created scenarios/tiny.3.17.out",
                                 "created scenarios/tiny.v1.out"])
    result = pytester.runpytest("--mcg-update")
    result.stdout.fnmatch_lines(["no golden file changed"])


def test_a_changed_number_fails_with_path_line_and_diff_and_no_plugin_traceback(project):
    break_golden(project)
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*scenarios/tiny.mcg::3.17*",
        "scenarios/tiny.mcg:4: trace under 3.17 differs from tiny.3.17.out (first difference "
        "in the trace of `fault P in A`)",
        "--- scenarios/tiny.3.17.out (golden)",
        "+++ scenarios/tiny.mcg under 3.17 (actual)",
        "-    A.rss: 0 -> 2",
        "+    A.rss: 0 -> 1",
    ])
    text = result.stdout.str()
    assert "pytest_plugin.py" not in text and "Traceback" not in text and "raise " not in text


def test_a_missing_golden_file_fails(project):
    (project.path / "scenarios/tiny.v1.out").unlink()
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*no golden file tiny.v1.out for model v1*"])


def test_k_selects_by_model_and_x_stops_at_the_first_failure(project):
    project.runpytest("-k", "3.17").assert_outcomes(passed=2)
    project.runpytest("-k", "tiny and v1").assert_outcomes(passed=1)
    break_golden(project, "scenarios/tiny.v1.out")
    break_golden(project, "scenarios/tiny.3.17.out")
    result = project.runpytest("-x")
    result.assert_outcomes(passed=1, failed=1)  # deep/other passes; tiny's first case stops it


def test_last_failed_reruns_only_the_failed_scenario(project):
    break_golden(project)
    project.runpytest().assert_outcomes(passed=2, failed=1)
    result = project.runpytest("--lf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED scenarios/tiny.mcg::3.17*"])


def test_runs_under_xdist(project):
    pytest.importorskip("xdist")
    break_golden(project)
    result = project.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*scenarios/tiny.mcg:4: trace under 3.17 differs*"])
    result = project.runpytest_subprocess("-n", "2", "--mcg-update")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["updated scenarios/tiny.3.17.out"])
    project.runpytest_subprocess("-n", "2").assert_outcomes(passed=3)


def test_a_stale_golden_file_is_a_failing_item(project):
    (project.path / "scenarios/deep/other.v1.out").write_text("old\n")
    result = project.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*scenarios/deep/other.mcg::other.v1.out*"])
