"""The generator's token budget before its weights load (``phyt2v enhance`` never loads them): the
config's ``max_prompt_tokens``, else what the model's own files or the published table say (model_index.json ->
family -> the pipeline's ``max_sequence_length`` default / transformer config), else DEFAULT_BUDGET."""

from __future__ import annotations

import logging
from typing import Any

from .families import for_class, signature_defaults
from .model_index import index_before_load

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 128  # the shortest T5 budget among the families (LTX-Video); used when nothing is known


def budget_before_load(g: Any) -> int:
    if g.max_prompt_tokens:
        return int(g.max_prompt_tokens)
    index = index_before_load(g.model)  # its files (folder, hub cache) or the published table; never a download
    family = for_class(index.class_name if index else None)
    if index is not None and family.classes:
        import diffusers

        cls = getattr(diffusers, index.class_name, None)
        limit = family.static_limit(signature_defaults(cls), index) if cls is not None else None
        if limit:
            return int(limit)
    log.warning("the token budget of %s is not known before it loads; using %d tokens (set "
                "generator.max_prompt_tokens to choose)", g.model, DEFAULT_BUDGET)
    return DEFAULT_BUDGET
