"""Reading a .mcg file for people: unreadable files and bad bytes become diagnostics."""

from __future__ import annotations

from pathlib import Path

from memcglang.lang.diagnostics import Diagnostic, StaticErrors


def read_source(path: str) -> str:
    """The file's text; StaticErrors (one diagnostic) if it cannot be read or is not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise StaticErrors([Diagnostic(path, 1, 1, f"cannot read the file: {reason}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        start = before.rfind(b"\n") + 1
        prefix = data[start : e.start].decode("utf-8", "replace")
        if line == 1:
            prefix = prefix.removeprefix("\ufeff")
        col = len(prefix) + 1  # in characters, as every other column
        text = data.split(b"\n")[line - 1].decode("utf-8", "replace").rstrip("\r")
        if line == 1:
            text = text.removeprefix("\ufeff")
        raise StaticErrors([
            Diagnostic(path, line, col, f"byte 0x{data[e.start]:02x} is not UTF-8", text, 1,
                       "a .mcg file is UTF-8 text")
        ]) from None
