"""Golden-output tests: each scenario's plain trace under each model of its `# models:` line,
compared with `NAME.MODEL.out` beside it (LANGUAGE §6, docs/golden-tests.md).

A golden file is what `memcglang run NAME.mcg --model MODEL --plain` prints when run from the
scenario's own directory: the trace names the file by its base name, so goldens do not depend
on where the tests run from. A case passes when the run passes (its `expect` lines hold) and
its trace equals the golden file byte for byte. Files are written only when updating, and
only for runs that pass: an `expect` inside a scenario beats a golden line.

A scenario of threads whose leading comment says `# explore: 3.17 Always, legacy Sometimes`
is a case of `memcglang explore` per model instead: it passes when the search's verdict is
the one named and its report equals `NAME.MODEL.explore.out`.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import attrs

MODELS = ("v1", "3.17", "legacy")
MODELS_LINE = re.compile(r"#\s*models\s*:(.*)")
NO_GOLDEN = re.compile(r"#\s*golden\s*:\s*none\b")
EXPLORE_LINE = re.compile(r"#\s*explore\s*:(.*)")
VERDICTS = ("Always", "Sometimes", "Never")
VERDICT_LINE = re.compile(r"verdict: (?:incomplete .*; so far )?(\w+):")
STATEMENT_LINE = re.compile(r"(?P<file>[^\s:]+\.mcg):(?P<line>\d+)(\[[^\]]*\])?: ")


@attrs.frozen
class Case:
    """One scenario under one model; `model` is None for a scenario that names no models."""

    scenario: Path
    model: str | None
    problem: str | None = None  # why it cannot run at all
    kept: bool = True  # False: `# golden: none`, the run's expects are the whole test
    verdict: str | None = None  # an explore case: the verdict it must give

    @property
    def golden(self) -> Path:
        return golden_path(self.scenario, self.model, self.verdict is not None)

    @property
    def id(self) -> str:
        return f"{self.scenario}::{self.model}" if self.model else str(self.scenario)


@attrs.frozen
class Stale:
    """A golden file beside a scenario for a model its `# models:` line does not name."""

    scenario: Path
    golden: Path

    @property
    def id(self) -> str:
        return f"{self.scenario}::{self.golden.name}"


@attrs.frozen
class Result:
    """What checking a case found. `status`: passed, failed, created, updated, removed."""

    status: str
    report: str = ""  # for a failure: what went wrong, the diff

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def golden_path(scenario: Path, model: str | None, explore: bool = False) -> Path:
    return scenario.with_name(f"{scenario.stem}.{model}{'.explore' if explore else ''}.out")


def leading_comment(text: str):
    """The stripped lines of a scenario's leading comment (blank lines included)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return
        yield stripped


def models_of(text: str) -> tuple[list[str], str | None]:
    """The models of a scenario's leading `# models:` comment, and a problem if it has none or
    names a model that does not exist."""
    for stripped in leading_comment(text):
        m = MODELS_LINE.match(stripped)
        if m:
            names = [n for n in re.split(r"[\s,]+", m.group(1).strip()) if n]
            unknown = [n for n in names if n not in MODELS]
            if unknown:
                return [], (f"`# models:` names {', '.join(unknown)}, which is not a model "
                            f"(models: {', '.join(MODELS)})")
            if not names:
                return [], "`# models:` names no model"
            return list(dict.fromkeys(names)), None
    return [], ("no `# models:` line in the leading comment: say which models this scenario "
                "runs under, e.g. `# models: v1 3.17`")


def explore_of(text: str) -> tuple[dict[str, str] | None, str | None]:
    """The `# explore: MODEL VERDICT, …` line of a leading comment (None without one), and a
    problem if it is malformed."""
    for stripped in leading_comment(text):
        m = EXPLORE_LINE.match(stripped)
        if m is None:
            continue
        found: dict[str, str] = {}
        for item in m.group(1).split(","):
            words = item.split()
            if len(words) != 2 or words[0] not in MODELS or words[1] not in VERDICTS:
                return {}, (f"`# explore:` item {item.strip()!r} is not `MODEL VERDICT` "
                            f"(models: {', '.join(MODELS)}; verdicts: {', '.join(VERDICTS)})")
            found[words[0]] = words[1]
        return found, None
    return None, None


def golden_kept(text: str) -> bool:
    """False when the leading comment says `# golden: none`: a scenario whose trace is too
    long to read (a 1,000-page munmap) is pinned by its expect lines alone."""
    return not any(NO_GOLDEN.match(line) for line in leading_comment(text))


def scenario_cases(scenario: Path) -> tuple[list[Case], list[Stale]]:
    """The cases of one scenario file, and golden files beside it that no case owns."""
    try:
        text = scenario.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        return [Case(scenario, None, f"cannot read it: {e.strerror}")], []
    verdicts, problem = explore_of(text)
    if problem:
        return [Case(scenario, None, problem)], []
    if verdicts is not None:
        stale = [Stale(scenario, path) for m in MODELS
                 for path in (golden_path(scenario, m), golden_path(scenario, m, True))
                 if path.exists() and (m not in verdicts or not path.name.endswith(
                     ".explore.out"))]
        return [Case(scenario, m, verdict=v) for m, v in verdicts.items()], stale
    models, problem = models_of(text)
    if problem:
        return [Case(scenario, None, problem)], []
    kept = golden_kept(text)
    stale = [Stale(scenario, golden_path(scenario, m)) for m in MODELS
             if (m not in models or not kept) and golden_path(scenario, m).exists()]
    return [Case(scenario, m, kept=kept) for m in models], stale


def discover(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The .mcg files named or found (recursively, sorted) under `paths`; and usage errors."""
    files: list[Path] = []
    errors: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.rglob("*.mcg")))
        elif p.is_file() and p.suffix == ".mcg":
            files.append(p)
        elif p.exists():
            errors.append(f"{p}: not a .mcg scenario or a directory")
        else:
            errors.append(f"{p}: no such file or directory")
    return list(dict.fromkeys(files)), errors


def _load(scenario: Path, text: str | None):
    """(program, resolution) of the scenario file, or of `text` as if it were that file;
    raises StaticErrors."""
    from memcglang.runner import load, load_text

    if text is None:
        return load(str(scenario), name=scenario.name)
    return load_text(text, scenario.name)


def actual(scenario: Path, model: str, quiet: bool = False, text: str | None = None
           ) -> tuple[str, int]:
    """The plain trace of `scenario` under `model` as its golden file would hold it (with
    `quiet`, only its failures and verdict), and the run's exit status (0 passed, 1 failed,
    2 static error or model not available). `text`: the scenario's text, not yet written."""
    from memcglang.lang.diagnostics import StaticErrors
    from memcglang.runner import ModelUnavailable, choose_model, trace

    lines: list[str] = []
    try:
        program, resolution = _load(scenario, text)
        chosen = choose_model(program, resolution, model)
    except StaticErrors as e:
        return e.format() + "\n", 2
    except ModelUnavailable as e:
        return str(e) + "\n", 2
    failed = trace(program, resolution, chosen, "plain", quiet, lines.append)
    return "".join(line + "\n" for line in lines), 1 if failed else 0


def explored(scenario: Path, model: str, text: str | None = None) -> tuple[str, int]:
    """`memcglang explore`'s plain report of `scenario` under `model` as its golden file would
    hold it, and its exit status. `text`: the scenario's text, not yet written."""
    from memcglang.explore.report import explore
    from memcglang.lang.diagnostics import StaticErrors

    lines: list[str] = []
    try:
        program, resolution = _load(scenario, text)
        status = explore(program, resolution, model, lines.append)
    except StaticErrors as e:
        return e.format() + "\n", 2
    return "".join(line + "\n" for line in lines), status


def check(case: Case, update: bool = False) -> Result:
    """Run one case, compare it with its golden file; with `update`, write the golden file of
    a passing run when it differs."""
    if case.problem:
        return Result("failed", f"{case.scenario}: {case.problem}")
    if case.verdict is not None:
        text, status = explored(case.scenario, case.model)
        m = VERDICT_LINE.search(text)
        got = m.group(1) if m and status != 3 else None
        if got != case.verdict:
            return Result("failed", f"{case.scenario}: explore under {case.model} should say "
                                    f"{case.verdict}, but:\n{text}")
        status = 0
    else:
        text, status = actual(case.scenario, case.model)
    if status == 2:
        return Result("failed", f"{case.scenario}: does not run under {case.model}:\n{text}")
    if not case.kept:
        if status == 1:
            return Result("failed", _failed_run(case, text, None, False))
        return Result("passed")
    golden = case.golden
    try:
        expected = golden.read_text(encoding="utf-8")
    except FileNotFoundError:
        expected = None
    if status == 1:
        return Result("failed", _failed_run(case, text, expected, update))
    if expected == text:
        return Result("passed")
    if update:
        golden.write_text(text, encoding="utf-8")
        return Result("created" if expected is None else "updated")
    if expected is None:
        return Result("failed", f"{case.scenario}: no golden file {golden.name} for model "
                                f"{case.model} (write it with `memcglang test --update "
                                f"{case.scenario}`, then read it)")
    return Result("failed", mismatch(case, expected, text))


def check_stale(stale: Stale, update: bool = False) -> Result:
    if update:
        stale.golden.unlink()
        return Result("removed")
    return Result("failed", f"{stale.golden}: golden file that {stale.scenario.name} does not "
                            "keep (its `# models:` line does not name the model, or it says "
                            "`# golden: none`); remove it with --update")


def _failed_run(case: Case, text: str, expected: str | None, update: bool) -> str:
    failures, _ = actual(case.scenario, case.model, quiet=True)
    head = (f"{case.scenario}: the scenario fails under {case.model}"
            + (" (golden file not updated)" if update else "") + ":")
    report = [head, *("  " + line for line in failures.splitlines())]
    if expected is not None and expected != text:
        report += ["", mismatch(case, expected, text)]
    return "\n".join(report)


def mismatch(case: Case, expected: str, text: str) -> str:
    """Where the trace first differs (scenario path and line) and the unified diff."""
    old, new = expected.splitlines(), text.splitlines()
    pairs = enumerate(zip(old, new, strict=False))
    first = next((i for i, (a, b) in pairs if a != b), min(len(old), len(new)))
    where = f"{case.scenario}"
    for line in reversed(new[: first + 1] or [""]):
        m = STATEMENT_LINE.match(line)
        if m and m.group("file") == case.scenario.name:
            where = f"{case.scenario}:{m.group('line')}"
            statement = line[m.end():]
            break
    else:
        statement = None
    head = f"{where}: trace under {case.model} differs from {case.golden.name}"
    if statement is not None:
        head += f" (first difference in the trace of `{statement}`)"
    diff = difflib.unified_diff(old, new, f"{case.golden} (golden)",
                                f"{case.scenario} under {case.model} (actual)", lineterm="")
    return head + "\n" + "\n".join(diff)
