"""The pytest plugin (entry point `pytest11: memcglang`): golden tests as pytest items.

Every `.mcg` file under a directory named `scenarios` is collected, one item per model of its
`# models:` line (ids like `scenarios/swapin_reuse.mcg::3.17`), plus one failing item per
stale golden file. An item runs exactly what `memcglang test` runs (memcglang/golden.py);
a failure shows the scenario path and line and the diff, never this plugin's traceback.
`pytest --mcg-update` writes the golden files of passing runs that differ and lists them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memcglang import golden


def pytest_addoption(parser):
    group = parser.getgroup("memcglang", "memcglang golden scenarios")
    group.addoption("--mcg-update", action="store_true", default=False,
                    help="write the golden files (NAME.MODEL.out) of passing scenario runs "
                         "that differ, remove stale ones, and list them")


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".mcg" or "scenarios" not in file_path.parts[:-1]:
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self):
        # Reports name the scenario as the user would, relative to where pytest started.
        here = self.config.invocation_params.dir
        shown = Path(os.path.relpath(self.path, here)) if self.path.is_relative_to(here) \
            else self.path
        cases, stale = golden.scenario_cases(shown)
        for case in cases:
            yield ScenarioItem.from_parent(self, name=case.model or "models", case=case)
        for s in stale:
            yield ScenarioItem.from_parent(self, name=s.golden.name, case=s)


class ScenarioFailed(Exception):
    """A golden mismatch, a failing run or a missing golden file: the report is the text."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case

    def runtest(self):
        update = self.config.getoption("mcg_update")
        try:
            if isinstance(self.case, golden.Stale):
                result = golden.check_stale(self.case, update)
            else:
                result = golden.check(self.case, update)
        except Exception as e:  # a bug of ours: one line, not the plugin's traceback
            raise ScenarioFailed(f"{self.case.scenario}: internal error: {type(e).__name__}: "
                                 f"{e} (please report it with this scenario)") from None
        if result.status in ("created", "updated", "removed"):
            self.user_properties.append(("mcg_golden", f"{result.status} {self.case.golden}"))
        if not result.ok:
            raise ScenarioFailed(result.report)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, self.nodeid


_changed: list[str] = []


def pytest_runtest_logreport(report):
    # Runs in the controller under pytest-xdist too: the properties travel with the report.
    if report.when == "call":
        _changed.extend(v for k, v in report.user_properties if k == "mcg_golden")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.getoption("mcg_update"):
        return
    terminalreporter.section("memcglang golden files")
    for line in sorted(_changed) or ["no golden file changed"]:
        terminalreporter.write_line(line)
    _changed.clear()
