"""`memcglang plot` (SVG, PNG, text, the HTML page in headless Chromium), `memcglang graph`
and `memcglang completion` (memcglang/plot.py, graph.py, completion.py; docs/plot.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import mcg

from memcglang import graph, plot
from memcglang.runner import load

ROOT = Path(__file__).resolve().parents[1]
E3 = ROOT / "scenarios" / "e3_swap_out_in.mcg"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def samples(model: str = "3.17") -> plot.Samples:
    program, resolution = load(str(E3))
    return plot.sample(program, resolution, model)


def test_the_series_of_a_swap_cycle_are_semantics_e3():
    """SEMANTICS §6 E3 (3.17): fault 1/1; swapout 0/1 with the swap record; the swap-in's
    try_charge 1/2; commit and swap_free 1/1; the unmap frees it; then the same cycle with
    reuse. (usage, memsw, rss, swap) of A at each change, with its line."""
    s = samples()
    changes = []
    for n, line in enumerate(s.lines):
        v = tuple(s.values["A"][k][n] for k in ("usage", "memsw", "rss", "swap"))
        if not changes or changes[-1][1] != v:
            changes.append((line, v))
    assert changes == [
        (25, (0, 0, 0, 0)), (28, (1, 1, 1, 0)), (52, (0, 1, 0, 1)), (67, (1, 2, 0, 1)),
        (74, (1, 1, 1, 0)), (96, (0, 0, 0, 0)), (103, (1, 1, 1, 0)), (104, (0, 1, 0, 1)),
        (108, (1, 1, 1, 0)), (118, (0, 0, 0, 0)),
    ]
    assert s.monotonic and s.shown() == ["root", "A"] and not s.failed


def test_png_and_svg_are_written_and_svg_is_deterministic(tmp_path):
    s = samples()
    plot.save(s, str(tmp_path / "a.png"))
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot.save(s, str(tmp_path / "a.svg"))
    plot.save(samples(), str(tmp_path / "b.svg"))
    svg = (tmp_path / "a.svg").read_text()
    assert svg == (tmp_path / "b.svg").read_text()
    assert "memcg A" in svg and "e3_swap_out_in.mcg, model 3.17" in svg


def test_the_terminal_plot_names_each_memcg_and_series():
    text = plot.terminal(samples(), 80, 16)
    assert "memcg A (pages)" in text and "memcg root (pages)" in text
    for series in plot.SERIES:
        assert series in text
    assert "\x1b[" not in text


def test_the_html_page_is_self_contained(tmp_path):
    status, out, err = mcg("plot", str(E3), "--model", "3.17", "--html", "-o",
                           str(tmp_path / "e3.html"))
    assert status == 0 and err == ""
    page = (tmp_path / "e3.html").read_text()
    assert page.count("<svg") == 1 and "<script" not in page
    assert "src=" not in page  # nothing to fetch: links only within the page
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', page))
    assert "swapout P" in page and "mem_cgroup_swapout(P, E)" in page  # scenario and trace
    assert "expects passed, 0 failed" in page


def _colour_count(image, colour: tuple[int, int, int], box=None) -> int:
    """Pixels within 12 of `colour` in every channel (numpy: matplotlib's own dependency)."""
    import numpy

    pixels = numpy.asarray(image.crop(box) if box else image, dtype=numpy.int16)[..., :3]
    return int((numpy.abs(pixels - numpy.array(colour)) <= 12).all(axis=-1).sum())


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="headless Chromium is not installed (.ci/run installs it)")
def test_the_html_page_renders_the_plot_and_the_trace_in_chromium(tmp_path):
    """Headless Chromium renders the page: the screenshot (tall enough for the whole page)
    holds the plot's usage line (its red), the scenario's box (grey) and the trace's box (its
    own cream background), each with text in it."""
    from PIL import Image

    assert CHROMIUM is not None, "CI must have headless Chromium (.ci/run installs it)"
    html = tmp_path / "e3.html"
    assert mcg("plot", str(E3), "--model", "3.17", "--html", "-o", str(html))[0] == 0
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1200,9000",
                    f"--screenshot={shot}", html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 9000)
    red = _colour_count(image, (0xD6, 0x27, 0x28))  # the usage series (alpha on white)
    red += _colour_count(image, (0xEA, 0x9B, 0x9B))
    assert red > 500, "the plot's usage line is not on the screenshot"
    for name, background in (("scenario", (0xF6, 0xF8, 0xFA)), ("trace", (0xFB, 0xF7, 0xEC))):
        rows = _box_rows(image, background)
        assert len(rows) > 100, f"the {name} box is not on the screenshot"
        dark = sum(1 for y in rows for x in range(0, image.size[0], 2)
                   if sum(image.getpixel((x, y))[:3]) < 300)
        assert dark > 500, f"the {name} box has no text"


def _box_rows(image, background) -> list[int]:
    """The rows (every 4th) where the box's background fills most of the width."""
    width, height = image.size
    return [y for y in range(0, height, 4)
            if _colour_count(image, background, (0, y, width, y + 1)) > width // 2]


def test_plot_usage_errors():
    assert mcg("plot", str(E3))[0] == 2
    status, _, err = mcg("plot", str(E3), "-o", "x.html")
    assert status == 2 and "ends in .svg or .png (or give --html)" in err
    status, _, err = mcg("plot", str(E3), "--html", "-o", "x.svg")
    assert status == 2 and "ends in .html or .htm" in err
    status, out, _ = mcg("plot", str(E3), "--terminal", "--model", "legacy")
    assert status == 0 and "model legacy: memcg A" in out


def test_the_graph_is_each_page_s_life():
    program, resolution = load(str(E3))
    text, failed = graph.dot(program, resolution, "3.17")
    assert not failed
    assert text.startswith("// memcglang graph: ") and text.rstrip().endswith("}")
    assert 'label="page P";' in text and 'label="page Q";' in text
    assert 'P_0 [label="USED|MEM|MEMSW A\\nref 1 map 1\\nlru"];' in text
    assert 'P_start -> P_0 [label="28: fault P in A"];' in text
    assert '[label="52: swapout P"]' in text and 'label="freed", style=dashed' in text
    # every node but the start points has one edge in
    nodes = [line.split()[0] for line in text.splitlines()
             if line.startswith("    ") and "[label=" in line]
    targets = [line.split("->")[1].split()[0] for line in text.splitlines() if "->" in line]
    assert sorted(nodes) == sorted(targets)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_reads_the_graph(tmp_path):
    status, text, _ = mcg("graph", str(E3))
    assert status == 0
    subprocess.run(["dot", "-Tsvg", "-o", str(tmp_path / "g.svg")], input=text, text=True,
                   check=True, timeout=60)


def test_bash_completion_completes_commands_options_and_values(tmp_path):
    (tmp_path / "a.mcg").write_text("memcg A\n")
    (tmp_path / "b.txt").write_text("")
    script = mcg("completion", "bash")[1]
    probe = script + """
t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); _memcglang;
      echo "${COMPREPLY[*]}"; }
t memcglang ex
t memcglang explore --max-s
t memcglang run a.mcg --model ""
t memcglang diff --models 3
t memcglang ""
t memcglang check ""
"""
    got = subprocess.run(["bash", "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert got[0] == "explore"
    assert got[1] == "--max-states"
    assert got[2] == "v1 3.17 legacy"
    assert got[3] == "3.17,v1 3.17,legacy"
    assert got[4].split() == ["check", "test", "repl", "diff", "explore", "hunt", "plot",
                              "graph", "completion", "a.mcg"]
    assert got[5] == "a.mcg"


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts(shell):
    status, text, _ = mcg("completion", shell)
    assert status == 0
    if shell == "zsh":
        assert "bashcompinit" in text and "complete -o filenames -F _memcglang" in text
    else:
        assert "complete -c memcglang -n '__fish_seen_subcommand_from explore' -l max-states" \
            in text
        assert "-l model -x -a 'v1 3.17 legacy'" in text
