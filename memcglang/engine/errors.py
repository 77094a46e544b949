"""What an engine step can end in besides success: assertions, error values, scenario errors."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every refusal the engine reports; never a Python bug."""


class VmBug(EngineError):
    """A kernel assertion (VM_BUG_ON, BUG_ON, bad_page) the step hit; the step is rolled back.

    `origin` is "memcg" for an assertion inside memcg code and "mm" when the caller broke an
    mm rule; `assertion` names the kernel check; `report` is a dump_page()-style text.
    """

    def __init__(self, origin: str, assertion: str, page_dump: str | None, reason: str):
        self.origin = origin
        self.assertion = assertion
        self.page_dump = page_dump
        self.reason = reason
        super().__init__(f"{assertion}: {reason}")

    @property
    def report(self) -> str:
        lines = [f"kernel BUG ({self.origin}): {self.assertion}", f"  {self.reason}"]
        if self.page_dump:
            lines.extend("  " + line for line in self.page_dump.splitlines())
        return "\n".join(lines)


class KernelError(EngineError):
    """A kernel error value (-ENOMEM, -EBUSY, -EINVAL, -EAGAIN); the failure path is kept."""

    errno: str = "EINVAL"

    def __init__(self, errno: str, message: str):
        self.errno = errno
        self.message = message
        super().__init__(f"-{errno}: {message}")


class ChargeFailed(KernelError):
    """try_charge gave up: -ENOMEM, naming the failing counter, its memcg, usage and limit."""

    def __init__(self, counter_kind: str, memcg: str, usage: int, limit: int, attempts: int):
        self.counter_kind = counter_kind
        self.memcg = memcg
        self.usage = usage
        self.limit = limit
        self.attempts = attempts
        super().__init__(
            "ENOMEM",
            f"charge failed: {memcg} {counter_kind} usage {usage} + request > limit {limit} "
            f"after {attempts} attempt{'s' if attempts != 1 else ''}",
        )


class ScenarioError(EngineError):
    """The scenario broke a rule of the simulation (leaked reservation, lock held at thread end,
    a name bound twice); the step is rolled back."""


class Deadlock(ScenarioError):
    """A `lock` would wait for a page held by another thread."""

    def __init__(self, page: str, holder: str, thread: str):
        self.page = page
        self.holder = holder
        self.thread = thread
        super().__init__(f"deadlock: {thread} waits for the lock of {page}, held by {holder}")


class InvariantViolation:
    """One broken accounting invariant (SEMANTICS §5): kept and carried, not raised."""

    __slots__ = ("inv", "obj", "field", "actual", "expected", "detail")

    def __init__(self, inv: str, obj: str, field: str, actual, expected, detail: str = ""):
        self.inv = inv
        self.obj = obj
        self.field = field
        self.actual = actual
        self.expected = expected
        self.detail = detail

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.inv, self.obj, self.field)

    def __repr__(self) -> str:
        return f"InvariantViolation({self})"

    def __str__(self) -> str:
        text = f"{self.inv} {self.obj} {self.field}: is {self.actual}, expected {self.expected}"
        return f"{text} ({self.detail})" if self.detail else text
