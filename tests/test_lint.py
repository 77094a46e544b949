"""The code base stays ruff-clean (configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the [test] extra)")
    result = subprocess.run(
        [ruff, "check", "memcglang", "grammar", "tests", "benchmarks", "setup.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_tour_runs_and_is_deterministic():
    run = [sys.executable, "-m", "memcglang"]
    first = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    second = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert "tour under model 3.17" in first.stdout
    assert "invariant violated: I1 A usage: is 2, expected 1" in first.stdout
    assert "Traceback" not in first.stderr


def test_cli_tour_under_v1_shows_the_kernel_assertion():
    result = subprocess.run(
        [sys.executable, "-m", "memcglang", "--model", "v1"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "kernel BUG (memcg): mem_cgroup_migrate: VM_BUG_ON_PAGE(PageLRU(page))" in result.stdout


def test_cli_rejects_an_unknown_model_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "memcglang", "--model", "4.0"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr
