"""Errors for people: `file:line:col: error: message`, the source line, a caret and a hint."""

from __future__ import annotations

import attrs


@attrs.frozen
class Diagnostic:
    """One static error (syntax, name or usage), pointing at its place in the file."""

    filename: str
    line: int
    col: int
    message: str
    source_line: str = ""
    width: int = 1
    hint: str | None = None

    def format(self) -> str:
        out = [f"{self.filename}:{self.line}:{self.col}: error: {self.message}"]
        if self.source_line:
            text = self.source_line.expandtabs(1)
            out.append(f"    {text}")
            width = max(1, min(self.width, len(text) - self.col + 1))
            out.append("    " + " " * (self.col - 1) + "^" + "~" * (width - 1))
        if self.hint:
            out.append(f"    hint: {self.hint}")
        return "\n".join(out)


class StaticErrors(Exception):
    """Every static error of a file (nothing runs): parse and resolve raise this."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.filename, d.line, d.col))
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics)
