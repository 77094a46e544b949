"""Terminal colour for the trace: the plain lines, styled. The only module importing rich."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def style_of(line: str) -> str:
    """The style of a plain trace line: statements bold, changes cyan, failures red."""
    style = ""
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
    return style


class Painter:
    """Print plain trace lines with colour: statements bold, changes cyan, failures red."""

    def __init__(self, out):
        self.console = Console(file=out, highlight=False, soft_wrap=True)

    def line(self, line: str) -> None:
        self.console.print(Text(line, style=style_of(line)))


# -- the REPL's compact state view ---------------------------------------------------------
MEMCG_COLUMNS = ("usage", "memsw", "rss", "cache", "rss_huge", "swap", "pgpgin", "pgpgout",
                 "failcnt", "css")
PAGE_COLUMNS = ("flags", "memcg", "refcount", "mapcount", "page", "isolated", "entry")
ENTRY_COLUMNS = ("memcg", "count", "page")
# engine field -> the view column it shows in
VIEW_FIELD = {"pc_flags": "flags", "pc_memcg": "memcg", "flags": "page", "record": "memcg"}
CHANGED = "bold black on yellow"


def _cell(value, changed: bool) -> Text:
    return Text(str(value), style=CHANGED if changed else "")


def _touched_table(label: str, names: list[str], view, columns, touched: dict):
    """One row per touched page or swap entry; the fields the statement wrote highlighted."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="dim")
    table.add_column(label, style="bold")
    for c in columns:
        table.add_column(c)
    for name in names:
        values = view(name)
        fields = {VIEW_FIELD.get(f, f) for f in touched[name]}
        if values["freed"]:
            table.add_row(name, Text("freed", style=CHANGED if "freed" in fields else ""))
        else:
            table.add_row(name, *(_cell(values[c], c in fields) for c in columns))
    return table


def compact_state(engine, memcgs_before: dict, touched: dict) -> list:
    """After a statement: every memcg's counters and statistics, the pages and swap entries
    it touched; values that changed are highlighted."""
    from rich.table import Table

    out = []
    memcgs = Table(box=None, pad_edge=False, show_edge=False, header_style="dim")
    memcgs.add_column("memcg", style="bold")
    for c in MEMCG_COLUMNS:
        memcgs.add_column(c, justify="right")
    for name in engine.memcgs:
        view = engine.memcg_view(name)
        before = memcgs_before.get(name)
        memcgs.add_row(name, *(_cell(view[c], before is None or before[c] != view[c])
                               for c in MEMCG_COLUMNS))
    out.append(memcgs)
    for label, objects, view, columns in (("page", engine.pages, engine.page_view, PAGE_COLUMNS),
                                          ("swap entry", engine.entries, engine.entry_view,
                                           ENTRY_COLUMNS)):
        names = [n for n in touched if n in objects]
        if names:
            out.append(_touched_table(label, names, view, columns, touched))
    return out


class Screen:
    """The REPL's output: each statement's trace (coloured plain lines), then the compact
    state; diagnostics and meta command output as text."""

    def __init__(self, out):
        self.painter = Painter(out)
        self.console = self.painter.console

    def banner(self, model: str, swap_account: bool) -> None:
        self.console.print(Text(f"memcglang repl: model {model}, swap accounting "
                                f"{'on' if swap_account else 'off'}. :help lists the "
                                "statements and commands, :quit leaves.", style="dim"))

    def update(self, update, engine) -> None:
        from memcglang.render import plain

        for d in update.diagnostics:
            for line in d.format().splitlines():
                self.console.print(Text(line, style="red" if "error" in line else ""))
        for line in update.lines:
            self.painter.line(line)
        for rec in update.records:
            for line in plain.record_output(rec, engine):
                self.painter.line(line)
        changed = any(r.changes for rec in update.records for r in rec.results)
        if changed and engine is not None and update.kind == "ran":
            for renderable in compact_state(engine, update.memcgs_before, update.touched):
                self.console.print(renderable)


# -- `memcglang diff`: the two models side by side ---------------------------------------------
DIFFERS = "bold yellow"


class DiffView:
    """`memcglang diff` on a terminal: the plain diff's content with the two models in two
    columns (memcglang/diff.py builds the statements, folded runs and summary it shows)."""

    def __init__(self, out):
        self.console = Console(file=out, highlight=False)

    def show(self, models: tuple[str, str], header: str, items, summary) -> None:
        self.console.print(Text(header, style="dim"))
        for item in items:
            if hasattr(item, "count"):  # a folded run of identical statements
                n = item.count
                self.console.print(Text(f"= {item.where}: {n} statement{'s' if n != 1 else ''} "
                                        "identical", style="dim"))
            else:
                self.console.print(self._statement(models, item))
        self.console.print(self._summary(models, summary))

    @staticmethod
    def _lines(side, shown, missing: str) -> Text:
        text = Text()
        if side is None:
            text.append(f"({missing})", style="dim italic")
        for i, line in enumerate(shown):
            if i or side is None:
                text.append("\n")
            style = "dim italic" if line.context else style_of("  " + line.text)
            text.append(line.text, style=style)
        return text

    def _statement(self, models, item):
        from rich.console import Group
        from rich.table import Table

        head = Text(f"! {item.pos}: ", style="bold")
        head.append(item.text, style="bold")
        parts: list = [head, *(Text("  " + tag, style="bold red") for tag in item.tags)]
        table = Table(expand=True, box=None, pad_edge=False, header_style="dim")
        for model in models:
            table.add_column(model, ratio=1, overflow="fold")
        if item.shown_a or item.shown_b or item.a is None or item.b is None:
            table.add_row(self._lines(item.a, item.shown_a, item.missing),
                          self._lines(item.b, item.shown_b, item.missing))
        if item.state:
            cells = [Text("state after:", style="dim") for _ in models]
            for label, *values in item.state:
                for cell, v in zip(cells, values, strict=True):
                    cell.append(f"\n{label} {v}", style=DIFFERS)
            table.add_row(*cells)
        if table.row_count:
            parts.append(table)
        if item.equal_again:
            parts.append(Text("  state equal again: " + ", ".join(item.equal_again),
                              style="dim"))
        return Group(*parts)

    @staticmethod
    def _summary(models, summary):
        from rich.console import Group
        from rich.table import Table

        table = Table(title="summary", title_justify="left", box=None, pad_edge=False,
                      header_style="dim")
        table.add_column("")
        for model in models:
            table.add_column(model, justify="right")
        for label, a, b in summary.rows:
            table.add_row(label, a, b, style=DIFFERS if a != b else "")
        verdicts = [Text(f"verdict {model}: {verdict}", style="bold red" if failed else "")
                    for model, verdict, failed in zip(models, summary.verdicts, summary.failed,
                                                      strict=True)]
        return Group(table, *verdicts)
