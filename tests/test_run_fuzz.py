"""`run` on mutated scenarios: whatever the input, an outcome and an exit code, never an
exception (LANGUAGE §4: no input ever produces a Python traceback)."""

from __future__ import annotations

import io
import random
from pathlib import Path

from memcglang import cli

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.mcg"))
WORDS = ["P", "Q", "E", "A", "A/B", "root", "X{i}", "P.1", "H", "0", "7", "64K", "max", "none",
         "yes", "lru|locked", "USED|MEM", "{", "}", "anon", "file", "huge", "fail", "reuse"]


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        words = lines[i].split()
        choice = rng.random()
        if choice < 0.3 and words:
            words[rng.randrange(len(words))] = rng.choice(WORDS)
        elif choice < 0.5:
            lines.insert(i, rng.choice(lines))  # duplicate a line elsewhere
        elif choice < 0.7:
            del lines[i]
        else:
            lines[i], lines[-1] = lines[-1], lines[i]
        if choice < 0.3:
            lines[i] = " ".join(words)
    return "\n".join(lines) + "\n"


def test_mutated_scenarios_only_ever_end_in_an_outcome(tmp_path, capsys):
    rng = random.Random(20141202)
    codes = set()
    for n in range(150):
        source = SCENARIOS[n % len(SCENARIOS)].read_text()
        path = tmp_path / f"m{n}.mcg"
        path.write_text(mutate(source, rng))
        for model in ("v1", "3.17"):
            code = cli.run([str(path)], model, "plain", True, io.StringIO(), io.StringIO())
            assert code in (0, 1, 2)
            codes.add(code)
    assert capsys.readouterr().err == ""
    assert codes == {0, 1, 2}  # the mutations reach every kind of ending


def test_a_few_lines_cannot_run_forever(tmp_path, capsys):
    """Nested repeats are bounded as a whole: a file runs at most MAX_STATEMENTS statements,
    repeats unrolled; beyond that it is a static error at the statement that crosses it."""
    path = tmp_path / "big.mcg"
    path.write_text("memcg A\nrepeat 1000000 as i {\n  repeat 1000000 as j {\n"
                    "    alloc P{i}x{j} anon\n  }\n}\n")
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:1: error: the file would run 1,000,000,000,001 statements" in err
    path.write_text("memcg A\nrepeat 1000 as i {\n  repeat 1000 as j {\n    alloc P{i}x{j} anon\n"
                    "  }\n}\n")
    assert cli.main(["check", str(path)]) == 0  # 1,000,001: well within


def test_a_few_lines_cannot_exhaust_memory(monkeypatch):
    """Pages are bounded (a repeat of huge pages split makes 512 each): a scenario error."""
    from memcglang.engine import Engine, ScenarioError, mm

    monkeypatch.setattr(mm, "MAX_PAGES", 1000)
    e = Engine("3.17")
    e.create_memcg("A")
    e.fault("H", "A", True)
    e.fault("J", "A", True)
    e.split("H")  # 513 pages
    try:
        e.split("J")
    except ScenarioError as err:
        assert "more than 1,000 pages" in str(err)
    else:
        raise AssertionError("the page bound did not hold")
    assert len(e.pages) == 513 and e.page_view("J")["huge"] == "yes"  # refused whole
