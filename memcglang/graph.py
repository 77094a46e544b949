"""`memcglang graph`: each page's life as a Graphviz dot graph (docs/plot.md).

A node is a state of one page as the statements leave it: its page_cgroup flags and memcg,
its reference and map counts, its page flags (lru, locked, swapcache) and swap entry, or
`freed`. An edge is the statement that changed it, labelled with its line and text. Pages
are clusters, in the order they appear; a page whose state a statement leaves unchanged gets
no edge. The output is the dot text: `memcglang graph FILE | dot -Tsvg > life.svg`.
"""

from __future__ import annotations


def _state(view: dict) -> str:
    if view["freed"]:
        return "freed"
    flags = view["flags"]
    charge = "uncharged" if flags == "none" else f"{flags} {view['memcg']}"
    parts = [charge, f"ref {view['refcount']} map {view['mapcount']}"]
    page = view["page"]
    if page != "none":
        parts.append(page)
    if view["isolated"] == "yes":
        parts.append("isolated")
    if view["entry"] != "none":
        parts.append(f"entry {view['entry']}")
    if view["huge"] == "yes":
        parts.append("huge")
    return "\n".join(parts)


def _quote(text: str) -> str:
    """A dot string: quotes and backslashes escaped, newlines as dot's `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def dot(program, resolution, model: str) -> tuple[str, bool]:
    """The dot text of every page's life in the scenario under `model`, and whether the run
    failed (the graph then ends where the run stopped)."""
    from memcglang.lang.interpreter import Interpreter

    interp = Interpreter(program, resolution, model)
    engine = interp.engine
    last: dict[str, tuple[str, str]] = {}  # page -> (node id, state)
    nodes: dict[str, list[str]] = {}  # page -> node lines
    edges: list[str] = []
    counts: dict[str, int] = {}  # page -> its states so far
    for rec in interp.run():
        if not rec.results:
            continue
        label = f"{rec.line}: {rec.text}"
        for name, page in list(engine.pages.items()):
            if page.head is not None:  # a split THP's tails: the head's node shows the split
                continue
            state = _state(engine.page_view(name))
            prev = last.get(name)
            if prev is not None and prev[1] == state:
                continue
            node = f"{name.replace('.', '_')}_{counts.get(name, 0)}"
            counts[name] = counts.get(name, 0) + 1
            nodes.setdefault(name, []).append(
                f"    {node} [label={_quote(state)}"
                + (", style=dashed" if state == "freed" else "") + "];")
            if prev is not None:
                edges.append(f"  {prev[0]} -> {node} [label={_quote(label)}];")
            else:
                start = f"{name.replace('.', '_')}_start"
                nodes[name].insert(0, f"    {start} [shape=point];")
                edges.append(f"  {start} -> {node} [label={_quote(label)}];")
            last[name] = (node, state)
    out = [f"// memcglang graph: {program.filename}, model {model}",
           "digraph memcglang {",
           "  rankdir=TB;",
           '  node [shape=box, style=rounded, fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    for n, (name, lines) in enumerate(nodes.items()):
        out.append(f"  subgraph cluster_{n} {{")
        out.append(f"    label={_quote('page ' + name)};")
        out.extend(lines)
        out.append("  }")
    out.extend(edges)
    out.append("}")
    return "\n".join(out) + "\n", interp.failed
