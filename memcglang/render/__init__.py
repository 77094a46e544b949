"""Rendering: pure functions from engine values and interpreter records to text.

The plain format (the golden format, docs/trace-format.md) is built here as lines of text;
`memcglang.render.rich` colours the same lines for a terminal and is the only module that
imports rich.
"""
