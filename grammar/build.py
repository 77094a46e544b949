"""Build the LALR parser of memcg.lark once, at package build time, and save it beside it.

The saved file starts with a JSON header line naming the grammar's SHA-256 and the Lark
version it was built with; `memcglang.lang.parser` loads it only when both match, and builds
from the grammar otherwise. Used by setup.py's build_py; also `python grammar/build.py`.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

GRAMMAR = "memcg.lark"
BUILT = "memcg.lark.lalr"
OPTIONS = {"parser": "lalr", "lexer": "contextual", "maybe_placeholders": False}


def header(grammar_text: str) -> dict:
    import lark

    return {
        "grammar_sha256": hashlib.sha256(grammar_text.encode("utf-8")).hexdigest(),
        "lark": lark.__version__,
    }


def build(grammar_dir: Path, out_dir: Path | None = None) -> Path:
    """Build the parser from grammar_dir/memcg.lark into out_dir/memcg.lark.lalr."""
    from lark import Lark

    text = (grammar_dir / GRAMMAR).read_text(encoding="utf-8")
    parser = Lark(text, **OPTIONS)
    buf = io.BytesIO()
    parser.save(buf)
    out = (out_dir or grammar_dir) / BUILT
    out.write_bytes(json.dumps(header(text)).encode() + b"\n" + buf.getvalue())
    return out


if __name__ == "__main__":
    print(build(Path(__file__).resolve().parent))
