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
