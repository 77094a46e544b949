"""One table of the language's verbs: syntax, help text, the engine call, the names each
binds and uses. The resolver reads it; the REPL's help and completer and docs/ will too."""

from __future__ import annotations

import attrs

from memcglang.lang import ast


@attrs.frozen
class Verb:
    name: str
    cls: type
    syntax: str
    help: str
    engine: str | None  # Engine method; None for statements the interpreter handles itself
    binds: tuple[tuple[str, str], ...] = ()  # (AST attribute, kind) of names it creates
    uses: tuple[tuple[str, str], ...] = ()  # (AST attribute, kind) of names it needs
    may_bind: tuple[tuple[str, str], ...] = ()  # names it creates unless they exist already


PAGE, ENTRY, MEMCG = "page", "entry", "memcg"

TABLE = (
    Verb("model", ast.Model, "model v1|3.17|legacy", "choose the kernel model", None),
    Verb("swapaccount", ast.Swapaccount, "swapaccount on|off",
         "swap accounting (do_swap_account); default on", None),
    Verb("memcg", ast.Memcg, "memcg A[/B] [limit=SIZE] [memsw_limit=SIZE] [hierarchy=on|off]",
         "declare a memcg", "create_memcg"),
    Verb("set", ast.Set, "set A [limit=SIZE] [memsw_limit=SIZE]",
         "change a memcg's limits (-EBUSY below usage, -EINVAL if limit > memsw_limit)",
         "set_limits", uses=(("path", MEMCG),)),
    Verb("alloc", ast.Alloc, "alloc P anon|file|shmem [huge]",
         "a new page: refcount 1, no mapping, uncharged", "alloc", binds=(("page", PAGE),)),
    Verb("try_charge", ast.TryCharge, "try_charge P to A",
         "mem_cgroup_try_charge: reserve a charge", "try_charge",
         uses=(("page", PAGE), ("memcg", MEMCG))),
    Verb("commit", ast.Commit, "commit P [lrucare]",
         "mem_cgroup_commit_charge of the pending reservation", "commit", uses=(("page", PAGE),)),
    Verb("cancel", ast.Cancel, "cancel P", "mem_cgroup_cancel_charge of the pending reservation",
         "cancel", uses=(("page", PAGE),)),
    Verb("charge", ast.Charge, "charge P to A [lrucare]", "try_charge + commit in one step",
         "charge", uses=(("page", PAGE), ("memcg", MEMCG))),
    Verb("map", ast.Map, "map P", "add one pte mapping (rmap + pte)", "map",
         uses=(("page", PAGE),)),
    Verb("unmap", ast.Unmap, "unmap P", "remove one pte mapping", "unmap", uses=(("page", PAGE),)),
    Verb("try_to_unmap", ast.TryToUnmap, "try_to_unmap P", "reclaim's unmap of every pte",
         "try_to_unmap", uses=(("page", PAGE),)),
    Verb("get", ast.Get, "get P", "take a reference", "get", uses=(("page", PAGE),)),
    Verb("put", ast.Put, "put P", "drop a reference (the last one frees the page)", "put",
         uses=(("page", PAGE),)),
    Verb("lock", ast.Lock, "lock P", "lock_page", "lock", uses=(("page", PAGE),)),
    Verb("unlock", ast.Unlock, "unlock P", "unlock_page", "unlock", uses=(("page", PAGE),)),
    Verb("lru_add", ast.LruAdd, "lru_add P", "lru_cache_add", "lru_add", uses=(("page", PAGE),)),
    Verb("isolate", ast.Isolate, "isolate P", "isolate_lru_page", "isolate",
         uses=(("page", PAGE),)),
    Verb("putback", ast.Putback, "putback P", "putback_lru_page", "putback",
         uses=(("page", PAGE),)),
    Verb("add_to_cache", ast.AddToCache, "add_to_cache P", "insert into the page cache",
         "add_to_cache", uses=(("page", PAGE),)),
    Verb("delete_from_cache", ast.DeleteFromCache, "delete_from_cache P",
         "delete_from_page_cache", "delete_from_cache", uses=(("page", PAGE),)),
    Verb("add_to_swap", ast.AddToSwap, "add_to_swap P as E",
         "a new swap entry E with P in its swap cache", "add_to_swap",
         uses=(("page", PAGE),), binds=(("entry", ENTRY),)),
    Verb("delete_from_swap_cache", ast.DeleteFromSwapCache, "delete_from_swap_cache P",
         "delete_from_swap_cache", "delete_from_swap_cache", uses=(("page", PAGE),)),
    Verb("swapout", ast.Swapout, "swapout P",
         "__remove_mapping of a swap-cache page + mem_cgroup_swapout, then free it", "swapout",
         uses=(("page", PAGE),)),
    Verb("readahead", ast.Readahead, "readahead E as Q",
         "read_swap_cache_async: Q in E's swap cache, on the LRU, uncharged", "readahead",
         uses=(("entry", ENTRY),), may_bind=(("page", PAGE),)),
    Verb("free_swap", ast.FreeSwap, "free_swap E", "swap_free: drop one pte reference of E",
         "free_swap", uses=(("entry", ENTRY),)),
    Verb("release", ast.Release, "release P Q ...", "release_pages: drop one reference of each",
         "release", uses=(("pages", PAGE),)),
    Verb("fault", ast.Fault, "fault P in A [huge]",
         "do_anonymous_page: a new anon page, charged, mapped, on the LRU", "fault",
         binds=(("page", PAGE),), uses=(("memcg", MEMCG),)),
    Verb("cache", ast.Cache, "cache F in A",
         "add_to_page_cache_lru of a new file page", "cache",
         binds=(("page", PAGE),), uses=(("memcg", MEMCG),)),
    Verb("cow", ast.Cow, "cow P to Q in A",
         "do_wp_page: new anon page Q charged and mapped, one mapping of P removed", "cow",
         uses=(("old", PAGE), ("memcg", MEMCG)), binds=(("new", PAGE),)),
    Verb("truncate", ast.Truncate, "truncate P", "truncate_inode_page with a lookup reference",
         "truncate", uses=(("page", PAGE),)),
    Verb("swapin", ast.Swapin, "swapin E as Q [in A] [reuse]", "do_swap_page", "swapin",
         uses=(("entry", ENTRY), ("memcg", MEMCG)), may_bind=(("page", PAGE),)),
    Verb("reclaim", ast.Reclaim, "reclaim P [as E]", "shrink_page_list for one page", "reclaim",
         uses=(("page", PAGE),), binds=(("entry", ENTRY),)),
    Verb("migrate", ast.Migrate, "migrate P to Q [fail]", "migrate_pages for one page",
         "migrate", uses=(("old", PAGE), ("new", PAGE))),
    Verb("replace_cache", ast.ReplaceCache, "replace_cache P with Q", "replace_page_cache_page",
         "replace_cache", uses=(("old", PAGE), ("new", PAGE))),
    Verb("move", ast.Move, "move P|E to B", "charge moving of one page or swap entry", "move",
         uses=(("target", "page|entry"), ("memcg", MEMCG))),
    Verb("split", ast.Split, "split P", "split_huge_page: tails P.1 … P.511", "split",
         uses=(("page", PAGE),)),
    Verb("expect", ast.Expect, "expect TARGET FIELD VALUE ...", "check fields of the state",
         None),
    Verb("expect_outcome", ast.ExpectOutcome,
         "expect enomem|bug|violation: STMT  /  expect error ERRNO: STMT",
         "the statement must end in that outcome (a zap or batch block: its end, `}`)",
         None),
    Verb("show", ast.Show, "show [TARGET]", "show the state", None),
    Verb("only", ast.Only, "only MODELS: STMT", "run a statement under some models only", None),
    Verb("only_block", ast.OnlyBlock, "only MODELS {", "run a block under some models only", None),
    Verb("zap", ast.Zap, "zap {", "munmap/exit: pte references released at the end", None),
    Verb("batch", ast.Batch, "batch {", "mem_cgroup_uncharge_start/end around the block", None),
    Verb("repeat", ast.Repeat, "repeat N as i {", "run the block N times, {i} in names", None),
    Verb("thread", ast.Thread, "thread T {", "a thread of the scenario", None),
)

BY_CLASS: dict[type, Verb] = {v.cls: v for v in TABLE}
BY_NAME: dict[str, Verb] = {v.name: v for v in TABLE}
