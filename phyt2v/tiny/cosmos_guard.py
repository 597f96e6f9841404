"""A safety checker that passes everything, for the tiny Cosmos Predict 2.5 pipeline only.

Cosmos' pipeline refuses to run without a safety checker (NVIDIA's Open Model License); real models use
``cosmos_guardrail``. A tiny model's frames are noise, so its folder names this class (diffusers imports it by this
module's name when the folder loads), as diffusers' own tests use a dummy checker."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.modeling_utils import ModelMixin


class PassThroughSafetyChecker(ModelMixin, ConfigMixin):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_tracker", torch.zeros(1))  # saved, so the folder has a weights file

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames):
        return frames
