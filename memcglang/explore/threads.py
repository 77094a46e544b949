"""The threads of a scenario as the explorer runs them (LANGUAGE §3.7, docs/explore.md).

A file with threads is setup, `thread` blocks, postcondition. The setup runs as `run` runs it.
Each thread becomes a list of `Op`s: one per statement, `repeat`s unrolled, `only` resolved
for the model, `zap`/`batch` as their begin and end steps. A composite's Op has one step per
phase (the engine's PATHS); every other statement is one step. A thread's position is
`(op index, phase, context)`: the context of a composite in progress is a small dict owned
by the search, copied on every step, so rolling the engine back to a mark and taking up the
position kept with it resumes exactly there.

`Machine.step` runs one step of one thread and classifies it (`Move`):
* ok: the step ran; the thread moves on (its kernel error values are its outcomes: a
  migration's -EAGAIN, a charge's -ENOMEM; `expect error …:` makes one required);
* blocked: `lock` of a page another thread holds; the step did not run;
* cut: the step breaks an mm contract (origin `mm`) in this interleaving: a kernel caller
  checks that condition first (get_page_unless_zero, PageLRU before isolating, the fault's
  recheck after lock_page), so the interleaving does not exist; the search drops it;
* fail: a kernel assertion in memcg code, an invariant violation, a scenario error (a lock
  or reservation left at the thread's end) or a failed `expect`: a counterexample.
"""

from __future__ import annotations

import attrs

from memcglang.engine import Deadlock, ScenarioError, StepResult, VmBug
from memcglang.engine.mm import PATHS, path_context
from memcglang.lang import ast
from memcglang.lang.interpreter import (
    BLOCKS,
    Interpreter,
    Stop,
    describe_error,
    engine_call,
    expected_label,
    fulfils,
)


@attrs.frozen(eq=False)
class Op:
    """One statement of a thread as the explorer runs it."""

    thread: str
    stmt: ast.Stmt  # as written (position and text), for `expect …:` the wrapper
    env: dict
    kind: str  # "call", "path" (a composite: one step per phase) or "expect"
    method: str | None = None
    args: tuple = ()
    expected: ast.ExpectOutcome | None = None
    text: str | None = None  # "}" for the end of a zap or batch block
    touches: tuple = ()  # names the step reaches beyond its arguments: the end of a zap
    # releases the pages its unmaps deferred

    @property
    def steps(self) -> int:
        return len(PATHS[self.method]) if self.kind == "path" else 1

    def phase_name(self, phase: int) -> str:
        """`lock` for Engine._swapin_lock: the phase's name in a trace."""
        return PATHS[self.method][phase].__name__.removeprefix(f"_{self.method}_")


@attrs.define
class Move:
    """What one step of one thread did."""

    kind: str  # "ok", "blocked", "cut" or "fail"
    pc: tuple | None = None  # the thread's position after an ok step (None: finished)
    result: StepResult | None = None
    label: str = ""  # fail/cut: what happened, in one line
    outcome: str = "ok"  # fail/cut: the statement outcome a trace shows (bug, violation, …)
    messages: list = attrs.Factory(list)  # the report (dump_page, violations, …)


START = (0, 0, None, None)  # (statement, phase, context, the context's key for the search)


class Machine:
    """The engine after setup, the thread programs and the postcondition."""

    def __init__(self, program: ast.Program, resolution, model: str, capture: bool = False):
        self.program = program
        self.model = model
        self.interp = Interpreter(program, resolution, model, track_fingerprint=True)
        self.engine = self.interp.engine
        stmts = program.stmts
        at = [i for i, s in enumerate(stmts) if isinstance(s, ast.Thread)] or [len(stmts)]
        first, last = at[0], at[-1]
        self.setup_stmts = stmts[:first]
        self.thread_stmts = [s for s in stmts[first:last + 1] if isinstance(s, ast.Thread)]
        self.post_stmts = stmts[last + 1:]
        self.names = [t.name.text for t in self.thread_stmts]
        self.ops = [self._compile(t) for t in self.thread_stmts]
        self.capture = capture

    def unchecked_expects(self) -> list:
        """What an `expect` after the setup reads that is outside the fingerprint: the cost
        counters and the event counters pgpgin/pgpgout. The search keeps one path to each
        state, and paths to one state may count them differently, so it cannot check them:
        [(the expect or check, what it reads)]."""
        found = []

        def walk(stmt):
            if isinstance(stmt, ast.Expect):
                if isinstance(stmt.target, ast.Cost):
                    found.append((stmt, "cost"))
                else:
                    found.extend((c, c.field) for c in stmt.checks
                                 if c.field in ("pgpgin", "pgpgout"))
            for inner in getattr(stmt, "body", ()) or ():
                walk(inner)
            if isinstance(stmt, ast.Only):
                walk(stmt.stmt)

        for stmt in (*self.thread_stmts, *self.post_stmts):
            walk(stmt)
        return found

    # -- setup and postcondition ------------------------------------------------------------
    def setup(self) -> tuple[list, bool]:
        """Run the setup as `run` does: (its records, whether it failed)."""
        records = []
        try:
            for stmt in self.setup_stmts:
                for rec in self.interp.stmt(stmt, {}):
                    records.append(rec)
        except Stop:
            return records, True
        self.engine.capture = self.capture
        return records, self.interp.failed

    def postcondition(self) -> list:
        """The postcondition's expect records in the current (final) state."""
        out = []
        for stmt in self.post_stmts:
            for rec in self.interp.stmt(stmt, {}):
                if rec.outcome != "show":
                    out.append(rec)
        self.interp.failed = False  # the search judges; the interpreter only evaluates
        return out

    def main_end(self) -> str | None:
        """The setup's thread must not leave a lock or a reservation behind (LANGUAGE §3.7)."""
        try:
            self.engine.end_thread("main")
        except ScenarioError as e:
            return str(e)
        return None

    # -- threads ----------------------------------------------------------------------------
    def _compile(self, thread: ast.Thread) -> list[Op]:
        name = thread.name.text
        ops: list[Op] = []
        model = self.model

        def block(stmt: ast.Zap | ast.Batch, env: dict, expected) -> None:
            begin, end = ("zap_begin", "zap_end") if type(stmt) is ast.Zap else (
                "batch_begin", "batch_end")
            ops.append(Op(name, stmt, env, "call", begin))
            first = len(ops)
            for inner in stmt.body:
                walk(inner, env)
            unmapped = tuple(a for op in ops[first:] if op.method == "unmap" for a in op.args)
            ops.append(Op(name, expected or stmt, env, "call", end, (), expected, text="}",
                          touches=unmapped))

        def walk(stmt: ast.Stmt, env: dict) -> None:
            kind = type(stmt)
            if kind is ast.Repeat:
                for i in range(stmt.count):
                    for inner in stmt.body:
                        walk(inner, {**env, stmt.var.text: i})
            elif kind is ast.Only:
                if model in stmt.models:
                    walk(stmt.stmt, env)
            elif kind is ast.OnlyBlock:
                if model in stmt.models:
                    for inner in stmt.body:
                        walk(inner, env)
            elif kind is ast.Zap or kind is ast.Batch:
                block(stmt, env, None)
            elif kind is ast.ExpectOutcome and isinstance(stmt.stmt, BLOCKS):
                block(stmt.stmt, env, stmt)  # the expect judges the block's end
            elif kind is ast.Expect:
                ops.append(Op(name, stmt, env, "expect"))
            elif kind is ast.Show:
                return  # the explorer shows the counterexample, not states in between
            else:
                inner = stmt.stmt if kind is ast.ExpectOutcome else stmt
                method, args = engine_call(inner, env)
                ops.append(Op(name, stmt, env, "path" if method in PATHS else "call", method,
                              args, stmt if kind is ast.ExpectOutcome else None))

        for stmt in thread.body:
            walk(stmt, {})
        return ops

    def step(self, t: int, pc: tuple) -> Move:
        """Run the next step of thread `t` at position `pc` (see the module docstring)."""
        i, phase, ctx, _ = pc
        ops = self.ops[t]
        op = ops[i]
        e = self.engine
        e.thread = op.thread
        expected = op.expected
        try:
            if op.kind == "path":
                c = path_context(op.method, op.args) if phase == 0 else dict(ctx)
                result = e.phase(op.method, phase, c)
                done = result.outcome != "ok" or c["end"]
            elif op.kind == "call":
                result, c, done = getattr(e, op.method)(*op.args), None, True
            else:
                rec = self.interp.expect(op.stmt, op.env)
                self.interp.failed = False
                if rec.expects_failed:
                    return Move("fail", label="expect failed",
                                outcome="failed-expect", messages=rec.messages)
                result, c, done = None, None, True
        except Deadlock:
            return Move("blocked")
        except VmBug as err:
            if expected is not None and expected.outcome == "bug":
                return self._next(t, i, phase, None, True, None)
            kind = "cut" if err.origin == "mm" else "fail"
            return Move(kind, label=f"{err.assertion} ({err.origin})",
                        outcome="bug", messages=[err.report])
        except ScenarioError as err:
            return Move("fail", label=f"scenario error: {err}",
                        outcome="scenario", messages=[f"scenario error: {err}"])
        if result is not None and result.violations:
            if expected is not None and expected.outcome == "violation":
                return self._next(t, i, phase, None, True, result)
            first = result.violations[0]
            return Move("fail", result=result,
                        label=f"invariant {first.inv} violated ({first.obj} {first.field})",
                        outcome="violation",
                        messages=[f"invariant violated: {v}" for v in result.violations])
        if expected is not None and done:
            wrong = self._judge(expected, result)
            if wrong:
                return Move("fail", result=result, label="expect failed",
                            outcome="failed-expect", messages=[wrong])
        return self._next(t, i, phase, c, done, result)

    def _next(self, t: int, i: int, phase: int, c, done: bool, result) -> Move:
        if not done:
            key = tuple((k, getattr(v, "name", v)) for k, v in c.items() if k != "end")
            return Move("ok", (i, phase + 1, c, key), result)
        if i + 1 < len(self.ops[t]):
            return Move("ok", (i + 1, 0, None, None), result)
        try:  # the thread's last step: it must leave nothing behind
            self.engine.end_thread(self.names[t])
        except ScenarioError as err:
            return Move("fail", result=result, label=f"scenario error: {err}",
                        outcome="scenario", messages=[f"scenario error: {err}"])
        return Move("ok", None, result)

    @staticmethod
    def _judge(expected: ast.ExpectOutcome, result: StepResult | None) -> str | None:
        """None when the composite ended as `expect OUTCOME:` says, else the complaint."""
        err = result.error if result is not None else None
        outcome = "error" if err is not None else (result.outcome if result else "ok")
        if fulfils(expected, outcome, err.errno if err is not None else None):
            return None
        got = describe_error(err) if err is not None else outcome
        return f"expect {expected_label(expected)} failed: the statement ended {got}"

    def label(self, t: int, pc: tuple) -> str:
        """`X swapin E as Q [lock 2/5]`: a thread's next step, for reports."""
        i, phase = pc[:2]
        op = self.ops[t][i]
        return f"{op.thread} {self.text(op)}{self.phase_suffix(op, phase)}"

    def text(self, op: Op) -> str:
        if op.text is not None:
            return op.text
        stmt = op.stmt
        return self.program.line(stmt.line)[stmt.col - 1:].strip()

    @staticmethod
    def phase_suffix(op: Op, phase: int) -> str:
        if op.kind != "path":
            return ""
        return f" [{op.phase_name(phase)} {phase + 1}/{op.steps}]"


__all__ = ["Machine", "Move", "Op", "START"]
