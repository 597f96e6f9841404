"""mPLUG-Owl-Video (LLaMA-7B + CLIP ViT-L/14 with temporal modules + 64-query visual abstractor),
the architecture of VideoCon-Physics and VideoPhy-2 AutoEval, on current transformers.

Heavy imports (torch, transformers) happen in the submodules, not here.
"""

from .config import AbstractorConfig, MplugOwlConfig, VisionConfig

__all__ = ["AbstractorConfig", "MplugOwlConfig", "VisionConfig"]
