"""The accounting engine: page lifecycle and memcg models; imports only attrs and the stdlib."""

from __future__ import annotations

from memcglang.engine.errors import (
    ChargeFailed,
    Deadlock,
    EngineError,
    InvariantViolation,
    KernelError,
    ScenarioError,
    VmBug,
)
from memcglang.engine.mm import Engine, StepResult

__all__ = [
    "ChargeFailed",
    "Deadlock",
    "Engine",
    "EngineError",
    "InvariantViolation",
    "KernelError",
    "ScenarioError",
    "StepResult",
    "VmBug",
]
