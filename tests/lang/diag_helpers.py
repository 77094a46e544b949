"""Helpers the language tests share: reading a StaticErrors as positions or as text."""

from __future__ import annotations

from memcglang.lang.diagnostics import StaticErrors


def text_of(*lines: str) -> str:
    return "\n".join(lines)


def where(err: StaticErrors) -> list[tuple[int, int, str]]:
    return [(d.line, d.col, d.message) for d in err.diagnostics]
