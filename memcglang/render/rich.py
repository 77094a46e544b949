"""Terminal colour for the trace: the plain lines, styled. The only module importing rich."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


class Painter:
    """Print plain trace lines with colour: statements bold, changes cyan, failures red."""

    def __init__(self, out):
        self.console = Console(file=out, highlight=False, soft_wrap=True)

    def line(self, line: str) -> None:
        style = None
        body = line.lstrip()
        if not line.startswith(" ") and ": " in line and not line.startswith(("#", "state")):
            style = "bold"
        if " -> " in body:
            style = "cyan"
        if "FAILED" in line or "failed:" in body or body.startswith(("kernel BUG", "invariant",
                                                                    "-E", "scenario", "deadlock")):
            style = "bold red"
        if body.startswith("note:"):
            style = "dim"
        self.console.print(Text(line, style=style or ""))
