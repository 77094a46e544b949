"""Run the command line in this process, from the repository root, and capture it."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from memcglang import cli

ROOT = Path(__file__).resolve().parents[1]


def mcg(*args: str) -> tuple[int, str, str]:
    """`memcglang ARGS` from the repository root: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(ROOT)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        status = cli.main(list(args))
    except SystemExit as e:  # argparse's usage errors, as the process would exit
        status = e.code
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        os.chdir(old)
    return status, out.getvalue(), err.getvalue()
