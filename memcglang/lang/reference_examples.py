"""Canonical examples of the language's statements, for the generated reference
(docs/reference.md): for each verb, a short setup and the statement, run under every model
to show the kernel functions it calls and the fields it changes; and its preconditions."""

from __future__ import annotations

import attrs


@attrs.frozen
class Example:
    setup: str  # statements before it, one per line (may be "")
    statement: str  # the statement shown (for zap/batch: the whole block, lines joined by "\n")
    preconditions: str  # one paragraph: what the statement needs, as LANGUAGE.md §3 says
    models: tuple[str, ...] = ("v1", "3.17", "legacy")  # where the example runs cleanly
    cleanup: str = ""  # run after it, not shown: what a file may not end holding (a lock,
    # a reservation: LANGUAGE §3.7)


def _lines(*lines: str) -> str:
    return "\n".join(lines)


# A file (or thread) may not end holding a page lock or a pending reservation (LANGUAGE §3.7):
# a statement that leaves one behind (try_charge, lock, add_to_cache, delete_from_cache,
# add_to_swap, delete_from_swap_cache, replace_cache) has a `cleanup` that gives it back.

EXAMPLES: dict[str, Example] = {
    # --- setup (§3.1) ---
    "memcg": Example(
        setup="",
        statement="memcg A limit=64M",
        preconditions=(
            "A is declared once, after its parent; `memcg root hierarchy=off` only as the first "
            "memcg statement; no limits on root; `memsw_limit` needs swap accounting; a "
            "`hierarchy` different from a hierarchical parent's is -EINVAL."
        ),
    ),
    "set": Example(
        setup=_lines("memcg A", "fault P in A"),
        statement="set A limit=16",
        preconditions=(
            "A is declared and is not root; `memsw_limit` needs swap accounting. A limit below "
            "the current usage fails with -EBUSY, a limit above memsw_limit with -EINVAL."
        ),
    ),
    # --- page primitives (§3.2) ---
    "alloc": Example(
        setup="",
        statement="alloc P anon",
        preconditions="P is a new name; `huge` only for anon pages.",
    ),
    "try_charge": Example(
        setup=_lines("memcg A", "alloc P anon"),
        statement="try_charge P to A",
        preconditions=(
            "P holds a reference and this thread has no reservation pending for it; a "
            "swap-cache page with swap accounting on must be locked. The reservation must be "
            "committed or cancelled before the thread (or file) ends."
        ),
        cleanup="cancel P",
    ),
    "commit": Example(
        setup=_lines("memcg A", "alloc P anon", "try_charge P to A", "map P"),
        statement="commit P",
        preconditions=(
            "A reservation of P is pending in this thread. In v1 and 3.17 P needs "
            "`page->mapping` (mapped or in a cache), and `lrucare` if it is on the LRU."
        ),
    ),
    "cancel": Example(
        setup=_lines("memcg A", "alloc P anon", "try_charge P to A"),
        statement="cancel P",
        preconditions="A reservation of P is pending in this thread.",
    ),
    "charge": Example(
        setup=_lines("memcg A", "alloc F file", "lock F", "add_to_cache F", "unlock F"),
        statement="charge F to A",
        preconditions=(
            "P holds a reference and this thread has no reservation pending for it. In v1 and "
            "3.17 P needs `page->mapping` (mapped or in a cache), and `lrucare` if it is on the "
            "LRU; in legacy an anon page must not be mapped yet."
        ),
    ),
    "map": Example(
        setup=_lines("memcg A", "fault P in A"),
        statement="map P",
        preconditions=("P has refcount > 0; a file or shmem page must be in the page cache."),
    ),
    "unmap": Example(
        setup=_lines("memcg A", "fault P in A"),
        statement="unmap P",
        preconditions=(
            "P is mapped (mapcount > 0). If it drops the last reference, P must be unlocked, "
            "in no cache and without a pending reservation."
        ),
    ),
    "try_to_unmap": Example(
        setup=_lines("memcg A", "fault P in A", "lock P", "add_to_swap P as E", "unlock P"),
        statement="try_to_unmap P",
        preconditions=(
            "A mapped anon page must be in the swap cache and a mapped file page locked; an "
            "unmapped page is left as it is."
        ),
    ),
    "get": Example(
        setup=_lines("memcg A", "fault P in A"),
        statement="get P",
        preconditions="P has refcount > 0.",
    ),
    "put": Example(
        setup=_lines("memcg A", "fault P in A", "get P", "unmap P"),
        statement="put P",
        preconditions=(
            "P has refcount > 0. If it drops the last reference, P must be unmapped, unlocked, "
            "in no cache and without a pending reservation."
        ),
    ),
    "lock": Example(
        setup=_lines("memcg A", "cache F in A"),
        statement="lock F",
        preconditions=(
            "P has refcount > 0 and is not locked: locked by this thread it is a "
            "self-deadlock, by another a wait (a deadlock in `run`). The lock must be released "
            "before the thread (or file) ends."
        ),
        cleanup="unlock F",
    ),
    "unlock": Example(
        setup=_lines("memcg A", "cache F in A", "lock F"),
        statement="unlock F",
        preconditions="P is locked.",
    ),
    "lru_add": Example(
        setup=_lines("memcg A", "alloc P anon", "try_charge P to A", "map P", "commit P"),
        statement="lru_add P",
        preconditions="P has refcount > 0 and is neither on the LRU nor isolated.",
    ),
    "isolate": Example(
        setup=_lines("memcg A", "fault P in A"),
        statement="isolate P",
        preconditions="P has refcount > 0 and is on the LRU.",
    ),
    "putback": Example(
        setup=_lines("memcg A", "fault P in A", "isolate P"),
        statement="putback P",
        preconditions="P is isolated.",
    ),
    "add_to_cache": Example(
        setup=_lines("alloc F file", "lock F"),
        statement="add_to_cache F",
        preconditions=(
            "P locked, file or shmem, in no cache; the caller's reference is kept and the "
            "cache takes one."
        ),
        cleanup="unlock F",
    ),
    "delete_from_cache": Example(
        setup=_lines("memcg A", "cache F in A", "get F", "lock F"),
        statement="delete_from_cache F",
        preconditions=(
            "P locked, unmapped and in the page cache; the cache's reference is dropped."
        ),
        cleanup="unlock F",
    ),
    "add_to_swap": Example(
        setup=_lines("memcg A", "fault P in A", "isolate P", "lock P"),
        statement="add_to_swap P as E",
        preconditions=(
            "P locked, anon, not huge and not in the swap cache; E is a new name. The swap "
            "cache takes a reference."
        ),
        cleanup="unlock P",
    ),
    "delete_from_swap_cache": Example(
        setup=_lines("memcg A", "fault P in A", "lock P", "add_to_swap P as E"),
        statement="delete_from_swap_cache P",
        preconditions="P locked and in the swap cache; the swap cache's reference is dropped.",
        cleanup="unlock P",
    ),
    "swapout": Example(
        setup=_lines(
            "memcg A",
            "fault P in A",
            "isolate P",
            "lock P",
            "add_to_swap P as E",
            "try_to_unmap P",
        ),
        statement="swapout P",
        preconditions=(
            "P in the swap cache, locked, isolated and unmapped, with refcount exactly 2 (the "
            "isolation's and the swap cache's)."
        ),
    ),
    "readahead": Example(
        setup=_lines("memcg A", "fault P in A", "reclaim P as E"),
        statement="readahead E as Q",
        preconditions="E is not free and has no page in its swap cache; Q is a new name.",
    ),
    "free_swap": Example(
        setup=_lines("memcg A", "fault P in A", "reclaim P as E"),
        statement="free_swap E",
        preconditions="E has a pte reference (count > 0).",
    ),
    "release": Example(
        setup=_lines("memcg A", "fault P in A", "get P", "unmap P"),
        statement="release P",
        preconditions=(
            "Each page has refcount > 0; a page whose last reference goes must be unmapped, "
            "unlocked, in no cache and without a pending reservation."
        ),
    ),
    # --- kernel paths (§3.4) ---
    "fault": Example(
        setup="memcg A",
        statement="fault P in A",
        preconditions=(
            "P is a new name (`huge`: a THP). A charge over A's limit fails with -ENOMEM and "
            "P is freed."
        ),
    ),
    "cache": Example(
        setup="memcg A",
        statement="cache F in A",
        preconditions=(
            "F is a new name. A charge over A's limit fails with -ENOMEM; F is unlocked and freed."
        ),
    ),
    "cow": Example(
        setup=_lines("memcg A", "fault P in A", "map P"),
        statement="cow P to Q in A",
        preconditions=(
            "P is mapped; Q is a new name. A charge over A's limit fails with -ENOMEM and Q is "
            "freed."
        ),
    ),
    "truncate": Example(
        setup=_lines("memcg A", "cache F in A", "map F"),
        statement="truncate F",
        preconditions="P is in the page cache and not locked by this thread.",
    ),
    "swapin": Example(
        setup=_lines("memcg A", "fault P in A", "reclaim P as E"),
        statement="swapin E as Q in A",
        preconditions=(
            "E has a pte reference (count > 0); Q is a new name or E's swap-cache page. "
            "`reuse` succeeds only when this fault holds E's last reference."
        ),
    ),
    "reclaim": Example(
        setup=_lines("memcg A", "fault P in A"),
        statement="reclaim P as E",
        preconditions=(
            "P is an anon or file page, not shmem, not huge, on the LRU; `as E` is needed for "
            "an anon page not yet in the swap cache and refused otherwise. A page somebody "
            "else still references is kept."
        ),
    ),
    # --- migration, replacement, moving, splitting (§3.5) ---
    "migrate": Example(
        setup=_lines("memcg A", "fault P in A", "isolate P", "alloc Q anon"),
        statement="migrate P to Q",
        preconditions=(
            "P isolated; Q freshly allocated, of the same kind and size; both unlocked. "
            "References to P beyond its isolation, ptes and cache slot fail it with -EAGAIN."
        ),
    ),
    "replace_cache": Example(
        # F is in the cache but not yet on the LRU (its lru_cache_add still in a pagevec): on
        # the LRU, v1 BUGs (PageLRU(oldpage)) and 3.17 leaks the charge (SEMANTICS §6 E5).
        setup=_lines(
            "memcg A",
            "alloc F file",
            "lock F",
            "add_to_cache F",
            "charge F to A",
            "alloc G file",
            "lock G",
        ),
        statement="replace_cache F with G",
        preconditions=(
            "P in the page cache, locked and held by the caller (refcount >= 2); Q locked, of "
            "the same kind, in no cache."
        ),
        cleanup="unlock F\nunlock G",
    ),
    "move": Example(
        setup=_lines("memcg A", "memcg B", "fault P in A"),
        statement="move P to B",
        preconditions=(
            "P has refcount > 0, or E is not free. B's precharge may fail with -ENOMEM, and in "
            "3.17 a locked page gives -EBUSY: then nothing moves."
        ),
    ),
    "split": Example(
        setup=_lines("memcg A", "fault H in A huge"),
        statement="split H",
        preconditions="P is a huge page, anon and mapped.",
    ),
    # --- blocks ---
    "zap": Example(
        setup=_lines("memcg A", "fault P in A", "fault Q in A"),
        statement=_lines("zap {", "  unmap P", "  unmap Q", "}"),
        preconditions=(
            "No zap block is open in this thread (they do not nest); the statements inside "
            "have their own preconditions."
        ),
    ),
    "batch": Example(
        setup=_lines("memcg A", "fault P in A", "fault Q in A"),
        statement=_lines("batch {", "  unmap P", "  unmap Q", "}"),
        preconditions=(
            "None beyond the names existing; the statements inside have their own preconditions."
        ),
    ),
}
