"""The terminal REPL (the only module importing prompt_toolkit).

Input: the .mcg Pygments lexer for colour, completion of verbs, fields and live names, the
real parser and resolver validating a chunk (the error column marked) before it is accepted,
history in the user's state directory, multi-line blocks (Enter inside an open `{` adds a
line) and pasted text of several statements. Output: each statement's trace and a compact
state view through rich (memcglang.render.rich). The session itself is
memcglang.repl.session; nothing here changes state.
"""

from __future__ import annotations

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.validation import ValidationError, Validator

from memcglang.lang.pygments_lexer import McgLexer
from memcglang.render.rich import Screen
from memcglang.repl.session import Session


class McgCompleter(Completer):
    """Verbs at a statement's start, fields after `expect TARGET`, live names elsewhere."""

    def __init__(self, session: Session):
        self.session = session

    def get_completions(self, document, complete_event):
        before = document.current_line_before_cursor
        word = document.get_word_before_cursor(WORD=True)
        if word.startswith(":") and not before.lstrip().startswith(":"):
            word = ""
        seen = set()
        for candidate in self.session.completions(before):
            if candidate.startswith(word) and candidate != word and candidate not in seen:
                seen.add(candidate)
                yield Completion(candidate, start_position=-len(word))


class McgValidator(Validator):
    """The parser and the resolver, as if the chunk ran next; an open block is not an error
    (Enter adds a line to it)."""

    def __init__(self, session: Session):
        self.session = session

    def validate(self, document) -> None:
        text = document.text
        if not text.lstrip().startswith(":") and not Session.is_complete(text):
            return
        diagnostics = self.session.check(text)
        if not diagnostics:
            return
        d = diagnostics[0]
        lines = text.split("\n")
        row = min(max(d.line - len(self.session.lines), 1), len(lines))
        offset = sum(len(line) + 1 for line in lines[: row - 1]) + max(d.col - 1, 0)
        hint = f" ({d.hint})" if d.hint else ""
        more = f" [+{len(diagnostics) - 1} more]" if len(diagnostics) > 1 else ""
        raise ValidationError(cursor_position=min(offset, len(text)),
                              message=f"line {row}, column {d.col}: {d.message}{hint}{more}")


def key_bindings() -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter")
    def _enter(event) -> None:
        buffer = event.current_buffer
        text = buffer.text
        if text.lstrip().startswith(":") or Session.is_complete(text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    @kb.add("escape", "enter")
    def _newline(event) -> None:
        event.current_buffer.insert_text("\n")

    return kb


def default_history() -> History:
    """History in the user's state directory (platformdirs); in memory if it cannot be made."""
    try:
        import platformdirs

        directory = platformdirs.user_state_path("memcglang")
        directory.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(directory / "history"))
    except OSError:
        return InMemoryHistory()


def make_prompt(session: Session, input=None, output=None,
                history: History | None = None) -> PromptSession:
    return PromptSession(
        message=lambda: f"{session.model}> ",
        multiline=True,
        prompt_continuation=lambda width, line, soft: "." * (width - 1) + " ",
        lexer=PygmentsLexer(McgLexer),
        completer=McgCompleter(session),
        complete_while_typing=False,
        validator=McgValidator(session),
        validate_while_typing=False,
        key_bindings=key_bindings(),
        bottom_toolbar=lambda: session.toolbar(),
        history=history if history is not None else default_history(),
        input=input,
        output=output,
        enable_history_search=True,
    )


def run(session: Session, out, prompt: PromptSession | None = None) -> int:
    """Read, run and show until :quit or end of input. Exit status: 0."""
    prompt = prompt or make_prompt(session)
    screen = Screen(out)
    screen.banner(session.model, session.swap_account)
    while True:
        try:
            text = prompt.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        update = session.execute(text)
        if update.kind == "quit":
            break
        screen.update(update, session.engine)
    return 0
