"""Config is data: pydantic sections (``sections.py``), YAML presets in ``configs/`` and ``--set a.b=c`` overrides
(``presets.py``), and a stable hash of the effective config (secrets excluded) that names runs and caches.

    from phyt2v.config import load_config
    cfg = load_config("smoke", overrides=["loop.max_rounds=3"])
"""

from .presets import (
                      apply_overrides,
                      config_keys,
                      format_validation,
                      load_config,
                      preset_names,
                      preset_path,
                      resolve_extends,
)
from .sections import (
                      RUNTIME,
                      RUNTIME_OPTIONS,
                      CacheConfig,
                      CaptionerConfig,
                      Config,
                      DraftConfig,
                      GeneratorConfig,
                      LLMConfig,
                      LoopConfig,
                      ScorerConfig,
                      check_options,
                      hash_of,
)

__all__ = ["RUNTIME", "RUNTIME_OPTIONS", "CacheConfig", "CaptionerConfig", "Config", "DraftConfig", "GeneratorConfig",
           "LLMConfig", "LoopConfig", "ScorerConfig", "apply_overrides", "check_options", "config_keys",
           "format_validation", "hash_of", "load_config", "preset_names", "preset_path", "resolve_extends"]
