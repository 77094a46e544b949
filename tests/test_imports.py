"""Imports flow one way: engine <- lang <- render <- repl / explore <- cli (STYLE.md).

The engine imports only attrs and the standard library; lark lives only in lang/parser.py,
prompt_toolkit only in repl/app.py, rich only under render/.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import memcglang

PACKAGE = Path(memcglang.__file__).resolve().parent
LAYERS = {"engine": 0, "lang": 1, "render": 2, "runner": 3, "golden": 3, "diff": 3, "repl": 3,
          "explore": 3, "plot": 3, "graph": 3, "reference": 3, "cli": 4, "completion": 4,
          "pytest_plugin": 4}
ONLY_IN = {"lark": "lang/parser.py", "prompt_toolkit": "repl/app.py", "rich": "render/",
           "pygments": "lang/pygments_lexer.py", "matplotlib": "plot.py", "plotext": "plot.py"}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        yield rel, ast.parse(path.read_text(), filename=str(path))


def imported(tree: ast.AST, rel: str):
    package = ["memcglang", *rel.split("/")[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.module


def layer(rel_or_module: str) -> int | None:
    parts = rel_or_module.replace(".py", "").replace("/", ".").split(".")
    if parts[0] == "memcglang":
        parts = parts[1:]
    if not parts:
        return None
    return LAYERS.get(parts[0])


def test_the_package_has_an_engine():
    assert (PACKAGE / "engine" / "mm.py").exists()


def test_engine_imports_only_attrs_and_the_standard_library():
    bad = []
    for rel, tree in modules():
        if not rel.startswith("engine/"):
            continue
        for name in imported(tree, rel):
            top = name.split(".")[0]
            if name.startswith("memcglang.engine") or top in ("attrs", "__future__"):
                continue
            if top in sys.stdlib_module_names:
                continue
            bad.append(f"{rel} imports {name}")
    assert bad == []


def test_imports_flow_one_way():
    bad = []
    for rel, tree in modules():
        mine = layer(rel)
        if mine is None:
            continue
        for name in imported(tree, rel):
            theirs = layer(name) if name.startswith("memcglang") else None
            if theirs is not None and theirs > mine:
                bad.append(f"{rel} (layer {mine}) imports {name} (layer {theirs})")
    assert bad == []


def test_third_party_ui_libraries_stay_in_their_modules():
    bad = []
    for rel, tree in modules():
        for name in imported(tree, rel):
            top = name.split(".")[0]
            home = ONLY_IN.get(top)
            if home and not rel.startswith(home):
                bad.append(f"{rel} imports {top} (only {home} may)")
    assert bad == []


def test_the_checker_itself_sees_a_backwards_import():
    tree = ast.parse("from memcglang.cli import main\nimport rich\n")
    names = list(imported(tree, "engine/mm.py"))
    assert names == ["memcglang.cli", "rich"]
    assert layer("memcglang.cli") > layer("engine/mm.py")
