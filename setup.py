"""Build hook: the LALR parser is built from grammar/memcg.lark when the package is built."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithParser(build_py):
    def run(self):
        super().run()
        script = ROOT / "grammar" / "build.py"
        spec = importlib.util.spec_from_file_location("grammar_build", script)
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        if self.editable_mode:
            builder.build(ROOT / "grammar")  # an editable install reads the source tree
        else:
            out = Path(self.build_lib) / "memcglang" / "grammar"
            out.mkdir(parents=True, exist_ok=True)
            builder.build(ROOT / "grammar", out)


setup(cmdclass={"build_py": BuildPyWithParser})
