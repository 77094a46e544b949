"""The memcg models: one module per kernel, each implementing the hook protocol of `base`."""

from __future__ import annotations

MODELS = ("v1", "3.17", "legacy")


def model_class(name: str):
    """Return the model class for a model name (`v1`, `3.17`, `legacy`)."""
    if name == "3.17":
        from memcglang.engine.memcg.merged import Merged

        return Merged
    if name == "v1":
        from memcglang.engine.memcg.v1 import V1

        return V1
    if name == "legacy":
        from memcglang.engine.memcg.legacy import Legacy

        return Legacy
    raise ValueError(f"unknown model {name!r}; models are {', '.join(MODELS)}")
