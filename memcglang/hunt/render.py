"""The text of a hunt's scenarios: the setup, and paths with `expect …:` where they need one."""

from __future__ import annotations

from memcglang.hunt.paths import Stmt

# a comment above the paths of several statements, so the scenario reads as what happened
PATH_COMMENTS = {
    "migrate": "migration (compaction, NUMA, hot-remove): isolate, a new page, migrate_pages",
    "replace_cache": "FUSE splice (fuse_try_move_page): replace_page_cache_page",
}
OUTCOME_PREFIX = {"ok": "", "kept": "", "failed": "", "enomem": "expect enomem: ",
                  "violation": "expect violation: ", "bug": "expect bug: "}


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def prefix(outcome: str) -> str:
    """The `expect …:` a statement with this outcome needs for the scenario to pass."""
    if outcome.startswith("error "):
        return f"expect {outcome}: "
    return OUTCOME_PREFIX[outcome]


def setup_lines(setup) -> list[str]:
    out = [f"swapaccount {'on' if setup.swap_account else 'off'}"]
    for path, limit, memsw_limit, hierarchy in setup.memcgs:
        words = [f"memcg {path}"]
        if limit is not None:
            words.append(f"limit={limit}")
        if memsw_limit is not None:
            words.append(f"memsw_limit={memsw_limit}")
        if hierarchy is not None:
            words.append(f"hierarchy={'on' if hierarchy else 'off'}")
        out.append(" ".join(words))
    return out


class Lines:
    """Statements as lines, blocks indented; an outcome that needs it gets its `expect …:`
    (on a block's first line when it is the block's end that ended so)."""

    def __init__(self, depth: int = 0):
        self.lines: list[str] = []
        self.depth = depth
        self.opened: list[int] = []  # index of each open block's first line

    def comment(self, text: str) -> None:
        self.lines.append("  " * self.depth + "# " + text)

    def stmt(self, stmt: Stmt, outcome: str = "ok") -> None:
        if stmt.method.endswith("_end"):
            self.depth -= 1
            start = self.opened.pop()
            if prefix(outcome):
                line = self.lines[start]
                body = line.lstrip()
                self.lines[start] = line[: len(line) - len(body)] + prefix(outcome) + body
            self.lines.append("  " * self.depth + "}")
            return
        self.lines.append("  " * self.depth + prefix(outcome) + stmt.text)
        if stmt.method.endswith("_begin"):
            self.opened.append(len(self.lines) - 1)
            self.depth += 1

    def path(self, path, outcomes: list[str] | None = None, cut: int | None = None) -> None:
        stmts = path.stmts if cut is None else path.stmts[:cut]
        if path.kind in PATH_COMMENTS and len(stmts) > 1:
            self.comment(PATH_COMMENTS[path.kind])
        for i, stmt in enumerate(stmts):
            self.stmt(stmt, outcomes[i] if outcomes is not None else "ok")

    @property
    def statements(self) -> int:
        return sum(1 for line in self.lines if not line.lstrip().startswith(("#", "}")))
