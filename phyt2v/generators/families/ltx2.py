"""LTX-2 (LTX2Pipeline): one transformer denoises video and audio together; the call returns both.

Gemma-3 text encoder, 1024 tokens (the prompt stripped, bos added, left-padded). VAE x32 spatial, x8 temporal
(``patch_size * 2 ** sum(spatio_temporal_scaling)`` unless the config states the ratios: the pipeline's own rule), so
frames 8k+1 and sides multiples of 32 (check_inputs). ``frame_rate`` (24) conditions the model and sets the audio's
length. Guidance: ``guidance_scale`` (CFG, video), plus ``generator.options`` ``audio_guidance_scale``,
``stg_scale``, ``modality_scale``, ``guidance_rescale`` as the pipeline takes them; ``decode_timestep`` /
``decode_noise_scale`` where the VAE is timestep-conditioned. The audio (the vocoder's waveform, 24 kHz stereo on
the published model) is muxed into the round's mp4 as AAC; ``generator.options.audio: false`` keeps the mp4
silent (the pipeline still denoises and decodes the audio: it is one joint model and one call)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .base import Family, config_value
from .ltx import LTX


class LTX2(LTX):
    name = "ltx2"
    classes = ("LTX2Pipeline",)
    fps = 24
    tiny = "ltx2"
    audio = True
    call_options = {"audio": bool, "audio_guidance_scale": (int, float), "stg_scale": (int, float),
                    "modality_scale": (int, float), "guidance_rescale": (int, float)}

    def rules(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        scaling = config_value(vae, "spatio_temporal_scaling", (True, True, True, True))
        steps = sum(bool(x) for x in (scaling if isinstance(scaling, (list, tuple)) else [scaling] * 4))
        s = config_value(vae, "spatial_compression_ratio", int(config_value(vae, "patch_size", 4)) * 2 ** steps)
        t = config_value(vae, "temporal_compression_ratio", int(config_value(vae, "patch_size_t", 1)) * 2 ** steps)
        spatial = int(s) * int(config_value(transformer, "patch_size", 1))
        return int(t) * int(config_value(transformer, "patch_size_t", 1)), math.lcm(32, spatial)

    def defaults(self, sig: dict[str, Any], transformer: Mapping[str, Any] | None = None) -> dict[str, Any]:
        d = Family.defaults(self, sig, transformer)
        d["num_frames"] = d["num_frames"] or 121  # the pipeline's own when it has no duration head
        d["fps"] = int(round(d["fps"]))
        return d

    def clean(self, prompt: str) -> str:
        return prompt.strip()  # as _get_gemma_prompt_embeds

    def tracks(self, pipe: Any, out: Any, n: int) -> list[tuple[Any, int]] | None:
        audio = getattr(out, "audio", None)
        if audio is None:
            return None
        rate = int(config_value(getattr(pipe.vocoder, "config", None), "output_sampling_rate", 24000))
        return [(audio[i].float().cpu().numpy().T, rate) for i in range(n)]  # (channels, samples) -> (samples, channels)
