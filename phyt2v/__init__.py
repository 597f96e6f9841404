"""phyt2v: make text-to-video models obey physics without training (the PhyT2V loop).

    from phyt2v import Refiner, load_config
    result = Refiner(load_config("smoke")).refine("a rubber ball is dropped onto a wooden floor")
    print(result.best.scores, result.best_video)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Refiner": "phyt2v.loop", "RefineResult": "phyt2v.loop", "EnhanceResult": "phyt2v.loop.enhancers",
    "Event": "phyt2v.loop",
    "Batch": "phyt2v.batch", "Shard": "phyt2v.batch", "load_source": "phyt2v.batch",
    "summarize_batch": "phyt2v.views.metrics", "export": "phyt2v.views.export", "write_report": "phyt2v.views.report",
    "Config": "phyt2v.config", "load_config": "phyt2v.config",
    "RunRecord": "phyt2v.store.record", "RoundRecord": "phyt2v.store.record", "Rules": "phyt2v.schemas",
    "Mismatch": "phyt2v.schemas", "Refinement": "phyt2v.schemas",
    "Scores": "phyt2v.roles", "GeneratedVideo": "phyt2v.roles",
    "LLM": "phyt2v.roles", "VideoGenerator": "phyt2v.roles", "Captioner": "phyt2v.roles", "Scorer": "phyt2v.roles",
    "Phyt2vError": "phyt2v.errors", "ConfigError": "phyt2v.errors", "InputError": "phyt2v.errors",
    "ParseError": "phyt2v.errors", "LLMError": "phyt2v.errors", "BackendError": "phyt2v.errors",
    "BackendNotFound": "phyt2v.errors", "VideoError": "phyt2v.errors", "Interrupted": "phyt2v.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'phyt2v' has no attribute {name!r}")
