"""Per-task uncharge batching (`current->memcg_batch`), shared by v1 and legacy.

Both kernels keep 3.16's `mem_cgroup_uncharge_start()`/`_end()` windows: only res_counter
work is deferred (statistics and the pc flags change at once); the first memcg uncharged in
a window becomes the batch memcg; a huge page or a page of another memcg is uncharged
directly. Outside a window the kernel sets `batch->memcg` too, but only
`memcg_oom_recover()` reads it there, which is not modelled.
"""

from __future__ import annotations

from memcglang.engine.state import MemCgroup, Window


class Windows:
    """Mixin for a MemcgModel with `has_windows`."""

    has_windows = True

    def window(self, thread: str) -> Window:
        return self.mm.window(thread)

    def uncharge_start(self, thread: str) -> None:
        """mem_cgroup_uncharge_start: nestable; the outermost start resets the batch."""
        win = self.window(thread)
        w = self.j.w
        self.mm.call("mem_cgroup_uncharge_start")
        w(win, "depth", win.depth + 1)
        if win.depth == 1:
            w(win, "memcg", None)
            w(win, "nr_pages", 0)
            w(win, "memsw_nr_pages", 0)

    def uncharge_end(self, thread: str) -> None:
        """mem_cgroup_uncharge_end: the outermost end uncharges what the batch held back."""
        win = self.mm.windows.get(thread)
        if win is None or win.depth == 0:
            return
        w = self.j.w
        self.mm.call("mem_cgroup_uncharge_end")
        w(win, "depth", win.depth - 1)
        if win.depth or win.memcg is None:
            return
        memcg = win.memcg
        if win.nr_pages or win.memsw_nr_pages:
            w(self.cost, "batches", self.cost.batches + 1)
        if win.nr_pages:
            self.uncharge_counter(memcg.res, win.nr_pages)
        if win.memsw_nr_pages:
            self.uncharge_counter(memcg.memsw, win.memsw_nr_pages)
        w(win, "nr_pages", 0)
        w(win, "memsw_nr_pages", 0)
        w(win, "memcg", None)

    def batch_uncharge(self, memcg: MemCgroup, nr: int, mem: bool, memsw: bool) -> None:
        """The counters of one uncharge: deferred to the window's end when the window is open,
        the page is a base page and the memcg is the batch's; else uncharged now (v1's
        mem_cgroup_uncharge tail, 3.16's mem_cgroup_do_uncharge)."""
        mm = self.mm
        win = mm.windows.get(mm.thread)
        if win is not None and win.depth > 0:
            w = self.j.w
            if win.memcg is None:
                w(win, "memcg", memcg)
            if nr == 1 and win.memcg is memcg:
                if mem:
                    w(win, "nr_pages", win.nr_pages + 1)
                if memsw:
                    w(win, "memsw_nr_pages", win.memsw_nr_pages + 1)
                return
        if self.skip_counters(memcg):
            return
        if mem:
            self.uncharge_counter(memcg.res, nr)
        if memsw:
            self.uncharge_counter(memcg.memsw, nr)
