"""Load a scenario and run it under one model, emitting its trace line by line.

Shared by `memcglang run` and `memcglang test` (and the pytest plugin), so a golden file is
exactly what `run --plain` prints.
"""

from __future__ import annotations

from importlib import resources

TOUR = "<tour>"
MAX_REPEAT = 1_000_000


class ModelUnavailable(Exception):
    """The scenario asks for a model that is not built."""


def load(path: str, max_repeat: int = MAX_REPEAT, name: str | None = None):
    """(program, resolution) of a file or of the built-in tour; raises StaticErrors.

    `name` is the file name positions and the trace show (default: `path` as given).
    """
    from memcglang.lang.source import read_source

    if path == TOUR:
        text = resources.files("memcglang").joinpath("tour.mcg").read_text(encoding="utf-8")
        path = "tour.mcg"
    else:
        text = read_source(path)
    return load_text(text, name or path, max_repeat)


def load_text(text: str, name: str, max_repeat: int = MAX_REPEAT):
    """(program, resolution) of a scenario's text; raises StaticErrors."""
    from memcglang.lang.diagnostics import StaticErrors
    from memcglang.lang.parser import parse_recovering
    from memcglang.lang.resolver import resolve

    program, errors = parse_recovering(text, name)
    if program is None:
        raise StaticErrors(errors)
    try:
        resolution = resolve(program, max_repeat)
    except StaticErrors as e:
        raise StaticErrors(errors + e.diagnostics) from None
    if errors:
        raise StaticErrors(errors)
    return program, resolution


def choose_model(program, resolution, model: str | None) -> str:
    """`model` if given, else the file's `model` statement, else the default; raises
    ModelUnavailable for a model that is not built."""
    from memcglang.lang.interpreter import AVAILABLE_MODELS, DEFAULT_MODEL

    chosen = model or resolution.model or DEFAULT_MODEL
    if chosen not in AVAILABLE_MODELS:
        raise ModelUnavailable(f"{program.filename}: error: model {chosen} is not available yet "
                               f"(models: {', '.join(AVAILABLE_MODELS)})")
    return chosen


def trace(program, resolution, model: str, mode: str, quiet: bool, emit) -> bool:
    """Run `program` under `model`, emitting the trace (mode "plain", "rich" or "json");
    True when the run failed (exit status 1)."""
    from memcglang.lang.interpreter import Interpreter
    from memcglang.render import plain

    interp = Interpreter(program, resolution, model)
    if mode == "json":
        emit(plain.json_header(program.filename, model, resolution.swapaccount))
    elif not quiet:
        emit(plain.header(program.filename, model, resolution.swapaccount))
    tally = plain.Tally()
    for rec in interp.run():
        tally.add(rec)
        if mode == "json":
            if not quiet or rec.failed:
                emit(plain.record_json(rec))
            continue
        for line in plain.record_output(rec, interp.engine, quiet):
            emit(line)
    if mode == "json":
        emit(plain.json_verdict(tally.verdict(interp.statements), interp.failed))
    else:
        if not quiet:
            for line in plain.state_block(interp.engine):
                emit(line)
        emit(tally.verdict(interp.statements, interp.failed))
    return interp.failed
