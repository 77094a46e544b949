"""The real prompt-toolkit application, driven through a pipe input; the CLI's piped mode;
the Pygments plugin."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from memcglang.repl import app
from memcglang.repl.session import Session

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, what: str, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def repl():
    """The application running in a thread on a pipe; yields (send, session, prompt, out)."""
    session = Session()
    out = io.StringIO()
    with create_pipe_input() as pipe:
        prompt = app.make_prompt(session, pipe, DummyOutput(), InMemoryHistory())
        thread = threading.Thread(target=app.run, args=(session, out, prompt), daemon=True)
        thread.start()
        yield pipe.send_text, session, prompt, out
        pipe.send_text("\x01\x0b:quit\r")
        thread.join(10)
        assert not thread.is_alive()


def test_statements_completion_blocks_and_validation(repl):
    send, session, prompt, out = repl
    buffer = prompt.default_buffer
    send("memcg A\r")
    wait_for(lambda: session.lines == ["memcg A"], "memcg A to run")
    send("fau\t")  # Tab completes the verb
    wait_for(lambda: buffer.text == "fault", "the completion of `fau`")
    send(" P in A\r")
    wait_for(lambda: len(session.lines) == 2, "the fault")
    send("zap {\r")  # Enter inside an open block adds a line
    wait_for(lambda: buffer.text == "zap {\n", "the block's second line")
    assert len(session.lines) == 2
    send("  unmap P\r}\r")
    wait_for(lambda: len(session.lines) == 5, "the block to run")
    assert session.engine.page_view("P")["freed"]
    send("expect P refc")  # a name that is freed still has its fields
    send("\t")
    wait_for(lambda: buffer.text == "expect P refcount", "the field completion")
    send("\x01\x0bfault Q in B\r")  # unknown memcg: refused before it runs, column marked
    wait_for(lambda: buffer.validation_error is not None, "the validation error")
    error = buffer.validation_error
    assert error.cursor_position == len("fault Q in ") and "unknown memcg B" in error.message
    assert len(session.lines) == 5
    send("\x01\x0bexpect A usage 0\r")  # Ctrl-A, Ctrl-K: clear the line, type another
    # the screen prints after the session ran it: wait for the output, not the session
    wait_for(lambda: "<repl>:6: expect A usage 0" in out.getvalue(), "the expect's trace")
    assert len(session.lines) == 6
    text = out.getvalue()
    assert "<repl>:2: fault P in A" in text and "<repl>:3: zap {" in text
    assert "page  flags" in text  # the compact view of the touched page
    assert "<repl>:6: expect A usage 0" in text


def test_pasting_several_statements_runs_each(repl):
    send, session, prompt, out = repl
    send("memcg A\rfault P in A\rfault Q in A\r")
    wait_for(lambda: len(session.lines) == 3, "three statements")
    send("\x1b[200~get P\nget Q\n\x1b[201~")  # a bracketed paste, then Enter
    wait_for(lambda: prompt.default_buffer.text == "get P\nget Q\n", "the paste")
    send("\r")
    wait_for(lambda: len(session.units) == 5, "both pasted statements")
    assert session.engine.page_view("Q")["refcount"] == 2
    send(":undo\r")
    wait_for(lambda: "took back: get Q" in out.getvalue(), "the undo of get Q")
    assert session.engine.page_view("Q")["refcount"] == 1


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memcglang", "repl", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_piped_cli_reproduces_run(tmp_path):
    path = ROOT / "scenarios" / "e3_reuse.mcg"
    piped = run_cli("--model", "3.17", stdin=path.read_text())
    ran = subprocess.run([sys.executable, "-m", "memcglang", "run", str(path), "--model",
                          "3.17", "--plain"], capture_output=True, text=True, timeout=60)
    assert piped.returncode == ran.returncode == 0
    assert piped.stdout.replace("<stdin>", str(path)) == ran.stdout
    assert piped.stderr == ""


def test_piped_cli_with_a_file_first_and_meta_commands(tmp_path):
    first = tmp_path / "setup.mcg"
    first.write_text("memcg A\nfault P in A\n")
    saved = tmp_path / "out.mcg"
    piped = run_cli(str(first), stdin=f"get P\n:undo\n:save --expect {saved}\n:quit\nput P\n")
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert "took back: get P" in piped.stdout
    assert "<stdin>:3: get P" in piped.stdout and "put P" not in piped.stdout
    assert "expect P flags USED|MEM|MEMSW memcg A refcount 1" in saved.read_text()


def test_pygments_knows_the_language():
    from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name
    from pygments.token import Keyword, Name

    from memcglang.lang.pygments_lexer import McgLexer

    assert isinstance(get_lexer_by_name("mcg"), McgLexer)
    assert find_lexer_class_for_filename("x.mcg") is McgLexer
    tokens = [(t, v) for t, v in McgLexer().get_tokens("only v1: expect bug: swapout P\n")
              if v.strip()]
    assert (Keyword, "swapout") in tokens and (Name.Exception, "bug") in tokens
    assert (Name.Variable, "P") in tokens


def test_history_lives_in_the_user_state_directory(tmp_path, monkeypatch):
    from prompt_toolkit.history import FileHistory

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    history = app.default_history()
    assert isinstance(history, FileHistory)
    assert Path(history.filename).parent == tmp_path / "memcglang"


def test_the_compact_view_highlights_what_changed():
    from memcglang.render.rich import CHANGED, compact_state

    session = Session()
    session.execute("memcg A")
    session.execute("memcg B")
    update = session.execute("fault P in A")
    memcgs, pages = compact_state(session.engine, update.memcgs_before, update.touched)
    usage = {row: memcgs.columns[1]._cells[row] for row in range(3)}  # root, A, B
    assert usage[1].plain == "1" and usage[1].style == CHANGED
    assert usage[2].plain == "0" and usage[2].style == ""  # B did not change
    flags = pages.columns[1]._cells[0]
    assert flags.plain == "USED|MEM|MEMSW" and flags.style == CHANGED
    isolated = pages.columns[6]._cells[0]
    assert isolated.plain == "no" and isolated.style == ""
