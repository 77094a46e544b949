"""The hunt's loop, its findings written as scenarios, its progress and its summary."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path as FilePath

import attrs

from memcglang.hunt.paths import Stmt
from memcglang.hunt.render import Lines, plural, setup_lines
from memcglang.hunt.search import (
    Failure,
    Play,
    Shrunk,
    execute,
    generate,
    shrink,
)


@attrs.define
class Finding:
    """One distinct finding: its first occurrence, how often it came, its shrunk scenario."""

    number: int
    failure: Failure
    run: int  # the run its scenario was shrunk from
    statements: int  # of that run, up to the finding
    paths: int
    first: int  # the run that found it first
    hits: int = 1
    reshrunk: int = 0
    shrunk: Shrunk | None = None
    text: str = ""
    trace: str = ""
    size: int = 0  # statements of the shrunk scenario
    file: FilePath | None = None
    unverified: bool = False  # the scenario does not pass as hunt checked it

    @property
    def race(self) -> bool:
        return self.shrunk.play.race is not None

    def golden(self, model: str) -> FilePath:
        """Its golden file (a race's is an explore case's)."""
        from memcglang.golden import golden_path

        return golden_path(self.file, model, self.race)

    @property
    def name(self) -> str:
        """The file's name: number, invariant (or `bug`), the memcg function involved."""
        f = self.failure
        what = "bug" if f.what == "bug" else f.label
        where = f.memcg_function.replace(" ", "-")
        return f"{self.number:02d}-{what}-{where}"


def scenario(model: str, seed: int, finding: Finding) -> str:
    """The shrunk finding as a scenario: a header saying where it came from and what broke,
    the setup, the paths with `expect …:` on every statement that does not simply succeed,
    then what closes the scenario cleanly (open blocks, page locks)."""
    shrunk = finding.shrunk
    setup, play = shrunk.setup, shrunk.play
    if play.race is not None:
        from memcglang.hunt.race import race_text, threads_of

        finding.size = sum(len(p.stmts) for p in shrunk.paths)
        head = [f"# explore: {model} {play.race.verdict}"] + origin(model, seed, finding)
        head.append(f"# `memcglang explore` finds it in some interleaving of the threads "
                    f"{', '.join(threads_of(shrunk.paths))}; run one after the other, in "
                    "any order, they do not break it.")
        return race_text(setup, play, shrunk.paths, head)
    body = Lines()
    last_path, last_stmt = play.at
    for i, path in enumerate(shrunk.paths):
        body.path(path, play.outcomes[i], last_stmt + 1 if i == last_path else None)
    for stmt in closing(play):
        outcome, _, _ = execute(play.world.engine, stmt)
        body.stmt(stmt, outcome)
    finding.size = body.statements
    head = [f"# models: {model}"] + origin(model, seed, finding)
    return "\n".join(head + setup_lines(setup) + [""] + body.lines) + "\n"


def origin(model: str, seed: int, finding: Finding) -> list[str]:
    """The header's lines after the first: where the finding came from, what broke."""
    shrunk = finding.shrunk
    f = shrunk.play.failure
    names = {a for path in shrunk.paths for stmt in path.stmts for a in stmt.args
             if isinstance(a, str) and PAGE.match(a)}
    head = [
        f"# Found by `memcglang hunt --model {model} --seed {seed}`: run {finding.run}, "
        f"after {plural(finding.paths, 'kernel path')}",
        f"# ({plural(finding.statements, 'statement')}); shrunk to "
        f"{plural(finding.size, 'statement')}, {plural(len(names), 'page')}, "
        f"{plural(len(shrunk.setup.memcgs), 'memcg')}.",
        f"# {f.title}:",
    ]
    return head + [f"#   {line}" for detail in f.details for line in detail.splitlines()]


def closing(play: Play) -> list[Stmt]:
    """What ends a scenario cut at its finding cleanly: the blocks still open are closed, the
    page locks its last path holds are released (LANGUAGE §3.7: a file may not end holding
    one)."""
    last_path, last_stmt = play.at
    stmts = play.paths[last_path].stmts[: last_stmt + 1]
    opened = [s.method for s in stmts if s.method.endswith("_begin")]
    closed = [s.method for s in stmts if s.method.endswith("_end")]
    ends = [Stmt(m.replace("_begin", "_end")) for m in opened[len(closed):]][::-1]
    engine = play.world.engine
    locked = [p.name for p in engine.pages.values() if not p.freed and p.locker == "main"]
    return ends + [Stmt("unlock", (name,)) for name in locked]


PAGE = re.compile(r"[A-DF-Z]\d+$")  # page names (E: swap entries), not tails nor memcgs


# -- the loop -----------------------------------------------------------------------------------
@attrs.define
class Hunt:
    model: str
    seed: int
    runs: int = 0
    statements: int = 0
    findings: dict = attrs.Factory(dict)  # key -> Finding, in the order found
    refusals: list = attrs.Factory(list)  # (run, Refusal)
    refused_runs: int = 0
    races: int = 0  # runs that ended in a searched race
    kinds: Counter = attrs.Factory(Counter)  # paths run, by kind
    outcomes: Counter = attrs.Factory(Counter)  # statements, by outcome
    started: float = attrs.Factory(time.monotonic)
    interrupted: bool = False

    @property
    def hits(self) -> int:
        return sum(f.hits for f in self.findings.values())


def hunt(model: str, seed: int, runs: int | None, budget: float, out_dir: str | None,
         progress=None) -> Hunt:
    """Run until `runs` runs (or `budget` seconds) are done; shrink and write each new
    finding as it is found. `progress(h)` is called now and then (a terminal's status line)."""
    h = Hunt(model, seed)
    last = 0.0
    try:
        while (h.runs < runs) if runs is not None else (
                time.monotonic() - h.started < budget):
            play = generate(model, seed, h.runs, frozenset(h.findings))
            h.statements += play.statements
            h.races += play.raced
            # a race's thread paths come last, without outcomes: they ran in explore
            for path, outcomes in zip(play.paths, play.outcomes, strict=False):
                h.kinds[path.kind] += 1
                h.outcomes.update(outcomes)
            for key, n in play.avoided.items():
                h.findings[key].hits += n
            if play.refusal is not None:
                h.refused_runs += 1
                if len(h.refusals) < 5:
                    h.refusals.append((h.runs, play.refusal))
            elif play.failure is not None:
                found(h, play, out_dir)
            h.runs += 1
            if progress is not None and time.monotonic() - last > 0.2:
                last = time.monotonic()
                progress(h)
    except KeyboardInterrupt:
        h.interrupted = True
    return h


RESHRINKS = 3  # later hits of a finding shrunk too, in case one gives a smaller scenario


def found(h: Hunt, play: Play, out_dir: str | None) -> None:
    """A run ended in a finding: a new one is shrunk and written; a known one counts a hit,
    and its first few hits are shrunk too, the smallest scenario kept (a replacement found
    first may shrink to more statements than a plain read found later)."""
    key = play.failure.key
    finding = h.findings.get(key)
    if finding is not None:
        finding.hits += 1
        if finding.reshrunk >= RESHRINKS:
            return
        finding.reshrunk += 1
    candidate = Finding(len(h.findings) + 1 if finding is None else finding.number,
                        play.failure, h.runs, play.statements, len(play.paths),
                        h.runs if finding is None else finding.first)
    check = None
    if play.race is not None:
        from memcglang.hunt.race import check
    candidate.shrunk = shrink(h.model, play.setup, play.paths, key, check)
    candidate.failure = candidate.shrunk.play.failure
    candidate.text = scenario(h.model, h.seed, candidate)
    if finding is not None:
        if rank(candidate) >= rank(finding):
            return
        candidate.hits = finding.hits
        candidate.reshrunk = finding.reshrunk
        if finding.file is not None:  # a race's golden file and a run's have other names
            finding.golden(h.model).unlink(missing_ok=True)
    write(h, candidate, out_dir)
    h.findings[key] = candidate


def rank(f: Finding) -> tuple[bool, int]:
    """A sequential scenario before a race, then the fewer statements."""
    return (f.race, f.size)


def write(h: Hunt, finding: Finding, out_dir: str | None) -> None:
    """Check that the scenario passes under the model (its `expect …:` lines met) and write
    it with its golden trace: `memcglang test DIR` passes at once."""
    from memcglang.golden import actual, explored

    directory = FilePath(out_dir) if out_dir is not None else FilePath(".")
    path = directory / f"{finding.name}.mcg"
    race = finding.shrunk.play.race
    if not finding.race:
        trace, status = actual(path, h.model, text=finding.text)
        good = status == 0
    else:  # the explore golden case: its verdict, a failure found (exit 1)
        trace, status = explored(path, h.model, text=finding.text)
        good = status == 1 and f"verdict: {race.verdict}" in trace
    finding.trace = trace
    finding.unverified = not good  # a bug of ours: said in the summary, the file still kept
    if out_dir is not None:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(finding.text, encoding="utf-8")
        finding.file = path
        finding.golden(h.model).write_text(trace, encoding="utf-8")


def progress_line(h: Hunt) -> str:
    secs = time.monotonic() - h.started
    return (f"hunt {h.model} seed {h.seed}: {h.runs:,} runs, {h.statements:,} statements, "
            f"{plural(len(h.findings), 'finding')} ({h.hits} hits), {secs:.0f} s")


def summary(h: Hunt, emit, stats: bool) -> None:
    stop = " (interrupted)" if h.interrupted else ""
    emit(f"hunt: model {h.model}, seed {h.seed}: {h.runs:,} runs, {h.statements:,} "
         f"statements{stop}")
    if stats:
        secs = time.monotonic() - h.started
        emit(f"time: {secs:.1f} s ({h.runs / secs if secs else 0:,.0f} runs/s, "
             f"{h.statements / secs if secs else 0:,.0f} statements/s)")
        emit(f"races searched: {h.races:,}")
        emit("paths: " + ", ".join(f"{k} {n:,}" for k, n in sorted(h.kinds.items())))
        emit("outcomes: " + ", ".join(f"{k} {n:,}" for k, n in sorted(h.outcomes.items())))
    if h.refused_runs:
        emit(f"generator bugs: {h.refused_runs} runs ended in a step the engine refused as an "
             "mm-contract break (not findings; please report):")
        for run, r in h.refusals:
            emit(f"  run {run}: {r.stmt}")
            emit("    " + r.reason.splitlines()[0])
    if not h.findings:
        emit("no finding")
        return
    n = len(h.findings)
    emit(f"findings: {n} distinct, {h.hits:,} hits (a path that ends in a finding already "
         "known is undone and the run goes on)")
    for f in h.findings.values():
        emit("")
        emit(f"{f.number}. {f.failure.title}")
        emit(f"   {plural(f.hits, 'hit')}, the first in run {f.first}; shrunk from run {f.run}'s "
             f"{plural(f.statements, 'statement')} to {f.size} ({f.shrunk.replays} replays)")
        if f.unverified:
            emit("   the scenario as written does not reproduce it (a bug of memcglang's; "
                 "please report it with the model and seed):")
            for line in f.trace.splitlines()[-8:]:
                emit("   ! " + line)
        if f.file is not None:
            emit(f"   written: {f.file} (and its golden file {f.golden(h.model).name})")
        for line in f.text.splitlines():
            emit("   | " + line)
