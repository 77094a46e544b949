"""The command line: the built-in tour, `run` outcomes and exit codes, output modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

MCG = [sys.executable, "-m", "memcglang"]


def run(*args, cwd=None, seed=None):
    env = None if seed is None else {**os.environ, "PYTHONHASHSEED": str(seed)}
    return subprocess.run([*MCG, *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize("model", ["v1", "3.17", "legacy"])
def test_the_tour_passes_and_is_byte_for_byte_reproducible(model):
    """Two processes with different hash seeds: nothing may depend on set or hash order."""
    first, second = run("--model", model, seed=1), run("run", "--model", model, seed=2)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith(f"# memcglang trace 1: tour.mcg, model {model}, swap ")
    last = first.stdout.splitlines()[-1]
    assert last.endswith(" expects passed, 0 failed"), last
    assert "Traceback" not in first.stderr


def test_the_tour_shows_the_317_leak_and_the_v1_assertion():
    leak = run("--model", "3.17").stdout
    assert "invariant violated: I1 A usage: is 2, expected 1" in leak
    bug = run("--model", "v1").stdout
    assert "kernel BUG (memcg): mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU(oldpage))" in bug
    assert "expected bug: as expected" in bug


def write(tmp_path, text, name="s.mcg"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_failed_expect_reports_and_the_run_goes_on(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in A\nexpect A usage 2 rss 1\nexpect P refcount 1\n")
    result = run(path, "--model", "3.17")
    assert result.returncode == 1
    assert f"{path}:3: expect A usage: expected 2, actual 1" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("2 expects passed, 1 failed -- FAILED")


def test_enomem_without_expect_stops_naming_memcg_usage_and_limit(tmp_path):
    path = write(tmp_path, "memcg A limit=1\nfault P in A\nfault Q in A\nfault R in A\n")
    result = run(path, "--model", "3.17")
    assert result.returncode == 1
    out = result.stdout
    assert "-ENOMEM: charge failed at A res: usage 1, limit 1 (6 attempts)" in out
    assert "the run stops here" in out
    assert f"{path}:4:" not in out


def test_expect_enomem_passes_and_failcnt_is_kept(tmp_path):
    path = write(tmp_path, "memcg A limit=1\nfault P in A\nexpect enomem: fault Q in A\n"
                           "expect A failcnt 6 usage 1\nexpect Q freed\n")
    result = run(path, "--model", "3.17")
    assert result.returncode == 0, result.stdout


def test_a_kernel_assertion_stops_with_a_dump_and_state_as_before(tmp_path):
    path = write(tmp_path, "memcg A\nalloc P anon\ncharge P to A\nshow P\n")
    result = run(path, "--model", "3.17")
    assert result.returncode == 1
    assert "kernel BUG (memcg): mem_cgroup_commit_charge: VM_BUG_ON_PAGE(!page->mapping)" in (
        result.stdout)
    assert "page:P count:1 mapcount:0 mapping:NULL kind:anon" in result.stdout
    assert "page P: flags none memcg none refcount 1" in result.stdout  # rolled back


def test_static_errors_exit_2_and_nothing_runs(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in A\nunmap Q\nalloc X\n")
    result = run(path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{path}:3:7: error: unknown page Q" in result.stderr
    assert f"{path}:4:8: error: unexpected end of line" in result.stderr


def test_only_skips_under_other_models(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in A\nonly v1: expect A pgpgin 9\n"
                           "only 3.17 {\n  expect A pgpgin 1\n}\n")
    result = run(path, "--model", "3.17")
    assert result.returncode == 0, result.stdout
    assert f"{path}:3: only v1: expect A pgpgin 9\n  skipped under 3.17" in result.stdout


def test_repeat_positions_carry_the_iteration(tmp_path):
    path = write(tmp_path, "memcg A limit=2\nrepeat 3 as i {\n  fault P{i} in A\n}\n")
    result = run(path, "--model", "3.17")
    assert result.returncode == 1
    assert f"{path}:3[i=2]: fault P{{i}} in A" in result.stdout


def test_a_thread_ending_with_a_lock_held_is_a_scenario_error(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in A\nthread t1 {\n  lock P\n}\nexpect P refcount 1\n")
    result = run(path, "--model", "3.17")
    assert result.returncode == 1
    assert "scenario error: t1 ends but holds the lock of P" in result.stdout


def test_quiet_prints_only_failures_and_the_verdict(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in A\nexpect A usage 5\n")
    result = run(path, "--quiet", "--model", "3.17")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:3: expect A usage 5",
        f"  {path}:3: expect A usage: expected 5, actual 1",
        "3 statements, 7 events, 0 expects passed, 1 failed -- FAILED",
    ]


def test_json_is_one_object_per_statement(tmp_path):
    path = write(tmp_path, "memcg A\nfault P in A\n")
    result = run(path, "--json", "--model", "3.17")
    assert result.returncode == 0
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert objects[0] == {"file": path, "format": "memcglang trace", "model": "3.17",
                          "swap_accounting": True, "version": 1}
    objects = objects[1:]
    assert [o.get("statement") for o in objects[:2]] == ["memcg A", "fault P in A"]
    assert "try_charge(A, 1)" in objects[1]["events"]
    assert objects[-1] == {"failed": False, "verdict": objects[-1]["verdict"]}


def test_a_file_can_choose_the_legacy_model(tmp_path):
    path = write(tmp_path, "model legacy\nmemcg A\nfault P in A\nexpect P flags USED\n")
    result = run(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "model legacy" in result.stdout.splitlines()[0]
    assert "mem_cgroup_charge_anon(P, A)" in result.stdout


def test_an_unknown_model_option_is_a_usage_error():
    result = run("--model", "4.0")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_the_repeat_bound_is_configurable(tmp_path):
    path = write(tmp_path, "memcg A\nrepeat 20 as i {\n  fault P{i} in A\n}\n")
    refused = run("check", path, "--max-repeat", "10")
    assert refused.returncode == 2
    assert "repeat count 20 must be a whole number from 0 to 10" in refused.stderr
    assert run("check", path).returncode == 0
    assert run(path, "--model", "3.17", "--quiet", "--max-repeat", "20").returncode == 0


def test_an_entrys_page_field_fills_its_template(tmp_path):
    """`expect E{i} page Q{i}` compares a page name, not a flag set."""
    path = write(tmp_path, "memcg A\nrepeat 2 as i {\n  fault P{i} in A\n  reclaim P{i} as E{i}\n"
                           "  readahead E{i} as Q{i}\n  expect E{i} page Q{i} count 1\n}\n")
    result = run(path, "--model", "3.17", "--quiet")
    assert result.returncode == 0, result.stdout


def test_memcg_root_hierarchy_off_unchains_root(tmp_path):
    off = write(tmp_path, "memcg root hierarchy=off\nmemcg A\nfault P in A\n"
                          "expect root usage 0\nexpect A usage 1\n", "off.mcg")
    on = write(tmp_path, "memcg A\nfault P in A\nexpect root usage 1\n", "on.mcg")
    for path in (off, on):
        result = run(path, "--model", "3.17", "--quiet")
        assert result.returncode == 0, result.stdout
