"""The curated scenarios (scenarios/*.mcg) pass under every model their `# models:` line names.

Each file's leading comment names the models it applies to (LANGUAGE §2: `# models: v1 3.17`).
For each (file, model) pair the file is run in-process as `memcglang run FILE --model M
--quiet`: the exit status must be 0 and the verdict line must report 0 failed expects and at
least one passed. Every file must also pass `memcglang check`.

A file that hits a known interpreter, parser or resolver bug is written as LANGUAGE.md says
and listed in KNOWN_BUGS: its cases are strict xfails, so they start failing (XPASS) once the
bug is fixed and the entry has to go.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memcglang import cli

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
FILES = sorted(SCENARIOS.glob("*.mcg"))

MODELS_LINE = re.compile(r"#\s*models:\s*(.*)")
VERDICT = re.compile(
    r"(?P<statements>\d+) statements, (?P<events>\d+) events, "
    r"(?P<passed>\d+) expects passed, (?P<failed>\d+) failed(?P<flag> -- FAILED)?"
)

# file name -> reason; every case of that file is a strict xfail
KNOWN_BUGS: dict[str, str] = {}


def models_of(path: Path) -> list[str]:
    """The models named by the `# models:` line of the file's leading comment block."""
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        m = MODELS_LINE.match(stripped)
        if m:
            return m.group(1).split()
    return []


def marks(path: Path) -> list:
    reason = KNOWN_BUGS.get(path.name)
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def run_cases():
    cases = []
    for path in FILES:
        for model in models_of(path) or ["<no # models: line>"]:
            cases.append(pytest.param(path, model, id=f"{path.stem}-{model}", marks=marks(path)))
    return cases


def check_cases():
    return [pytest.param(path, id=path.stem, marks=marks(path)) for path in FILES]


def test_there_are_scenarios():
    assert FILES, f"no scenarios in {SCENARIOS}"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in FILES])
def test_every_scenario_names_its_models(path):
    models = models_of(path)
    assert models, f"{path.name}: no `# models:` line in the leading comment"
    assert set(models) <= set(cli.MODELS), f"{path.name}: unknown models in {models}"
    assert len(models) == len(set(models)), f"{path.name}: a model named twice: {models}"


@pytest.mark.parametrize(("path", "model"), run_cases())
def test_scenario_passes(path, model, capsys):
    assert model in cli.MODELS, f"{path.name}: no `# models:` line"
    status = cli.main(["run", str(path), "--model", model, "--quiet"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert status == 0, out + err
    lines = out.splitlines()
    assert lines, err
    verdict = VERDICT.fullmatch(lines[-1])
    assert verdict, f"no verdict line: {lines[-1]!r}"
    assert verdict["flag"] is None, lines[-1]
    assert int(verdict["failed"]) == 0, out
    assert int(verdict["passed"]) >= 1, lines[-1]


@pytest.mark.parametrize("path", check_cases())
def test_scenario_checks(path, capsys):
    status = cli.main(["check", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert status == 0, out + err
    assert out.startswith(f"{path}: ok ("), out
