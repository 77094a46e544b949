"""`memcglang explore` and `memcglang run --replay`: the search's report, the counterexample as
a per-thread trace, and the replay file that reproduces it (docs/explore.md).

Plain output is deterministic: times and rates appear only with --stats or on a terminal.
"""

from __future__ import annotations

import os
import time

from memcglang.explore import DEFAULT_MAX_DEPTH, DEFAULT_MAX_STATES, DEFAULT_MAX_TIME
from memcglang.explore.search import Result, Search
from memcglang.explore.threads import START, Machine
from memcglang.lang import ast
from memcglang.lang.diagnostics import Diagnostic, StaticErrors
from memcglang.lang.interpreter import Record
from memcglang.render import plain

REPLAY_VERSION = 1
EXIT = {"Always": 0, "Sometimes": 1, "Never": 1}


class ReplayError(Exception):
    """A replay file that is malformed or does not fit its scenario (exit 2)."""


def thread_summary(m: Machine) -> str:
    parts = []
    for name, ops in zip(m.names, m.ops, strict=True):
        steps = sum(op.steps for op in ops)
        parts.append(f"{name} ({len(ops)} statement{'s' if len(ops) != 1 else ''}, "
                     f"{steps} step{'s' if steps != 1 else ''})")
    return ", ".join(parts)


def explore(program, resolution, model: str, emit, *, max_states: int = DEFAULT_MAX_STATES,
            max_depth: int = DEFAULT_MAX_DEPTH, reduction: bool = True, stats: bool = False,
            max_time: float = DEFAULT_MAX_TIME,
            replay_out: str | None = None, which: int = 1,
            scenario_path: str | None = None) -> int:
    """Search every interleaving and print the report; the exit status (0 Always, 1 a
    failure or a postcondition that does not always hold, 3 a bound was hit). Raises
    StaticErrors for what explore cannot check (cost and event counters)."""
    m = Machine(program, resolution, model)
    if not m.thread_stmts:
        raise StaticErrors([Diagnostic(program.filename, 1, 1, "no `thread` block: nothing to "
                                       "interleave", program.line(1), 1,
                                       "`memcglang run` runs a file without threads")])
    unchecked = m.unchecked_expects()
    if unchecked:
        raise StaticErrors([
            Diagnostic(program.filename, s.line, s.col, f"explore cannot check `{what}`",
                       program.line(s.line), len("expect cost") if what == "cost" else len(what),
                       f"{'cost' if what == 'cost' else 'event'} counters are not part of a "
                       "state: two paths to one state may count them differently "
                       "(`memcglang run` checks them)")
            for s, what in unchecked])
    emit(f"# memcglang explore: {program.filename}, model {model}, swap accounting "
         f"{'on' if resolution.swapaccount else 'off'}")
    records, failed = m.setup()
    if failed:
        emit("the setup (the statements before the threads) fails; the search does not start:")
        for rec in records:
            if rec.failed:
                for line in plain.record_lines(rec, quiet=True):
                    emit(line)
        return 1
    emit(f"threads: {thread_summary(m)}")
    started = time.perf_counter()
    res = Search(m, max_states, max_depth, reduction, max_time).run()
    elapsed = time.perf_counter() - started
    for line in summary_lines(res):
        emit(line)
    if stats:
        rate = res.distinct / elapsed if elapsed > 0 else 0.0
        emit(f"time: {elapsed:.3f} s, {rate:,.0f} distinct states/s")
    examples = res.counterexamples()
    for n, example in enumerate(examples, 1):
        of = f" {n} of {len(examples)}" if len(examples) > 1 else ""
        emit(f"counterexample{of} ({len(example.schedule)} step"
             f"{'s' if len(example.schedule) != 1 else ''}): {example.label}")
        for line in counterexample_lines(program, resolution, model, example):
            emit(line)
    if replay_out is not None and not 1 <= which <= max(len(examples), 1):
        emit(f"replay: there is no counterexample {which} (there "
             f"{'is' if len(examples) == 1 else 'are'} {len(examples)}); nothing written")
        return 2
    if examples:
        example = examples[which - 1]
        if replay_out is not None:
            text = replay_text(scenario_path or program.filename, model, m, example.schedule)
            with open(replay_out, "w", encoding="utf-8") as f:
                f.write(text)
            emit(f"replay: {replay_out} (memcglang run --replay {replay_out}), counterexample "
                 f"{which}")
        else:
            emit("replay: write a counterexample with -o FILE [--counterexample N], then "
                 "`memcglang run --replay FILE`")
    if res.incomplete:
        return 3
    return EXIT[res.verdict]


def summary_lines(res: Result) -> list[str]:
    finals = res.good + res.bad
    failures = sum(f.count for f in res.failures.values())
    if res.incomplete:
        head = f"verdict: incomplete (the search hit {res.incomplete}); so far "
    else:
        head = "verdict: "
    head += (f"{res.verdict}: the postcondition holds in {res.good} of {finals} final "
             f"state{'s' if finals != 1 else ''}; {failures} failing step"
             f"{'s' if failures != 1 else ''}")
    out = [
        head,
        f"states: {res.explored} explored, {res.distinct} distinct, {res.transitions} "
        f"transitions, max depth {res.max_depth}; partial-order reduction "
        f"{'on' if res.reduction else 'off'}",
    ]
    if res.shortening is not None:
        out.append(f"shortest counterexamples: a search without reduction up to their "
                   f"length, {res.shortening} distinct states"
                   + (" (it hit a bound: shorter ones may exist)"
                      if res.shortening_incomplete else ""))
    if not finals and not failures and not res.incomplete:
        out.append("no interleaving reaches the end: every one is cut (below)")
    for _label, f in sorted(res.failures.items()):
        where = ", ".join(sorted(t for t in f.threads if t))
        out.append(f"failure: {f.label}{' in ' + where if where else ''} (found {f.count} "
                   f"time{'s' if f.count != 1 else ''})")
    if res.bad_final is not None:
        out.append(f"failure: {res.bad} final state{'s' if res.bad != 1 else ''} where the "
                   "postcondition fails")
    for label, n in sorted(res.cuts.items()):
        out.append(f"cut: {label} ({n} interleaving{'s' if n != 1 else ''} dropped: an mm "
                   "contract a kernel caller checks first)")
    return out


# -- counterexamples and replays -----------------------------------------------------------
def replay_records(program, resolution, model: str, schedule: list):
    """Run the setup, then the schedule's steps one by one, then (when every thread has
    finished) the postcondition; yields (machine, Record) with each step's calls, changes and
    report. Raises ReplayError when a step does not fit the scenario."""
    m = Machine(program, resolution, model, capture=True)
    records, failed = m.setup()
    for rec in records:
        yield m, rec
    if failed:
        return
    pcs = [START if ops else None for ops in m.ops]
    for n, (t, pc) in enumerate(schedule, 1):
        if t >= len(m.ops) or pcs[t] is None or tuple(pcs[t][:2]) != tuple(pc[:2]):
            raise ReplayError(f"step {n} does not fit the scenario (edited since the replay "
                              "was written?)")
        op = m.ops[t][pcs[t][0]]
        mv = m.step(t, pcs[t])
        rec = Record(program, op.stmt, op.env, "ok",
                     f"[{op.thread}] {m.text(op)}{m.phase_suffix(op, pcs[t][1])}")
        if mv.result is not None:
            rec.results.append(mv.result)
        rec.messages.extend(mv.messages)
        if mv.kind == "blocked":
            raise ReplayError(f"step {n}: {op.thread} cannot take its step here (it waits "
                              "for a page lock)")
        if mv.kind != "ok":
            rec.outcome = mv.outcome
            if mv.outcome == "failed-expect":
                rec.expects_failed += 1
            yield m, rec
            return
        yield m, rec
        pcs[t] = mv.pc
    if all(pc is None for pc in pcs):
        for rec in m.postcondition():
            yield m, rec
        return
    waiting = _all_waiting(m, pcs)
    if waiting:
        last = m.ops[schedule[-1][0]][schedule[-1][1][0]] if schedule else None
        stmt = last.stmt if last is not None else program.stmts[0]
        rec = Record(program, stmt, {}, "scenario", "deadlock")
        rec.messages.append(f"deadlock: no thread can move; waiting: {waiting}")
        yield m, rec


def _all_waiting(m: Machine, pcs: list) -> str | None:
    """When every unfinished thread waits for a page lock: who waits for what."""
    e = m.engine
    waiting = []
    for t, pc in enumerate(pcs):
        if pc is None:
            continue
        mark = e.mark()
        mv = m.step(t, pc)
        e.rollback_to(mark)
        e.release_mark(mark)
        if mv.kind != "blocked":
            return None
        waiting.append(m.label(t, pc))
    return "; ".join(waiting)


def counterexample_lines(program, resolution, model: str, example) -> list[str]:
    out = []
    step = 0
    for _m, rec in replay_records(program, resolution, model, example.schedule):
        if rec.text.startswith("["):
            step += 1
            lines = plain.record_lines(rec)
            out.append(f"  {step}. {lines[0]}")
            out.extend("  " + line for line in lines[1:])
        elif rec.expects_failed:
            out.extend("  " + line for line in plain.record_lines(rec))
    if example.kind == "deadlock":
        out.extend("  " + line for line in example.messages)
    return out


def replay_text(scenario: str, model: str, m: Machine, schedule: list) -> str:
    lines = [f"# memcglang replay {REPLAY_VERSION}: `memcglang run --replay FILE` reproduces "
             "this schedule step for step",
             f"scenario {scenario}", f"model {model}",
             "# thread  statement  phase   (the statement's line and text)"]
    for t, (i, phase, *_) in schedule:
        op = m.ops[t][i]
        lines.append(f"{m.names[t]} {i} {phase}  # {op.stmt.line}: {m.text(op)}"
                     f"{m.phase_suffix(op, phase)}")
    return "\n".join(lines) + "\n"


def read_replay(path: str) -> tuple[str, str, list]:
    """(scenario path, model, [(thread name, statement index, phase)]) of a replay file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ReplayError(f"{path}: cannot read it: {e}") from None
    scenario = model = None
    steps = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "scenario" and len(words) == 2:
            scenario = words[1]
        elif words[0] == "model" and len(words) == 2:
            model = words[1]
        elif len(words) == 3 and words[1].isdigit() and words[2].isdigit():
            steps.append((words[0], int(words[1]), int(words[2])))
        else:
            raise ReplayError(f"{path}:{n}: not a replay line: {raw.strip()!r}")
    if scenario is None or model is None:
        raise ReplayError(f"{path}: a replay file names its `scenario` and `model`")
    if scenario and not os.path.isabs(scenario) and not os.path.exists(scenario):
        beside = os.path.join(os.path.dirname(path), scenario)
        if os.path.exists(beside):
            scenario = beside
    return scenario, model, steps


def replay(program, resolution, model: str, steps: list, emit) -> int:
    """`memcglang run --replay`: the trace of the schedule, step for step; exit 1 when it ends
    in a failure, as the search found it."""
    names = [s.name.text for s in program.stmts if isinstance(s, ast.Thread)]
    schedule = []
    for name, i, phase in steps:
        if name not in names:
            raise ReplayError(f"the scenario has no thread {name}")
        schedule.append((names.index(name), (i, phase, None, None)))
    emit(plain.header(program.filename, model, resolution.swapaccount) + ", replay")
    tally = plain.Tally()
    engine = None
    failed = False
    statements = 0
    for m, rec in replay_records(program, resolution, model, schedule):
        engine = m.engine
        tally.add(rec)
        statements += 1
        failed = failed or rec.failed
        for line in plain.record_output(rec, engine):
            emit(line)
    for line in plain.state_block(engine):
        emit(line)
    emit(tally.verdict(statements, failed))
    return 1 if failed else 0


__all__ = ["explore", "replay", "read_replay", "ReplayError"]
