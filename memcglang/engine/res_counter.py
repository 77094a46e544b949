"""struct res_counter operations (kernel/res_counter.c, 3.14-3.17), in pages, through the journal.

Every call counts once in `cost.res_counter`, whatever the hierarchy depth (LANGUAGE §5); the
count goes through the journal too, so a rolled-back step leaves it as it was.
"""

from __future__ import annotations

from memcglang.engine.state import Cost, Journal, ResCounter


def res_counter_charge(j: Journal, cost: Cost, counter: ResCounter, nr: int) -> ResCounter | None:
    """Charge `nr` pages up the hierarchy (res_counter_charge); return the failing counter or None.

    At each level: usage + nr > limit fails there (failcnt += 1, the levels below are uncharged
    again but keep their transient max_usage); otherwise usage += nr and max_usage follows.
    """
    j.w(cost, "res_counter", cost.res_counter + 1)
    c = counter
    while c is not None:
        new = c.usage + nr
        if c.limit is not None and new > c.limit:
            j.w(c, "failcnt", c.failcnt + 1)
            u = counter
            while u is not c:
                j.w(u, "usage", u.usage - nr)
                u = u.parent
            return c
        j.w(c, "usage", new)
        if new > c.max_usage:
            j.w(c, "max_usage", new)
        c = c.parent
    return None


def res_counter_uncharge_until(
    j: Journal, cost: Cost, counter: ResCounter, top: ResCounter | None, nr: int, warn
) -> None:
    """Uncharge `nr` pages from `counter` up to (excluding) `top` (res_counter_uncharge_until).

    An uncharge below zero WARNs and clamps to 0 (res_counter_uncharge_locked); `warn` is told.
    """
    j.w(cost, "res_counter", cost.res_counter + 1)
    c = counter
    while c is not top:
        if c.usage < nr:
            warn(c, nr)
            j.w(c, "usage", 0)
        else:
            j.w(c, "usage", c.usage - nr)
        c = c.parent


def res_counter_uncharge(j: Journal, cost: Cost, counter: ResCounter, nr: int, warn) -> None:
    """Uncharge `nr` pages from `counter` and every parent (res_counter_uncharge)."""
    res_counter_uncharge_until(j, cost, counter, None, nr, warn)
