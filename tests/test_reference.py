"""docs/reference.md is generated from the verb table and the verbs' examples
(memcglang/reference.py): it must be what the generator prints now, name every verb, and each
example must run cleanly under its models (the generator raises otherwise)."""

from __future__ import annotations

from memcglang import reference
from memcglang.lang.reference_examples import EXAMPLES
from memcglang.lang.verbs import TABLE


def test_the_reference_is_up_to_date():
    assert reference.REFERENCE.read_text(encoding="utf-8") == reference.generate(), (
        "docs/reference.md is out of date: run `python -m memcglang.reference` and read the "
        "diff")


def test_every_verb_is_in_the_reference():
    text = reference.REFERENCE.read_text(encoding="utf-8")
    for verb in TABLE:
        assert f"### `{verb.name}`" in text
        assert f"`{verb.syntax}`" in text
    for name in ("zap", "batch"):
        assert f"### `{name}`" in text


def test_every_statement_with_an_engine_call_has_an_example_under_every_model():
    with_engine = {v.name for v in TABLE if v.engine is not None} | {"zap", "batch"}
    assert set(EXAMPLES) == with_engine
    for name, ex in EXAMPLES.items():
        assert ex.models == ("v1", "3.17", "legacy"), name
        assert ex.preconditions.strip(), name


def test_a_changed_behaviour_shows_as_a_stale_reference(monkeypatch):
    """The check compares the whole text: an engine call renamed would make it fail."""
    text = reference.generate()
    assert "  do_anonymous_page(P)" in text
    monkeypatch.setattr(reference, "generate", lambda: text.replace("do_anonymous_page",
                                                                    "do_anon_page"))
    assert reference.main(["--check"]) == 1
