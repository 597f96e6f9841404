"""What the served generators (``openai``, ``veo``) share beyond the job's life (``jobs.py``): the key, the token
budget without local weights, the checks before anything starts, and the class hooks the loop asks.

Token budget: a served model has no local tokenizer. ``generator.tokenizer`` (a local folder or a hub id already in
the cache: read offline, never downloaded here) counts the prompt as the model's text encoder would; without it the
count is the prompt's words x ``TOKENS_PER_WORD`` (1.3, a T5/UMT5 tokenizer's rate on English prose). The budget is
``generator.max_prompt_tokens``, else the backend's ``default_budget``.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..store import redact
from .jobs import JobGenerator

if TYPE_CHECKING:
    from ..config import Config

TOKENS_PER_WORD = 1.3
DRAFT_KEYS = ("steps", "height", "width", "model")


@lru_cache(maxsize=8)
def load_tokenizer(ref: str) -> Any:
    """``AutoTokenizer`` of ``ref`` (a folder, or a diffusers folder with ``tokenizer/``; or a hub id in the cache),
    offline; ConfigError naming the fix when it is not here."""
    from pathlib import Path

    from transformers import AutoTokenizer

    attempts = [{}, {"subfolder": "tokenizer"}]
    last: Exception | None = None
    for extra in attempts:
        try:
            return AutoTokenizer.from_pretrained(str(Path(ref).expanduser()) if Path(ref).expanduser().is_dir()
                                                 else ref, local_files_only=True, **extra)
        except (OSError, ValueError, KeyError) as e:
            last = e
    raise ConfigError(f"generator.tokenizer '{ref}' cannot be read offline ({type(last).__name__}); download it "
                      f"once with `hf download {ref} --include \"*token*\" \"*.json\" \"*.model\"`, pass a local "
                      "folder, or unset generator.tokenizer to count words x "
                      f"{TOKENS_PER_WORD} instead") from None


class ServedGenerator(JobGenerator):
    """A served generator built from the config (``from_config``); subclasses add the protocol."""

    default_key_env = "OPENAI_API_KEY"
    default_budget = 512
    options_known: tuple[str, ...] = ()   # options the backend reads itself (the rest are sent as given)
    seconds_option = "seconds"            # the option that asks for a length, in seconds
    default_seconds = 4.0                 # the length a job gets when neither frames and fps nor that option say

    def __init__(self, config: "Config"):
        g = config.generator
        super().__init__(g, max_in_flight=g.max_in_flight)
        if not g.model:
            raise ConfigError(f"generator.model is empty: set it to the model the {self.backend} endpoint serves")
        self.model_id = g.model
        self.key_env = g.api_key_env or self.default_key_env
        redact.watch(self.key_env)  # its value is scrubbed from every message and file
        self.options = dict(g.options)
        self.tokenizer = load_tokenizer(g.tokenizer) if g.tokenizer else None
        self.max_prompt_tokens = int(g.max_prompt_tokens or self.default_budget)
        self.num_frames, self.fps, self.steps, self.guidance = g.num_frames, g.fps, g.steps, g.guidance
        self.height, self.width = g.height, g.width

    def requested_seconds(self, overrides: dict[str, Any]) -> float:
        """Frames / fps when both are set, else the backend's length option, else its default length."""
        if self.num_frames and self.fps:
            return self.num_frames / self.fps
        try:
            return float(self.options.get(self.seconds_option, self.default_seconds))
        except (TypeError, ValueError):
            return self.default_seconds

    @property
    def key(self) -> str | None:
        """The key, read from the environment at each use (never stored on the object)."""
        return os.environ.get(self.key_env) or None

    @classmethod
    def from_config(cls, config: "Config") -> "ServedGenerator":
        cls.check_before_load(config)
        return cls(config)

    # ---------------------------------------------------------------- hooks the loop and the plan ask
    @classmethod
    def check_before_load(cls, config: "Config") -> None:
        """Refuse settings a served generator cannot honour, before anything starts."""
        g = config.generator
        local = {"cache": g.cache, "lora": g.lora or None, "compile": g.compile or None,
                 "attention_backend": g.attention_backend, "dynamic_cfg": g.dynamic_cfg, "scheduler": g.scheduler}
        set_ = sorted(k for k, v in local.items() if v is not None)
        if set_:
            raise ConfigError(f"generator.{', generator.'.join(set_)} apply to a local diffusers pipeline; the "
                              f"{cls.backend} backend renders on a server: unset them (server-side settings go in "
                              "generator.options)")
        d = config.loop.draft
        if d.enabled and d.cache is not None:
            raise ConfigError("loop.draft.cache applies to a local diffusers pipeline; a served generator cannot "
                              "take it: unset it (use loop.draft.steps or loop.draft.model)")

    @classmethod
    def budget_before_load(cls, config: "Config") -> int:
        return int(config.generator.max_prompt_tokens or cls.default_budget)

    @classmethod
    def render_shape(cls, config: "Config") -> None:
        return None  # renders on a server: nothing to plan on this GPU

    # ---------------------------------------------------------------- tokens
    def count_tokens(self, prompt: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        return math.ceil(len(prompt.split()) * TOKENS_PER_WORD)

    def tokens_per_word(self) -> float:
        if self.tokenizer is None:
            return TOKENS_PER_WORD
        ref = "A heavy glass bottle slides off the wooden table, falls, and shatters on the stone floor."
        return min(3.0, max(1.0, (self.count_tokens(ref) - self.count_tokens("")) / len(ref.split())))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model_id, "token_budget": self.max_prompt_tokens,
                "tokenizer": self.settings.tokenizer or f"words x {TOKENS_PER_WORD}"}

    def check_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Draft rounds' per-call settings: ``steps``, ``height``, ``width`` sent as the job's fields, ``model`` a
        cheaper served model (loop.draft.model)."""
        extra = sorted(set(overrides) - set(DRAFT_KEYS))
        if extra:
            raise ConfigError(f"the {self.backend} generator cannot take {extra} per call (drafts: "
                              f"{', '.join(DRAFT_KEYS)})")
        return overrides
