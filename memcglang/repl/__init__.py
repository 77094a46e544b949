"""The interactive REPL: session.py (state, undo, meta commands; no I/O) and app.py
(prompt-toolkit)."""
