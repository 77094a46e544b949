"""The .mcg grammar files, shipped inside the wheel as package data (`memcglang.grammar`)."""

from __future__ import annotations

from pathlib import Path

GRAMMAR_DIR = Path(__file__).resolve().parent
