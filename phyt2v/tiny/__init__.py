"""Tiny random-weight models for smoke runs and tests: ``tiny_model_dir(kind)`` builds one once into the cache.

    from phyt2v.tiny import tiny_model_dir
    folder = tiny_model_dir("wan")   # a WanPipeline folder, loaded with from_pretrained like a real one
"""

from .build import KINDS, tiny_model_dir

__all__ = ["KINDS", "tiny_model_dir"]
