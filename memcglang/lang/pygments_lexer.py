"""A Pygments lexer for `.mcg` scenarios (the only module importing pygments).

Registered as a Pygments plugin (entry point `pygments.lexers`: `mcg`), so `pygmentize -l mcg`,
rich's `Syntax(..., "mcg")`, Sphinx and the REPL's input all highlight the language the same
way. The words come from the verb table and the resolver's field lists.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from memcglang.lang.resolver import FIELDS, PCG_FLAGS, PG_FLAGS
from memcglang.lang.verbs import TABLE

VERBS = sorted({v.syntax.split()[0] for v in TABLE}, key=len, reverse=True)
FIELD_NAMES = sorted({f for fields in FIELDS.values() for f in fields}, key=len, reverse=True)
WORDS = ("anon", "file", "shmem", "huge", "lrucare", "fail", "reuse", "in", "to", "as", "with",
         "on", "off", "max", "none", "yes", "no", "cost")
MODELS = ("v1", "3.17", "legacy")


class McgLexer(RegexLexer):
    """memcglang scenarios (.mcg)."""

    name = "memcglang"
    aliases = ["mcg", "memcglang"]
    filenames = ["*.mcg"]
    mimetypes = ["text/x-memcglang"]
    url = "https://github.com/memcglang/memcglang"

    tokens = {
        "root": [
            (r"#.*?$", Comment.Single),
            (r"\n", Whitespace),
            (r"^(\s*)(only)(\s+)([\w.,]+)(\s*)(:)",
             bygroups(Whitespace, Keyword, Whitespace, String, Whitespace, Punctuation), "verb"),
            (r"^(\s*)(only)(\s+)([\w.,]+)", bygroups(Whitespace, Keyword, Whitespace, String)),
            (r"^(\s*)(expect)(\s+)(enomem|bug|violation)(:)",
             bygroups(Whitespace, Keyword, Whitespace, Name.Exception, Punctuation), "verb"),
            (r"^(\s*)(expect)(\s+)(error)(\s+)(E[A-Z]+)(:)",
             bygroups(Whitespace, Keyword, Whitespace, Name.Exception, Whitespace,
                      Name.Exception, Punctuation), "verb"),
            (r"^(\s*)(model)(\s+)(v1|3\.17|legacy)\b", bygroups(Whitespace, Keyword, Whitespace,
                                                              String)),
            (words(VERBS, prefix=r"^(\s*)", suffix=r"\b"), bygroups(Whitespace, Keyword)),
            include("arguments"),
        ],
        "verb": [  # after `only MODELS:` or `expect OUTCOME:`: a statement follows
            (r"[ \t]+", Whitespace),
            (r"(expect)(\s+)(enomem|bug|violation)(:)",
             bygroups(Keyword, Whitespace, Name.Exception, Punctuation)),
            (r"(expect)(\s+)(error)(\s+)(E[A-Z]+)(:)",
             bygroups(Keyword, Whitespace, Name.Exception, Whitespace, Name.Exception,
                      Punctuation)),
            (words(VERBS, suffix=r"\b"), Keyword, "#pop"),
            default("#pop"),
        ],
        "arguments": [
            (r"[ \t\f]+", Whitespace),
            (r"(limit|memsw_limit|hierarchy)(=)", bygroups(Name.Attribute, Operator)),
            (words(FIELD_NAMES, prefix=r"(?<![\w.{])", suffix=r"\b"), Name.Attribute),
            (words(sorted(PCG_FLAGS | PG_FLAGS), suffix=r"\b"), Name.Constant),
            (words(WORDS, prefix=r"(?<![\w.])", suffix=r"\b"), Keyword.Pseudo),
            (r"-?[0-9]+[KkMmGg]?\b", Number),
            (r"[A-Za-z_][\w.]*(?:\{[^}\n]*\}[\w.]*)*", Name.Variable),
            (r"\{[^}\n]*\}[\w.]*", Name.Variable),
            (r"[{}]", Punctuation),
            (r"[=:|,/]", Operator),
            (r".", Text),
        ],
    }


def highlight_html(text: str) -> str:
    """A .mcg text as HTML with inline colours (a self-contained page needs no stylesheet),
    with line numbers."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    return highlight(text, McgLexer(), HtmlFormatter(noclasses=True, linenos="inline",
                                                     style="default", nobackground=True))
