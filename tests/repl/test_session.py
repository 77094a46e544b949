"""The REPL's session layer (memcglang/repl/session.py), driven directly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from memcglang import cli
from memcglang.render import plain
from memcglang.repl.session import MetaError, Session, feed

ROOT = Path(__file__).resolve().parents[2]


def session(*chunks: str, model: str | None = None) -> Session:
    s = Session(model)
    for chunk in chunks:
        u = s.execute(chunk)
        assert u.kind in ("ran", "meta", "empty"), (chunk, u.kind, u.diagnostics, u.lines)
    return s


def state(s: Session) -> list[str]:
    return plain.state_lines(s.engine)


def test_statements_run_one_chunk_at_a_time_with_session_positions():
    s = session("memcg A")
    u = s.execute("fault P in A")
    assert u.kind == "ran" and not u.failed
    (rec,) = u.records
    assert rec.pos == "<repl>:2" and rec.text == "fault P in A"
    assert s.engine.memcg_view("A")["usage"] == 1
    assert "P" in u.touched and {"pc_flags", "pc_memcg"} <= u.touched["P"]
    assert u.memcgs_before["A"]["usage"] == 0


def test_a_static_error_changes_nothing_and_the_session_goes_on():
    s = session("memcg A", "fault P in A")
    before, lines = state(s), list(s.lines)
    for bad in ("fault P in A", "fault Q in B", "bogus", "expect P usage 1", "zap {\n}\n}"):
        u = s.execute(bad)
        assert u.kind == "refused" and u.failed and u.diagnostics, bad
        assert state(s) == before and s.lines == lines
    assert s.execute("fault Q in A").kind == "ran"  # the names of refused input stay free


def test_check_reports_without_running():
    s = session("memcg A")
    (d,) = s.check("fault P in B")
    assert (d.line, d.col) == (2, 12) and "B" in d.message
    assert s.check("fault P in A") == []
    assert s.engine.pages == {}  # nothing ran
    assert s.check("fault P in A") == []  # and P is still free to bind


def test_a_kernel_assertion_is_reported_and_rolled_back():
    s = session("memcg A", "fault P in A")
    before = state(s)
    u = s.execute("commit P")
    assert u.failed and u.records[-1].outcome == "bug"
    assert state(s) == before
    assert s.execute("expect P refcount 1").records[0].outcome == "expect"


def test_enomem_keeps_the_failure_path_and_the_session_goes_on():
    s = session("memcg A limit=1", "fault P in A")
    u = s.execute("fault Q in A")
    assert u.failed and u.records[0].outcome == "error"
    assert s.engine.memcg_view("A")["failcnt"] == 6
    assert s.engine.page_view("Q")["freed"]
    assert not s.execute("expect A usage 1").failed


def test_a_block_stopped_midway_is_rolled_back_whole():
    s = session("memcg A", "fault P in A", "fault Q in A")
    before = state(s)
    u = s.execute("zap {\n  unmap P\n  commit Q\n  unmap Q\n}")
    assert u.failed
    assert "rolled back to before it" in u.records[-1].messages[0]
    assert state(s) == before
    assert s.engine.zaps == {} or not any(s.engine.zaps.values())
    assert s.execute("zap {\n  unmap P\n}").records[-1].outcome == "ok"  # no zap left open


def test_undo_and_redo():
    s = session("memcg A", "fault P in A")
    before, lines = state(s), list(s.lines)
    s.execute("zap {\n  unmap P\n}")
    s.execute("fault Q in A")
    u = s.execute(":undo 2")
    assert u.lines == ["took back: fault Q in A", "took back: zap {"]
    assert state(s) == before and s.lines == lines
    assert s.execute(":redo").records[0].text == "zap {"
    assert s.engine.page_view("P")["freed"]
    s.execute(":redo")
    assert s.engine.page_view("Q")["mapcount"] == 1
    with pytest.raises(MetaError):
        s.meta("redo")
    s.execute(":undo")
    assert s.execute("fault Q in A").kind == "ran"  # Q unbound by the undo
    assert s.execute(":undo 9").failed


def test_undo_back_to_nothing_and_setup_again():
    s = session("swapaccount off", "memcg A", "fault P in A")
    s.execute(":undo 3")
    assert s.lines == [] and s.engine is None and s.swap_account
    s.execute("memcg A")
    assert s.engine.memcg_view("A")["usage"] == 0


def test_reset_model_and_replay():
    s = session("memcg A", "fault O in A", "isolate O", "alloc N anon", "migrate O to N")
    assert s.engine.memcg_view("A")["pgpgin"] == 2  # v1: statistics churn at migration
    u = s.execute(":model 3.17")
    assert u.lines == ["replayed 5 statements under 3.17"] and s.model == "3.17"
    assert s.engine.memcg_view("A")["pgpgin"] == 1
    assert s.execute(":model 4.0").failed
    s.execute(":reset")
    assert s.engine is None and s.lines == [] and s.model == "3.17"


def test_mark_and_diff():
    s = session("memcg A", "fault P in A")
    assert "  + page P" in s.execute(":diff").lines
    s.execute(":mark")
    s.execute("get P")
    assert s.execute(":diff").lines == ["changes since :mark:", "  P.refcount: 1 -> 2"]
    s.execute("put P")
    assert s.execute(":diff").lines == ["no changes since :mark"]


def test_help_comes_from_the_verb_table():
    s = Session()
    text = "\n".join(s.execute(":help").lines)
    for verb in ("fault", "swapin", "replace_cache", "zap", ":undo", ":save"):
        assert verb in text
    assert s.execute(":help swapin").lines[0] == "swapin E as Q [in A] [reuse]"
    assert s.execute(":help nothing").failed
    assert s.execute(":frobnicate").failed


def test_save_round_trips_through_run_and_load(tmp_path):
    s = session("memcg A limit=8", "fault P in A", "reclaim P as E", "",
                "# a comment", "swapin E as Q in A", "expect A usage 1", model="3.17")
    path = tmp_path / "saved.mcg"
    assert s.execute(f":save {path}").lines[0].startswith(f"wrote {path}")
    text = path.read_text()
    assert text.startswith("# models: 3.17\n") and "model 3.17\n" in text
    out = io.StringIO()
    assert cli.run([str(path)], None, "plain", False, out, io.StringIO()) == 0
    run_state = out.getvalue().split("state:\n")[1].splitlines()[:-1]
    assert run_state == ["  " + line for line in state(s)]
    fresh = Session()
    fresh.execute(f":load {path}")
    assert state(fresh) == state(s) and fresh.model == "3.17"


def test_save_expect_turns_the_session_into_a_test(tmp_path):
    s = session("memcg A", "fault P in A", "alloc F file", "cache G in A", "truncate G")
    path = tmp_path / "t.mcg"
    s.execute(f":save --expect {path}")
    text = path.read_text()
    assert "expect A usage 1 memsw 1 " in text and "expect G freed" in text
    assert "expect P flags USED|MEM|MEMSW memcg A refcount 1 mapcount 1" in text
    out = io.StringIO()
    assert cli.run([str(path)], "v1", "plain", True, out, io.StringIO()) == 0
    assert ", 0 failed" in out.getvalue()
    # break one number: the saved test catches it
    path.write_text(text.replace("expect A usage 1 memsw 1 ", "expect A usage 2 memsw 1 "))
    assert cli.run([str(path)], "v1", "plain", True, io.StringIO(), io.StringIO()) == 1


def test_save_reports_a_file_it_cannot_write(tmp_path):
    s = session("memcg A")
    u = s.execute(f":save {tmp_path}/no/such/dir/x.mcg")
    assert u.failed and "No such file" in u.lines[0]


def test_completions():
    s = session("memcg A", "fault P in A", "alloc F file")
    assert "fault" in s.completions("") and "swapin" in s.completions("sw")
    assert "usage" in s.completions("expect A ") and "refcount" not in s.completions("expect A ")
    assert "refcount" in s.completions("expect P ")
    assert {"P", "F", "A", "root"} <= set(s.completions("get "))
    assert "swapout" in s.completions("only v1: ")
    assert "fault" in s.completions("expect bug: ")
    assert ":undo" in s.completions(":")
    assert "3.17" in s.completions(":model ")


def test_toolbar():
    s = session("memcg A", "fault P in A")
    bar = s.toolbar()
    assert bar.startswith("model v1 · swap accounting on")
    assert "A 1/1" in bar and "pages 1 entries 0" in bar


@pytest.mark.parametrize("name", ["e3_swap_out_in.mcg", "e6_release_batch.mcg",
                                  "e5_replace_on_lru.mcg", "preconditions/commit_twice.mcg"])
@pytest.mark.parametrize("model", ["v1", "3.17"])
def test_a_piped_session_reproduces_the_scenario_trace(name, model, capsys):
    path = ROOT / "scenarios" / name
    out = io.StringIO()
    cli.run([str(path)], model, "plain", False, out, io.StringIO())
    lines: list[str] = []
    status = feed(Session(model, "<stdin>"), path.read_text().splitlines(True), lines.append)
    assert status == 0
    assert "\n".join(lines).replace("<stdin>", str(path)) + "\n" == out.getvalue()


def test_piped_input_reports_errors_and_goes_on():
    lines: list[str] = []
    text = "memcg A\nfault P in B\nfault P in A\ncommit P\nexpect A usage 1\n"
    status = feed(Session(None, "<stdin>"), text.splitlines(True), lines.append)
    out = "\n".join(lines)
    assert status == 2
    assert "<stdin>:2:12: error: unknown memcg B" in out
    assert "<stdin>:3: fault P in A" in out  # positions stay the input's
    assert "<stdin>:4: commit P\n  kernel BUG (mm): commit/cancel without try_charge" in out
    assert "the run stops here" not in out
    assert "<stdin>:5: expect A usage 1" in out
    assert out.endswith("4 statements, 7 events, 1 expects passed, 0 failed -- FAILED")


def test_piped_input_ends_with_main_checked():
    lines: list[str] = []
    status = feed(Session(None, "<stdin>"), ["memcg A\n", "alloc P anon\n", "lock P\n"],
                  lines.append)
    assert status == 1
    assert any("scenario error" in line and "lock" in line for line in lines)


def test_piped_input_ending_inside_a_block():
    lines: list[str] = []
    status = feed(Session(None, "<stdin>"), ["memcg A\n", "zap {\n"], lines.append)
    assert status == 2 and "ended inside a block" in "\n".join(lines)
