"""CogVideoX 2B/5B/1.5-5B: the PhyT2V paper's generator.

Paper settings: DPM scheduler with trailing timestep spacing, dynamic CFG, guidance 6, 50 steps, 8 fps
(1.5: 16 fps). The VAE decodes latent frames two at a time after the first, so only 8k+1 frames come
back whole (1.5 also patches latents in time: 16k+1). Its attention ignores set_attention_backend.
"""

from __future__ import annotations

from typing import Any, Mapping

from .base import Family, Settings, config_value


class CogVideoX(Family):
    name = "cogvideox"
    classes = ("CogVideoXPipeline",)
    fps = 8
    options = frozenset({"dynamic_cfg", "scheduler"})
    attention_dispatch = False
    videos_per_prompt = False  # diffusers 0.42's __call__ resets num_videos_per_prompt to 1: repeat the prompt
    tiny = "cogvideox"

    def rules(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        spatial = 2 ** (len(config_value(vae, "block_out_channels", (0,) * 4)) - 1) * int(config_value(transformer, "patch_size", 2))
        temporal = int(config_value(vae, "temporal_compression_ratio", 4)) * 2  # latent frames decode in pairs
        return temporal * int(config_value(transformer, "patch_size_t", 1)), spatial

    def token_grid(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        # latent frames (VAE x4) patched in time by patch_size_t (1.5: 2); the pairs rule is the decoder's, not a token's
        temporal = int(config_value(vae, "temporal_compression_ratio", 4)) * int(config_value(transformer, "patch_size_t", 1))
        return temporal, self.rules(vae, transformer)[1]

    def defaults(self, sig: dict[str, Any], transformer: Mapping[str, Any] | None = None) -> dict[str, Any]:
        d = super().defaults(sig, transformer)
        # the pipeline fills size and frames from the transformer config (sample_* x VAE factor 8)
        d["height"] = d["height"] or int(config_value(transformer, "sample_height", 60)) * 8
        d["width"] = d["width"] or int(config_value(transformer, "sample_width", 90)) * 8
        d["num_frames"] = d["num_frames"] or int(config_value(transformer, "sample_frames", 49))
        d["fps"] = 16 if config_value(transformer, "patch_size_t") else 8  # CogVideoX1.5 renders at 16 fps
        return d

    def token_limit(self, pipe: Any, sig: dict[str, Any]) -> int | None:
        # the transformer's positional table fixes the length the pipeline must encode
        return int(getattr(pipe.transformer.config, "max_text_seq_length", None) or sig["max_sequence_length"])

    def static_limit(self, sig: dict[str, Any], index: Any) -> int | None:
        return int(config_value(index.transformer, "max_text_seq_length", sig["max_sequence_length"]))

    def prepare(self, pipe: Any, cfg: Any) -> dict[str, Any]:
        name = cfg.scheduler or "dpm"
        if name != "pipeline":
            from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

            cls = CogVideoXDPMScheduler if name == "dpm" else CogVideoXDDIMScheduler
            pipe.scheduler = cls.from_config(pipe.scheduler.config, timestep_spacing="trailing")
        return {"scheduler": name, **super().prepare(pipe, cfg)}

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        kw = super().call_kwargs(pipe, s, sig)
        kw["use_dynamic_cfg"] = True if s.dynamic_cfg is None else s.dynamic_cfg
        kw["max_sequence_length"] = self.token_limit(pipe, sig)
        return kw
