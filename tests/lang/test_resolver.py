"""The resolver: name, kind, setup, size, repeat, thread and expect checks (LANGUAGE.md §1,
§3, §4). Every error carries its position; all of a file's errors come at once, in line order.
"""

from __future__ import annotations

import pytest
from diag_helpers import text_of, where

from memcglang.lang import ast
from memcglang.lang.diagnostics import StaticErrors
from memcglang.lang.parser import parse
from memcglang.lang.resolver import MAX_REPEAT, Resolution, resolve, size_in_pages

HINT_BOUND = "a name is bound once and never reused"
HINT_SETUP = "setup statements (model, swapaccount, memcg) open the file"
HINT_SIZE = "a size is a page count (16), bytes in whole 4K pages (64K, 2M, 1G), or max"
HINT_THREADS = "a file with threads is: setup, thread blocks, postconditions"
PAGE_FIELDS = ("page fields: entry, flags, freed, huge, isolated, kind, mapcount, memcg, page, "
               "refcount")
MEMCG_FIELDS = ("memcg fields: cache, css, failcnt, limit, max_usage, memsw, memsw_failcnt, "
                "memsw_limit, memsw_max_usage, pgpgin, pgpgout, reported_usage, rss, rss_huge, "
                "swap, usage")
COST_FIELDS = "cost fields: batches, pc_lock, res_counter"


def ok(text: str) -> Resolution:
    return resolve(parse(text, "t.mcg"))


def resolve_errors(text: str, **kw) -> StaticErrors:
    program = parse(text, "t.mcg")  # the file must be syntactically fine
    with pytest.raises(StaticErrors) as info:
        resolve(program, **kw)
    return info.value


def where_hint(err: StaticErrors) -> list[tuple[int, int, str, str | None]]:
    return [(d.line, d.col, d.message, d.hint) for d in err.diagnostics]


# -- exact user-facing text, one case of each kind ----------------------------------------------


def test_format_unknown_name_with_did_you_mean():
    err = resolve_errors("memcg Alpha\nfault P in Alpah\n")
    assert err.format() == text_of(
        "t.mcg:2:12: error: unknown memcg Alpah",
        "    fault P in Alpah",
        "               ^~~~~",
        "    hint: did you mean Alpha?",
    )


def test_format_name_bound_twice():
    err = resolve_errors("alloc P anon\n# again\nalloc P file\n")
    assert err.format() == text_of(
        "t.mcg:3:7: error: P is already bound (a page, on line 1)",
        "    alloc P file",
        "          ^",
        f"    hint: {HINT_BOUND}",
    )


def test_format_wrong_kind_has_no_hint_line():
    err = resolve_errors("memcg A\nunmap A\n")
    assert err.format() == text_of(
        "t.mcg:2:7: error: A is a memcg, not a page",
        "    unmap A",
        "          ^",
    )


def test_format_setup_after_other_statements():
    err = resolve_errors("memcg A\nfault P in A\nmodel v1\n")
    assert err.format() == text_of(
        "t.mcg:3:1: error: `model` must come before every other statement",
        "    model v1",
        "    ^~~~~",
        f"    hint: {HINT_SETUP}",
    )


def test_format_size_not_whole_pages():
    err = resolve_errors("memcg A limit=10K\n")
    assert err.format() == text_of(
        "t.mcg:1:9: error: limit=10K is not a whole number of pages",
        "    memcg A limit=10K",
        "            ^~~~~~~~~",
        f"    hint: {HINT_SIZE}",
    )


def test_format_repeat_count():
    err = resolve_errors("repeat 1000001 as i {\n}\n")
    assert err.format() == text_of(
        "t.mcg:1:8: error: repeat count 1000001 must be a whole number from 0 to 1,000,000",
        "    repeat 1000001 as i {",
        "           ^~~~~~~",
    )


def test_format_thread_after_threads_and_nested():
    err = resolve_errors(text_of(
        "memcg A",
        "thread T {",
        "  zap {",
        "    thread U {",
        "    }",
        "  }",
        "}",
        "fault Q in A",
        "",
    ))
    assert err.format() == text_of(
        "t.mcg:4:5: error: a thread block stands at the top level only",
        "        thread U {",
        "        ^~~~~~",
        "t.mcg:8:1: error: after the thread blocks only `expect` and `show` may follow",
        "    fault Q in A",
        "    ^~~~~",
        f"    hint: {HINT_THREADS}",
    )


def test_format_expect_field_of_the_wrong_target():
    err = resolve_errors("memcg A\nfault P in A\nexpect P usage 1\n")
    assert err.format() == text_of(
        "t.mcg:3:10: error: usage is not a field of a page",
        "    expect P usage 1",
        "             ^~~~~",
        f"    hint: {PAGE_FIELDS}",
    )


def test_format_expect_bad_value():
    err = resolve_errors("memcg A\nfault P in A\nexpect P flags USED|BOGUS\n")
    assert err.format() == text_of(
        "t.mcg:3:16: error: USED|BOGUS is not a value of flags",
        "    expect P flags USED|BOGUS",
        "                   ^~~~~~~~~~",
        "    hint: expected PCG flags joined by | (USED|MEM|MEMSW, MIGRATION) or none",
    )


def test_format_tabs_crlf_and_bom_in_resolver_errors():
    err = resolve_errors("\ufeffmemcg A\r\n\tunmap\tA\r\n")
    assert err.format() == text_of(
        "t.mcg:2:8: error: A is a memcg, not a page",
        "     unmap A",
        "           ^",
    )
    shown, caret = err.format().split("\n")[1:3]
    assert shown[caret.index("^")] == "A"


# -- unknown names, "did you mean" ----------------------------------------------------------------

UNKNOWN = {
    "page-close": ("memcg A\nalloc Page1 anon\nunmap Page2\n",
                   [(3, 7, "unknown page Page2", "did you mean Page1?")]),
    "page-far": ("memcg A\nalloc P anon\nunmap Zebra\n",
                 [(3, 7, "unknown page Zebra", None)]),
    "entry-close": ("memcg A\nfault P in A\nreclaim P as Swp1\nfree_swap Swp2\n",
                    [(4, 11, "unknown entry Swp2", "did you mean Swp1?")]),
    "entry-none-bound": ("memcg A\nfree_swap E\n", [(2, 11, "unknown entry E", None)]),
    "memcg-far": ("memcg A\nfault P in Zz\n",
                  [(2, 12, "unknown memcg Zz", "declare it with `memcg`")]),
    "memcg-child": ("memcg A\nmemcg A/B\nfault P in A/C\n",
                    [(3, 12, "unknown memcg A/C", "did you mean A/B?")]),
    "memcg-in-set": ("memcg Alpha\nset Alpah limit=16\n",
                     [(2, 5, "unknown memcg Alpah", "did you mean Alpha?")]),
    "expect-target": ("memcg A\nfault P in A\nexpect Pq refcount 1\n",
                      [(3, 8, "unknown name Pq", "did you mean P?")]),
    "show-target": ("memcg A\nshow Zq\n", [(2, 6, "unknown name Zq", None)]),
    "move-target": ("memcg A\nfault P in A\nmove Pp to A\n",
                    [(3, 6, "unknown page or entry Pp", "did you mean P?")]),
    "release-each": ("memcg A\nfault P in A\nrelease P Q P R\n",
                     [(3, 11, "unknown page Q", None), (3, 15, "unknown page R", None)]),
    "cow-old": ("memcg A\ncow P to Q in A\n", [(2, 5, "unknown page P", None)]),
    "expect-value-memcg": ("memcg A\nfault P in A\nexpect P memcg B\n",
                           [(3, 16, "unknown memcg B", "declare it with `memcg`")]),
    "expect-value-entry": ("memcg A\nfault P in A\nexpect P entry Q\n",
                           [(3, 16, "unknown entry Q", None)]),
    "expect-value-page": ("memcg A\nfault P in A\nreclaim P as E\nexpect E page Qx\n",
                          [(4, 15, "unknown page Qx", None)]),
    # used before it exists: the later binding does not count
    "page-before-alloc": ("memcg A\nmap P\nalloc P anon\n",
                          [(2, 5, "P is used before it exists", "it is bound on line 3")]),
    "entry-before-bound": ("memcg A\nfault P in A\nfree_swap E\nreclaim P as E\n",
                           [(3, 11, "E is used before it exists", "it is bound on line 4")]),
    "tail-before-split": ("memcg A\nfault H in A huge\nexpect H.1 refcount 1\nsplit H\n",
                          [(3, 8, "unknown name H.1", None)]),
    "memcg-used-in-setup-order": ("memcg A/B\nmemcg A\n",
                                  [(1, 7, "memcg A is not declared before A/B",
                                    "declare `memcg A` first")]),
}


@pytest.mark.parametrize("text, expected", UNKNOWN.values(), ids=UNKNOWN.keys())
def test_unknown_names(text, expected):
    assert where_hint(resolve_errors(text)) == expected


def test_unknown_name_caret_covers_the_name():
    (d,) = resolve_errors("memcg A\nalloc Page1 anon\nunmap Page2\n").diagnostics
    assert d.width == len("Page2")
    (d,) = resolve_errors("memcg A\nmemcg A/B\nfault P in A/C\n").diagnostics
    assert d.width == len("A/C")


# -- names bound twice -------------------------------------------------------------------------

TWICE = {
    "alloc-twice": ("alloc P anon\nalloc P file\n",
                    [(2, 7, "P is already bound (a page, on line 1)")]),
    "fault-existing": ("memcg A\nalloc P anon\nfault P in A\n",
                       [(3, 7, "P is already bound (a page, on line 2)")]),
    "cache-existing": ("memcg A\nfault P in A\ncache P in A\n",
                       [(3, 7, "P is already bound (a page, on line 2)")]),
    "cow-to-existing": ("memcg A\nfault P in A\nfault Q in A\ncow P to Q in A\n",
                        [(4, 10, "Q is already bound (a page, on line 3)")]),
    "memcg-twice": ("memcg A\nmemcg A\n", [(2, 7, "A is already bound (a memcg, on line 1)")]),
    "memcg-twice-via-root": ("memcg A\nmemcg root/A\n",
                             [(2, 7, "A is already bound (a memcg, on line 1)")]),
    "page-as-entry": ("memcg A\nfault P in A\nfault Q in A\nreclaim P as Q\n",
                      [(4, 14, "Q is already bound (a page, on line 3)")]),
    "page-as-its-own-entry": ("memcg A\nfault P in A\nadd_to_swap P as P\n",
                              [(3, 18, "P is already bound (a page, on line 2)")]),
    "memcg-as-page": ("memcg A\nalloc A anon\n",
                      [(2, 7, "A is already bound (a memcg, on line 1)")]),
    "thread-as-page": ("memcg A\nfault P in A\nthread P {\n}\n",
                       [(3, 8, "P is already bound (a page, on line 2)")]),
    "thread-twice": ("thread T {\n}\nthread T {\n}\n",
                     [(3, 8, "T is already bound (a thread, on line 1)")]),
    "family-twice": ("memcg A\nrepeat 2 as i {\n  fault P{i} in A\n}\n"
                     "repeat 2 as j {\n  fault P{j} in A\n}\n",
                     [(6, 9, "P{j} is already bound (a page, on line 3)")]),
    "member-of-family": ("memcg A\nrepeat 2 as i {\n  fault P{i} in A\n}\nalloc P1 anon\n",
                         [(5, 7, "P1 is already bound (a page, on line 3)")]),
    "freed-name-not-reused": ("memcg A\nfault P in A\nunmap P\nexpect P freed\nfault P in A\n",
                              [(5, 7, "P is already bound (a page, on line 2)")]),
}


@pytest.mark.parametrize("text, expected", TWICE.values(), ids=TWICE.keys())
def test_names_are_bound_once(text, expected):
    err = resolve_errors(text)
    assert where(err) == expected
    assert all(d.hint == HINT_BOUND for d in err.diagnostics)


def test_rebinding_root_says_it_is_built_in():
    (d,) = resolve_errors("memcg A\nalloc root anon\n").diagnostics
    assert (d.line, d.col) == (2, 7)
    assert d.message.startswith("root is already bound")
    assert "on the start" not in d.message


def test_rebinding_root_is_an_error():
    (d,) = resolve_errors("memcg A\nalloc root anon\n").diagnostics
    assert (d.line, d.col, d.hint) == (2, 7, HINT_BOUND)
    assert d.message.startswith("root is already bound")


# -- names of the wrong kind ---------------------------------------------------------------------

WRONG_KIND = {
    "unmap-memcg": ("memcg A\nunmap A\n", [(2, 7, "A is a memcg, not a page")]),
    "fault-in-page": ("memcg A\nfault P in A\nfault Q in P\n",
                      [(3, 12, "P is a page, not a memcg")]),
    "charge-to-page": ("memcg A\nfault P in A\nalloc Q anon\ncharge Q to P\n",
                       [(4, 13, "P is a page, not a memcg")]),
    "move-memcg": ("memcg A\nmove A to A\n", [(2, 6, "A is a memcg, not a page or an entry")]),
    "unmap-thread": ("thread T {\n  unmap T\n}\n", [(2, 9, "T is a thread, not a page")]),
    "expect-thread": ("thread T {\n}\nexpect T refcount 1\n",
                      [(3, 8, "T is a thread; expect a page, memcg or swap entry")]),
    "show-thread": ("thread T {\n}\nshow T\n",
                    [(3, 6, "T is a thread; expect a page, memcg or swap entry")]),
    "expect-memcg-value-page": ("memcg A\nfault P in A\nexpect P memcg P\n",
                                [(3, 16, "P is a page, not a memcg")]),
    "readahead-as-memcg": ("memcg A\nfault P in A\nreclaim P as E\nreadahead E as A\n",
                           [(4, 16, "A is a memcg, not a page")]),
    "swapin-as-memcg": ("memcg A\nfault P in A\nreclaim P as E\nswapin E as A\n",
                        [(4, 13, "A is a memcg, not a page")]),
}


@pytest.mark.parametrize("text, expected", WRONG_KIND.values(), ids=WRONG_KIND.keys())
def test_names_of_the_wrong_kind(text, expected):
    assert where(resolve_errors(text)) == expected


@pytest.mark.parametrize(
    "text, line, col, start",
    [
        ("memcg A\nfault P in A\nfree_swap P\n", 3, 11, "P is a page, not a"),
        ("memcg A\nfault P in A\nswapin P as Q\n", 3, 8, "P is a page, not a"),
        ("memcg A\nfault P in A\nreclaim P as E\nunmap E\n", 4, 7, "E is a"),
    ],
    ids=["free_swap-page", "swapin-page", "unmap-entry"],
)
def test_entries_and_pages_are_not_interchangeable(text, line, col, start):
    (d,) = resolve_errors(text).diagnostics
    assert (d.line, d.col) == (line, col)
    assert d.message.startswith(start)


def test_messages_say_an_entry():
    err = resolve_errors(text_of(
        "memcg A",
        "fault P in A",
        "free_swap P",
        "reclaim P as E",
        "alloc E anon",
        "expect E refcount 1",
        "",
    ))
    assert where(err) == [
        (3, 11, "P is a page, not an entry"),
        (5, 7, "E is already bound (an entry, on line 4)"),
        (6, 10, "refcount is not a field of an entry"),
    ]


# -- setup ------------------------------------------------------------------------------------

SETUP = {
    "model-after-fault": ("memcg A\nfault P in A\nmodel v1\n",
                          [(3, 1, "`model` must come before every other statement", HINT_SETUP)]),
    "swapaccount-after-alloc": (
        "alloc P anon\nswapaccount off\n",
        [(2, 1, "`swapaccount` must come before every other statement", HINT_SETUP)]),
    "memcg-after-set": ("memcg A\nset A limit=1\nmemcg B\n",
                        [(3, 1, "`memcg` must come before every other statement", HINT_SETUP)]),
    "memcg-in-thread": ("thread T {\n  memcg B\n}\n",
                        [(2, 3, "`memcg` must come before every other statement", HINT_SETUP)]),
    "model-in-zap": ("zap {\n  model v1\n}\n",
                     [(2, 3, "`model` must come before every other statement", HINT_SETUP)]),
    "model-twice": ("model v1\nmodel 3.17\n",
                    [(2, 1, "`model` is given twice", "the first is on line 1")]),
    "swapaccount-twice": ("swapaccount on\n\nswapaccount off\n",
                          [(3, 1, "`swapaccount` is given twice", "the first is on line 1")]),
    "root-not-first": ("memcg A\nmemcg root hierarchy=off\n",
                       [(2, 7, "`memcg root` must be the first memcg statement", None)]),
    "root-limits": ("memcg root limit=10 memsw_limit=20\n",
                    [(1, 12, "limits cannot be set on root", None),
                     (1, 21, "limits cannot be set on root", None)]),
    "child-before-parent": ("memcg A/B\nmemcg A\n",
                            [(1, 7, "memcg A is not declared before A/B",
                              "declare `memcg A` first")]),
    "grandchild-before-child": ("memcg A\nmemcg A/B/C\n",
                                [(2, 7, "memcg A/B is not declared before A/B/C",
                                  "declare `memcg A/B` first")]),
    "templated-memcg": ("memcg A{i}\n", [(1, 7, "a memcg is declared with a plain name", None)]),
}


@pytest.mark.parametrize("text, expected", SETUP.values(), ids=SETUP.keys())
def test_setup_rules(text, expected):
    assert where_hint(resolve_errors(text)) == expected


def test_setup_statements_in_any_order_before_the_rest():
    res = ok("memcg A\nswapaccount off\nmodel legacy\nmemcg root/A/B\nalloc P anon\n")
    assert (res.model, res.swapaccount, res.threads) == ("legacy", False, [])


def test_defaults_without_setup():
    res = ok("alloc P anon\n")
    assert (res.model, res.swapaccount, res.threads) == (None, True, [])


def test_root_hierarchy_first_is_fine():
    assert ok("memcg root hierarchy=off\nmemcg A hierarchy=on\n").model is None


# -- sizes -----------------------------------------------------------------------------------

SIZES = {
    "10K": ("memcg A limit=10K\n",
            [(1, 9, "limit=10K is not a whole number of pages", HINT_SIZE)]),
    "-1": ("memcg A limit=-1\n", [(1, 9, "limit=-1 is not a whole number of pages", HINT_SIZE)]),
    "memsw-3K": ("memcg A memsw_limit=3K limit=2M\n",
                 [(1, 9, "memsw_limit=3K is not a whole number of pages", HINT_SIZE)]),
    "set-6K": ("memcg A\nset A limit=6K\n",
               [(2, 7, "limit=6K is not a whole number of pages", HINT_SIZE)]),
    "memsw-off": ("swapaccount off\nmemcg A memsw_limit=16\n",
                  [(2, 9, "memsw_limit needs swap accounting", "remove `swapaccount off`")]),
    "memsw-off-set": ("swapaccount off\nmemcg A\nset A memsw_limit=16\n",
                      [(3, 7, "memsw_limit needs swap accounting", "remove `swapaccount off`")]),
}


@pytest.mark.parametrize("text, expected", SIZES.values(), ids=SIZES.keys())
def test_sizes(text, expected):
    assert where_hint(resolve_errors(text)) == expected


def test_size_caret_covers_the_setting():
    (d,) = resolve_errors("memcg A limit=10K\n").diagnostics
    assert d.width == len("limit=10K")


def test_good_sizes():
    ok(text_of(
        "memcg A limit=64K memsw_limit=2M",
        "memcg B limit=16 memsw_limit=max",
        "memcg C limit=4k memsw_limit=1G",
        "memcg D limit=0",
        "memcg E limit=8m",
        "set A limit=max memsw_limit=128K",
        "",
    ))


@pytest.mark.parametrize(
    "text, pages",
    [("16", 16), ("64K", 16), ("2M", 512), ("2m", 512), ("1G", 262144), ("4k", 1),
     ("0", 0), ("-3", -3), ("12K", 3), ("10K", None), ("1K", None), ("x", None), ("", None)],
)
def test_size_in_pages(text, pages):
    assert size_in_pages(text) == pages


def test_memsw_limit_with_swapaccount_off_given_later():
    assert where(resolve_errors("memcg A memsw_limit=16\nswapaccount off\n")) == [
        (1, 9, "memsw_limit needs swap accounting")]


# -- repeat --------------------------------------------------------------------------------------

REPEATS = {
    "too-big": ("repeat 1000001 as i {\n}\n",
                [(1, 8, "repeat count 1000001 must be a whole number from 0 to 1,000,000")]),
    "unit": ("repeat 4K as i {\n}\n",
             [(1, 8, "repeat count 4K must be a whole number from 0 to 1,000,000")]),
    "negative": ("repeat -1 as i {\n}\n",
                 [(1, 8, "repeat count -1 must be a whole number from 0 to 1,000,000")]),
    "same-variable": ("repeat 2 as i {\n  repeat 3 as i {\n  }\n}\n",
                      [(2, 15, "the repeat variable i is already in use here")]),
    "same-variable-deeper": (
        "repeat 2 as i {\n  repeat 2 as j {\n    zap {\n      repeat 2 as i {\n      }\n"
        "    }\n  }\n}\n",
        [(4, 19, "the repeat variable i is already in use here")]),
    "var-outside": ("alloc P{i} anon\n", [(1, 7, "{i} is used outside a `repeat … as i`")]),
    "var-after-repeat": ("memcg A\nrepeat 2 as i {\n  fault P{i} in A\n}\nexpect P{i} freed\n",
                         [(5, 8, "{i} is used outside a `repeat … as i`")]),
    "other-var-inside": ("repeat 2 as i {\n  alloc P{j} anon\n}\n",
                         [(2, 9, "{j} is used outside a `repeat … as j`")]),
    "var-in-show": ("show P{i+1}\n", [(1, 6, "{i} is used outside a `repeat … as i`")]),
    "var-in-memcg-path": ("memcg A\nfault Q in A{i}\n",
                          [(2, 12, "{i} is used outside a `repeat … as i`")]),
}


@pytest.mark.parametrize("text, expected", REPEATS.values(), ids=REPEATS.keys())
def test_repeat_rules(text, expected):
    assert where(resolve_errors(text)) == expected


def test_repeat_limits():
    ok("repeat 1000000 as i {\n}\nrepeat 0 as j {\n}\n")
    assert MAX_REPEAT == 1_000_000
    err = resolve_errors("repeat 11 as i {\n}\nrepeat 10 as j {\n}\n", max_repeat=10)
    assert where(err) == [(1, 8, "repeat count 11 must be a whole number from 0 to 10")]
    assert err.diagnostics[0].width == 2


def test_nested_repeats_with_distinct_variables():
    ok(text_of(
        "memcg A",
        "repeat 2 as i {",
        "  repeat 3 as j {",
        "    fault P{i}_{j} in A",
        "    expect P{i}_{j} refcount 1",
        "  }",
        "}",
        "repeat 2 as i {",  # the same variable again, not nested: fine
        "  expect P{i}_{i+1} refcount 1",
        "}",
        "expect P1_2 mapcount 1",
        "",
    ))


def test_template_in_thread_name_outside_repeat():
    assert where(resolve_errors("thread T{i} {\n}\n")) == [
        (1, 8, "{i} is used outside a `repeat … as i`")]


# -- threads ---------------------------------------------------------------------------------

THREADS = {
    "nested-in-zap": ("thread T {\n  zap {\n    thread U {\n    }\n  }\n}\n",
                      [(3, 5, "a thread block stands at the top level only")]),
    "nested-in-thread": ("thread T {\n  thread U {\n  }\n}\n",
                         [(2, 3, "a thread block stands at the top level only")]),
    "in-repeat": ("repeat 2 as i {\n  thread V {\n  }\n}\n",
                  [(2, 3, "a thread block stands at the top level only")]),
    "in-only-block": ("only v1 {\n  thread V {\n  }\n}\n",
                      [(2, 3, "a thread block stands at the top level only")]),
    "fault-after-threads": (
        "memcg A\nthread T {\n}\nfault Q in A\nshow\nexpect A usage 0\n",
        [(4, 1, "after the thread blocks only `expect` and `show` may follow")]),
    "outcome-after-threads": (
        "memcg A\nfault P in A\nthread T {\n}\nexpect bug: put P\n",
        [(5, 1, "after the thread blocks only `expect` and `show` may follow")]),
    # `only` of an expect is a postcondition line (a model's own numbers); of a step it is not
    "only-after-threads": ("memcg A\nthread T {\n}\nonly v1: expect A usage 1\n"
                           "only v1: fault Q in A\nonly 3.17 {\n  expect A usage 0\n  show\n}\n",
                           [(5, 1, "after the thread blocks only `expect` and `show` may follow")]),
    "swapin-in-two-threads-is-one-page": (
        "memcg A\nfault P in A\nreclaim P as E\nthread X {\n  swapin E as Q in A\n}\n"
        "thread Y {\n  swapin E as Q in A\n}\nthread Z {\n  fault Q in A\n}\n",
        [(11, 9, "Q is already bound (a page, on line 5)")]),
    "thread-main": ("thread main {\n}\n",
                    [(1, 8, "`main` is the setup's thread (LANGUAGE §3.7)")]),
    "sibling-names": ("memcg A\nthread cpu0 {\n  fault Q in A\n}\nthread cpu1 {\n  unmap Q\n}\n",
                      [(6, 9, "unknown page Q")]),
    "later-thread-names": ("memcg A\nthread cpu0 {\n  unmap Q\n}\nthread cpu1 {\n"
                           "  fault Q in A\n}\n",
                           [(3, 9, "Q is used before it exists")]),
    "model-in-thread": ("thread T {\n  model v1\n}\n",
                        [(2, 3, "`model` must come before every other statement")]),
}


@pytest.mark.parametrize("text, expected", THREADS.values(), ids=THREADS.keys())
def test_thread_rules(text, expected):
    assert where(resolve_errors(text)) == expected


def test_after_threads_error_has_the_hint_and_covers_the_verb():
    err = resolve_errors("memcg A\nthread T {\n}\nrelease P\n")
    first = err.diagnostics[0]
    assert (first.line, first.col, first.hint, first.width) == (4, 1, HINT_THREADS, 7)


THREADED = """\
# models: v1 3.17
model v1
memcg A limit=64
memcg B
fault P in A
thread cpu0 {
  fault Q in A
  zap {
    unmap P
  }
  expect Q mapcount 1
}
thread cpu1 {
  reclaim P as E
  swapin E as R in B
  expect R mapcount 1
}
expect Q refcount 1
expect R memcg B
expect E freed
expect P freed
show cpu0x
show
"""


def test_threads_see_setup_and_the_postcondition_sees_the_threads():
    text = THREADED.replace("show cpu0x\n", "")
    res = ok(text)
    assert (res.model, res.swapaccount, res.threads) == ("v1", True, ["cpu0", "cpu1"])
    program = parse(text, "t.mcg")
    assert [type(s) for s in program.stmts] == [
        ast.Model, ast.Memcg, ast.Memcg, ast.Fault, ast.Thread, ast.Thread,
        ast.Expect, ast.Expect, ast.Expect, ast.Expect, ast.Show]


def test_thread_names_are_not_pages():
    (d,) = resolve_errors(THREADED).diagnostics
    assert (d.line, d.col, d.message) == (22, 6, "unknown name cpu0x")


def test_two_threads_cannot_bind_the_same_name():
    err = resolve_errors(text_of(
        "memcg A",
        "thread cpu0 {",
        "  fault P in A",
        "}",
        "thread cpu1 {",
        "  fault P in A",
        "}",
        "expect P refcount 1",
        "",
    ))
    assert where(err) == [(6, 9, "P is already bound (a page, on line 3)")]


# -- zap and expect …: --------------------------------------------------------------------------

BLOCKS = {
    "nested-zap": ("memcg A\nfault P in A\nzap {\n  zap {\n    unmap P\n  }\n}\n",
                   [(4, 3, "zap blocks do not nest")]),
    "zap-in-batch-in-zap": ("zap {\n  batch {\n    zap {\n    }\n  }\n}\n",
                            [(3, 5, "zap blocks do not nest")]),
    "zap-in-repeat-in-zap": ("zap {\n  repeat 2 as i {\n    zap {\n    }\n  }\n}\n",
                             [(3, 5, "zap blocks do not nest")]),
    "expect-expect": ("memcg A\nfault P in A\nexpect bug: expect P refcount 1\n",
                      [(3, 13, "`expect …:` takes a statement that changes the state")]),
    "expect-show": ("expect bug: show\n",
                    [(1, 13, "`expect …:` takes a statement that changes the state")]),
    "expect-only": ("memcg A\nfault P in A\nexpect violation: only v1: unmap P\n",
                    [(3, 19, "`expect …:` takes a statement that changes the state")]),
    "expect-outcome-outcome": ("memcg A\nexpect enomem: expect error EBUSY: set A limit=1\n",
                               [(2, 16, "`expect …:` takes a statement that changes the state")]),
    "expect-repeat": ("memcg A\nexpect bug: repeat 2 as i {\n  alloc P{i} anon\n}\n",
                      [(2, 13, "`expect …:` takes a statement, or a zap or batch block "
                               "(whose end it judges), not this block")]),
    "expect-only-block": ("memcg A\nexpect bug: only v1 {\n  alloc P anon\n}\n",
                          [(2, 13, "`expect …:` takes a statement, or a zap or batch block "
                                   "(whose end it judges), not this block")]),
    "expect-zap-in-zap": ("memcg A\nzap {\n  expect violation: zap {\n  }\n}\n",
                          [(3, 21, "zap blocks do not nest")]),
}


@pytest.mark.parametrize("text, expected", BLOCKS.values(), ids=BLOCKS.keys())
def test_block_and_outcome_rules(text, expected):
    assert where(resolve_errors(text)) == expected


def test_expect_outcome_error_covers_the_inner_verb():
    (d,) = resolve_errors("expect bug: show\n").diagnostics
    assert d.width == len("show")


def test_expect_outcome_of_a_zap_or_batch_block():
    ok("memcg A\nfault P in A\nexpect violation: zap {\n  unmap P\n}\n"
       "expect bug: batch {\n  expect enomem: fault Q in A\n}\n")


def test_zaps_side_by_side_and_inside_batch():
    ok("memcg A\nfault P in A\nbatch {\n  zap {\n    unmap P\n  }\n}\nzap {\n}\n")


def test_statements_under_expect_outcome_still_resolve():
    err = resolve_errors("memcg A\nexpect bug: unmap Nope\nexpect enomem: fault Q in Bz\n")
    assert where(err) == [(2, 19, "unknown page Nope"), (3, 27, "unknown memcg Bz")]


def test_expect_outcome_binds_its_names():
    ok("memcg A limit=1\nexpect enomem: fault P in A huge\nexpect P freed\n")


# -- expect fields and values -----------------------------------------------------------------

EXPECT_PRELUDE = "memcg A\nfault P in A\nreclaim P as E\n"

FIELDS = {
    "page-usage": ("expect P usage 1\n", [(4, 10, "usage is not a field of a page", PAGE_FIELDS)]),
    "page-count": ("expect P count 2\n", [(4, 10, "count is not a field of a page", PAGE_FIELDS)]),
    "page-res_counter": ("expect P res_counter 2\n",
                         [(4, 10, "res_counter is not a field of a page", PAGE_FIELDS)]),
    "memcg-refcount": ("expect A refcount 1 flags none\n",
                       [(4, 10, "refcount is not a field of a memcg", MEMCG_FIELDS),
                        (4, 21, "flags is not a field of a memcg", MEMCG_FIELDS)]),
    "memcg-freed": ("expect A freed\n", [(4, 10, "freed is not a field of a memcg", MEMCG_FIELDS)]),
    "path-memcg-kind": ("expect root/A kind anon\n",
                        [(4, 15, "kind is not a field of a memcg", MEMCG_FIELDS)]),
    "cost-usage": ("expect cost usage 1 refcount 1\n",
                   [(4, 13, "usage is not a field of a cost", COST_FIELDS),
                    (4, 21, "refcount is not a field of a cost", COST_FIELDS)]),
    "cost-freed": ("expect cost freed\n", [(4, 13, "freed is not a field of a cost", COST_FIELDS)]),
}


@pytest.mark.parametrize("tail, expected", FIELDS.values(), ids=FIELDS.keys())
def test_expect_fields_belong_to_their_target(tail, expected):
    assert where_hint(resolve_errors(EXPECT_PRELUDE + tail)) == expected


@pytest.mark.parametrize("field", ["refcount", "usage", "flags", "mapcount", "rss", "res_counter"])
def test_entry_fields(field):
    (d,) = resolve_errors(EXPECT_PRELUDE + f"expect E {field} 1\n").diagnostics
    assert (d.line, d.col) == (4, 10)
    assert d.message.startswith(f"{field} is not a field of a")
    assert d.hint == "entry fields: count, freed, memcg, page"


FLAGS_HINT = "expected PCG flags joined by | (USED|MEM|MEMSW, MIGRATION) or none"
VALUES = {
    "flags-unknown": ("expect P flags USED|BOGUS\n",
                      [(4, 16, "USED|BOGUS is not a value of flags", FLAGS_HINT)]),
    "flags-lowercase": ("expect P flags used\n",
                        [(4, 16, "used is not a value of flags", FLAGS_HINT)]),
    "flags-number": ("expect P flags 3\n", [(4, 16, "3 is not a value of flags", FLAGS_HINT)]),
    "flags-pg": ("expect P flags lru\n", [(4, 16, "lru is not a value of flags", FLAGS_HINT)]),
    "isolated-maybe": ("expect P isolated maybe\n",
                       [(4, 19, "maybe is not a value of isolated", "expected yes or no")]),
    "isolated-1": ("expect P isolated 1\n",
                   [(4, 19, "1 is not a value of isolated", "expected yes or no")]),
    "huge-maybe": ("expect P huge maybe\n",
                   [(4, 15, "maybe is not a value of huge", "expected yes or no")]),
    "kind-name": ("expect P kind A\n",
                  [(4, 15, "A is not a value of kind", "expected anon, file or shmem")]),
    "kind-yes": ("expect P kind yes\n",
                 [(4, 15, "yes is not a value of kind", "expected anon, file or shmem")]),
    "page-dirty": ("expect P page lru|dirty\n",
                   [(4, 15, "lru|dirty is not a value of page",
                     "expected page flags joined by | (lru, locked, swapcache) or none")]),
    "page-pcg": ("expect P page USED\n",
                 [(4, 15, "USED is not a value of page",
                   "expected page flags joined by | (lru, locked, swapcache) or none")]),
    "limit-10K": ("expect A limit 10K\n",
                  [(4, 16, "10K is not a value of limit",
                    "expected a size (pages, or whole 4K pages in K/M/G) or max")]),
    "memsw_limit-none": ("expect A memsw_limit none\n",
                         [(4, 22, "none is not a value of memsw_limit",
                           "expected a size (pages, or whole 4K pages in K/M/G) or max")]),
    "usage-5K": ("expect A usage 5K\n",
                 [(4, 16, "5K is not a value of usage",
                   "expected a number of pages, or bytes in whole 4K pages (12K)")]),
    "usage-max": ("expect A usage max\n",
                  [(4, 16, "max is not a value of usage", "expected a number")]),
    "usage-none": ("expect A usage none\n",
                   [(4, 16, "none is not a value of usage", "expected a number")]),
    "refcount-1K": ("expect P refcount 1K\n",
                    [(4, 19, "1K is not a value of refcount", "expected a number")]),
    "refcount-yes": ("expect P refcount yes\n",
                     [(4, 19, "yes is not a value of refcount", "expected a number")]),
    "batches-2M": ("expect cost batches 2M\n",
                   [(4, 21, "2M is not a value of batches", "expected a number")]),
    "count-name": ("expect E count P\n",
                   [(4, 16, "P is not a value of count", "expected a number")]),
    "memcg-number": ("expect P memcg 5\n",
                     [(4, 16, "5 is not a value of memcg", "expected a memcg or none")]),
    "entry-number": ("expect P entry 4\n",
                     [(4, 16, "4 is not a value of entry", "expected a name or none")]),
    "entry-path": ("memcg A/B\nexpect P entry A/B\n",
                   [(5, 16, "A/B is not a value of entry", "expected a name or none")]),
}


@pytest.mark.parametrize("tail, expected", VALUES.values(), ids=VALUES.keys())
def test_expect_values(tail, expected):
    if tail.startswith("memcg "):  # a setup line goes before the prelude's fault
        setup, tail = tail.split("\n", 1)
        text = "memcg A\n" + setup + "\n" + EXPECT_PRELUDE.split("\n", 1)[1] + tail
    else:
        text = EXPECT_PRELUDE + tail
    assert where_hint(resolve_errors(text)) == expected


def test_several_bad_values_in_one_expect():
    err = resolve_errors(EXPECT_PRELUDE + "expect P isolated maybe kind A refcount 1 huge 2\n")
    assert where(err) == [
        (4, 19, "maybe is not a value of isolated"),
        (4, 30, "A is not a value of kind"),
        (4, 48, "2 is not a value of huge"),
    ]
    assert [d.width for d in err.diagnostics] == [5, 1, 1]


def test_kind_huge_is_a_bad_value_not_a_bad_name():
    with pytest.raises(StaticErrors) as info:
        resolve(parse(EXPECT_PRELUDE + "expect P kind huge\n", "t.mcg"))
    (d,) = info.value.diagnostics
    assert (d.line, d.col) == (4, 15)
    assert "anon, file or shmem" in (d.hint or "")


def test_kind_huge_is_refused_at_its_position():
    with pytest.raises(StaticErrors) as info:
        resolve(parse(EXPECT_PRELUDE + "expect P kind huge\n", "t.mcg"))
    (d,) = info.value.diagnostics
    assert (d.line, d.col, d.width) == (4, 15, 4)


def test_split_tails_are_one_to_511():
    err = resolve_errors(text_of(
        "memcg A",
        "fault H in A huge",
        "split H",
        "expect H.1 refcount 1",
        "expect H.511 refcount 1",
        "expect H.512 refcount 1",
        "expect H.0 refcount 1",
        "",
    ))
    assert [(d.line, d.col) for d in err.diagnostics] == [(6, 8), (7, 8)]


def test_good_expect_values():
    ok(EXPECT_PRELUDE + text_of(
        "expect P flags none",
        "expect P flags MEM|USED",
        "expect P flags USED|MEM|MEMSW|MIGRATION",
        "expect P page none",
        "expect P page lru|locked|swapcache",
        "expect P memcg none",
        "expect P memcg root/A",
        "expect P entry none",
        "expect P entry E",
        "expect P kind shmem huge yes isolated no refcount -1 mapcount 0",
        "expect P freed",
        "expect E memcg none count -2 page P",
        "expect E page none",
        "expect E freed",
        "expect A limit max memsw_limit 64K usage 12K memsw -3 css 0 reported_usage 2M",
        "expect root reported_usage 3 cache -1",
        "expect root/A usage 1",
        "expect cost res_counter 4 pc_lock 0 batches 1",
        "",
    ))


# -- all errors at once, in line order -------------------------------------------------------------


def test_all_resolver_errors_are_reported_at_once_in_line_order():
    source = text_of(
        "model v1",                       # 1
        "memcg A limit=10K",              # 2  size
        "memcg A",                        # 3  bound twice
        "memcg X/Y",                      # 4  parent missing
        "fault P in Ax",                  # 5  unknown memcg (did you mean A)
        "unmap A",                        # 6  wrong kind
        "model 3.17",                     # 7  setup late + model twice
        "repeat 1000001 as i {",          # 8  count
        "  repeat 2 as i {",              # 9  same variable
        "  }",
        "}",
        "alloc Q{k} anon",                # 12 {k} outside
        "zap {",
        "  zap {",                        # 14 nested zap
        "  }",
        "}",
        "expect bug: show",               # 17 not state-changing
        "expect P usage 1 flags BAD",     # 18 field + bad value
        "thread T {",
        "  thread U {",                   # 20 nested thread
        "  }",
        "}",
        "fault R in A",                   # 23 after threads
        "",
    )
    err = resolve_errors(source)
    assert where(err) == [
        (2, 9, "limit=10K is not a whole number of pages"),
        (3, 7, "A is already bound (a memcg, on line 2)"),
        (4, 7, "memcg X is not declared before X/Y"),
        (5, 12, "unknown memcg Ax"),
        (6, 7, "A is a memcg, not a page"),
        (7, 1, "`model` must come before every other statement"),
        (7, 1, "`model` is given twice"),
        (8, 8, "repeat count 1000001 must be a whole number from 0 to 1,000,000"),
        (9, 15, "the repeat variable i is already in use here"),
        (12, 7, "{k} is used outside a `repeat … as k`"),
        (14, 3, "zap blocks do not nest"),
        (17, 13, "`expect …:` takes a statement that changes the state"),
        (18, 10, "usage is not a field of a page"),
        (18, 24, "BAD is not a value of flags"),
        (20, 3, "a thread block stands at the top level only"),
        (23, 1, "after the thread blocks only `expect` and `show` may follow"),
    ]
    assert err.diagnostics[3].hint == "did you mean A?"
    assert err.format().count("t.mcg:") == 16
    assert str(err) == err.format()


# -- a scenario using every statement form of §3 resolves ------------------------------------------

EVERYTHING = """\
# models: v1 3.17 legacy
# Every statement form of LANGUAGE.md §3 in one story (checked statically here).
model 3.17
swapaccount on
memcg root hierarchy=on
memcg A limit=64M memsw_limit=128M
memcg A/B limit=16 memsw_limit=max hierarchy=on
memcg root/C limit=2M
set A limit=32M memsw_limit=max
set root/A/B limit=64K

# an anon page charged by hand
alloc P anon
try_charge P to A
map P
commit P
lru_add P
expect P flags USED|MEM|MEMSW memcg A refcount 2 mapcount 1
expect P page lru isolated no kind anon huge no entry none

# a reservation given back
alloc N anon
try_charge N to root/A/B
cancel N
put N
expect N freed

# a file page: charged in one step, then dropped from the cache
alloc F file
lock F
add_to_cache F
charge F to A lrucare
unlock F
get F
lock F
delete_from_cache F
unlock F
put F
put F
expect F freed

# swap-out by hand, and back in
isolate P
lock P
add_to_swap P as E
expect P page locked|swapcache isolated yes entry E
try_to_unmap P
swapout P
expect P freed
expect E memcg A count 1 page none
readahead E as Q
swapin E as Q in A
lock Q
delete_from_swap_cache Q
unlock Q
expect E freed
expect Q page lru entry none

# kernel paths
fault R in A
fault H in A huge
cache G in A/B
cow R to S in A
truncate G
reclaim S as E2
swapin E2 as S2 in A/B reuse
swapin E2 as S2
cache K in root/C
reclaim K
fault T in C
reclaim T as E3
free_swap E3
expect E3 freed

# migration, replacement, moving, splitting
isolate R
alloc R2 anon
migrate R to R2
isolate S2
alloc S3 anon
migrate S2 to S3 fail
cache F2 in A
get F2
lock F2
alloc F3 file
lock F3
replace_cache F2 with F3
unlock F3
unlock F2
put F2
move R2 to A/B
fault U in A
reclaim U as E4
move E4 to C
split H
expect H.1 flags USED|MEM|MEMSW memcg A refcount 1 mapcount 1 page lru
expect H.511 huge no
zap {
  unmap H
  unmap H.1
}
batch {
  put S2
}
release H.2 H.3 H.4
commit P lrucare

# loops
repeat 4 as i {
  fault X{i} in A
}
repeat 3 as i {
  expect X{i+1} refcount 1
  zap {
    unmap X{i}
  }
  expect X{i} freed
  repeat 2 as j {
    fault Y{i}_{j} in C
    expect Y{i}_{j} memcg C
  }
}
expect X3 refcount 1
expect Y2_1 mapcount 1

# model-specific checks
only v1,legacy: expect A pgpgin 2
only 3.17 {
  expect A pgpgin 1
  show A
}
only legacy: expect R2 flags USED|MIGRATION

# outcomes
expect enomem: fault Z in A/B huge
expect error EBUSY: set A/B limit=1
expect error EINVAL: set A limit=64M memsw_limit=32M
expect error EAGAIN: migrate X3 to R
expect bug: commit R2
expect violation: unmap R2
only v1: expect violation: release R2

# checking
expect A usage 12K memsw 3 max_usage 4 memsw_max_usage 4 failcnt 0 memsw_failcnt 0
expect A limit 32M memsw_limit max rss 1 cache 2 rss_huge 0 swap 1 pgpgin 3 pgpgout 2 css 1
expect root reported_usage 3 cache -1
expect root/A/B usage -1 limit 16
expect E4 memcg C count 1 page none
expect E2 memcg root/A/B page S2
expect S2 memcg root
expect cost res_counter 4 pc_lock 0 batches 1
show
show P
show A/B
show root
show E2
show cost
"""

EVERY_VERB = {
    ast.Model, ast.Swapaccount, ast.Memcg, ast.Set, ast.Alloc, ast.TryCharge, ast.Commit,
    ast.Cancel, ast.Charge, ast.Map, ast.Unmap, ast.TryToUnmap, ast.Get, ast.Put, ast.Lock,
    ast.Unlock, ast.LruAdd, ast.Isolate, ast.Putback, ast.AddToCache, ast.DeleteFromCache,
    ast.AddToSwap, ast.DeleteFromSwapCache, ast.Swapout, ast.Readahead, ast.FreeSwap,
    ast.Release, ast.Fault, ast.Cache, ast.Cow, ast.Truncate, ast.Swapin, ast.Reclaim,
    ast.Migrate, ast.ReplaceCache, ast.Move, ast.Split, ast.Expect, ast.ExpectOutcome,
    ast.Show, ast.Only, ast.OnlyBlock, ast.Zap, ast.Batch, ast.Repeat,
}


def _walk(stmts):
    for s in stmts:
        yield s
        if isinstance(s, (ast.Only, ast.ExpectOutcome)):
            yield from _walk((s.stmt,))
        yield from _walk(getattr(s, "body", ()))


def test_every_statement_form_resolves():
    # putback is the only primitive the story above does not need: use it on an isolated page
    text = EVERYTHING.replace("migrate S2 to S3 fail\n", "migrate S2 to S3 fail\nputback S3\n")
    program = parse(text, "everything.mcg")
    res = resolve(program)
    assert (res.model, res.swapaccount, res.threads) == ("3.17", True, [])
    found = {type(s) for s in _walk(program.stmts)}
    assert EVERY_VERB <= found, EVERY_VERB - found
    outcomes = [s for s in _walk(program.stmts) if isinstance(s, ast.ExpectOutcome)]
    assert len(outcomes) == 7
    assert len(program.stmts) == 116


def test_expect_error_errno_is_kept_in_the_ast():
    program = parse(text_of(
        "memcg A",
        "expect enomem: fault P in A",
        "expect error EBUSY: set A limit=1",
        "expect error EINVAL: set A limit=2",
        "expect bug: commit P",
        "expect violation: unmap P",
        "",
    ), "t.mcg")
    assert [(s.outcome, s.errno) for s in program.stmts[1:]] == [
        ("enomem", None), ("error", "EBUSY"), ("error", "EINVAL"), ("bug", None),
        ("violation", None)]


def test_expect_error_keeps_its_statement_and_position():
    (stmt,) = parse("expect error EAGAIN: migrate P to Q fail\n", "t.mcg").stmts
    assert isinstance(stmt, ast.ExpectOutcome)
    assert (stmt.line, stmt.col) == (1, 1)
    assert isinstance(stmt.stmt, ast.Migrate)
    assert (stmt.stmt.line, stmt.stmt.col, stmt.stmt.fail) == (1, 22, True)
    assert "EAGAIN" in (stmt.outcome, stmt.errno)


def test_root_prefix_is_the_same_memcg():
    program = parse(text_of(
        "memcg A",
        "memcg root/A/B",
        "fault P in root/A",
        "fault Q in A/B",
        "expect P memcg A",
        "expect Q memcg root/A/B",
        "show root/A",
        "",
    ), "t.mcg")
    resolve(program)
    assert program.stmts[1].path.text == "root/A/B"


def test_unknown_name_in_a_big_clean_file_is_still_caught():
    # the clean scenario is not clean by accident: one wrong name is reported at its place
    text = EVERYTHING.replace("move E4 to C\n", "move Ee4 to C\n")
    err = resolve_errors(text)
    line = text.split("\n").index("move Ee4 to C") + 1
    assert where_hint(err) == [(line, 6, "unknown page or entry Ee4", "did you mean E4?")]
