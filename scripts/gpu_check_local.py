"""GPU check of the memory plan for a ``local-*`` preset: one round per placement, peak VRAM, swap and round seconds.

    PYTHONPATH=. python scripts/gpu_check_local.py --preset local-48gb        # one H100/H200, < 8 minutes
    PYTHONPATH=. python scripts/gpu_check_local.py --tiny                     # CPU rehearsal, tiny models

No downloads: the roles are the full-size architectures with RANDOM weights, built from the published
configs (scripts/param_table.py) directly on the GPU in bf16; tokenizers and processors come from the tiny
models. Random weights measure memory and speed, never quality. A round is: the LLM step (the shared VLM),
generate (``--steps`` denoising steps at the preset's size), caption, VideoCon-Physics score, a second LLM
call. Placements: ``resident`` (all on the GPU), ``swap`` (phyt2v.runtime.swap moves roles between steps),
``offload`` (swap + the generator under diffusers' model offload). The plan's estimate is recorded next to
each measured peak. JSON goes to benchmarks/gpu/ (``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

PROMPT = "a rubber ball is dropped onto a wooden floor and bounces"
VLM_CONFIGS = {"Qwen/Qwen2.5-VL-3B-Instruct": "QWEN25VL_3B", "Qwen/Qwen2.5-VL-7B-Instruct": "QWEN25VL_7B",
               "Qwen/Qwen3-VL-8B-Instruct": "QWEN3VL_8B", "Qwen/Qwen3-VL-4B-Instruct": "QWEN3VL_4B"}


def _versions() -> dict:
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import diffusers

        out["diffusers"] = diffusers.__version__
    except ImportError:
        out["diffusers"] = None
    out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return out


def _gpu_vlm(model_id: str, device: str, tokenizer):
    """A full-size random-weight VLM of ``model_id``'s architecture on the GPU (bf16), its special token ids
    those of the tiny tokenizer that feeds it."""
    import param_table
    import transformers

    cfg = dict(getattr(param_table, VLM_CONFIGS[model_id]))
    cls = getattr(transformers, cfg["architectures"][0])
    for key, tok in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
                     ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        cfg[key] = tokenizer.convert_tokens_to_ids(tok)
    conf = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    with param_table.made_on(device):
        model = cls(conf)
    return model.eval()


def _gpu_pipeline(tiny_dir: str, device: str):
    """CogVideoX-5B's full-size transformer, T5-XXL and VAE with random weights, tiny tokenizer/scheduler."""
    import param_table
    from diffusers import AutoencoderKLCogVideoX, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    tiny = CogVideoXPipeline.from_pretrained(tiny_dir)
    t5 = {k: v for k, v in param_table.T5_XXL.items() if k != "model_type"}
    with param_table.made_on(device):
        transformer = CogVideoXTransformer3DModel(**param_table.COG_5B)
        text_encoder = T5EncoderModel(T5Config(**t5))
        vae = AutoencoderKLCogVideoX()
    return CogVideoXPipeline(tokenizer=tiny.tokenizer, text_encoder=text_encoder.eval(), vae=vae.eval(),
                             transformer=transformer.eval(), scheduler=tiny.scheduler)


def build_roles(config, tiny: bool, device: str, workdir: Path) -> dict:
    """generator, captioner, llm (the shared VLM) and scorer backends for ``config``."""
    import torch

    from phyt2v.captioners.vlm import VLMCaptioner
    from phyt2v.generators.cogvideox import CogVideoXGenerator
    from phyt2v.llms.vlm_llm import VLMChatLLM
    from phyt2v.scorers.mplug_owl.tiny import build_tiny_checkpoint
    from phyt2v.scorers.videocon import VideoConScorer
    from phyt2v.tiny import tiny_model_dir
    from phyt2v.vlm import runtime as vlm

    g = config.generator
    owl_dir = build_tiny_checkpoint(workdir / "owl")
    vlm_dir = str(tiny_model_dir("vlm"))
    if tiny:
        gen = CogVideoXGenerator("tiny", num_frames=9, steps=2, height=16, width=16, device=device)
        cap = VLMCaptioner(vlm_dir, num_frames=4, max_new_tokens=8, frame_size=32, device=device)
        scorer = VideoConScorer(str(owl_dir), device=device, num_frames=4)
    else:
        pipe = _gpu_pipeline(str(tiny_model_dir("cogvideox")), device)
        gen = CogVideoXGenerator(g.model, pipeline=pipe, num_frames=g.num_frames, steps=2, guidance=g.guidance,
                                 height=g.height, width=g.width, device=device, offload="none")
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        processor = vlm.load_processor(vlm_dir)
        model = _gpu_vlm(config.captioner.model, device, vlm.tokenizer_of(processor))
        patch = int(model.config.vision_config.patch_size)  # 14 for Qwen2.5-VL, 16 for Qwen3-VL
        side = config.captioner.frame_size // (2 * patch) * 2 * patch
        processor.image_processor = Qwen2VLImageProcessorPil(patch_size=patch, min_pixels=(2 * patch) ** 2,
                                                             max_pixels=side * side)
        vlm._CACHE[(vlm.resolve_model(vlm_dir), device, str(torch.bfloat16), "none")] = (model, processor)
        cap = VLMCaptioner(vlm_dir, num_frames=config.captioner.num_frames, max_new_tokens=64, device=device,
                           dtype="bfloat16")
        scorer = VideoConScorer(str(owl_dir), device=device, dtype="bfloat16", num_frames=32)
        import param_table

        from phyt2v.scorers.mplug_owl.config import MplugOwlConfig
        from phyt2v.scorers.mplug_owl.model import MplugOwlForConditionalGeneration

        with param_table.made_on(device):
            big = MplugOwlForConditionalGeneration(MplugOwlConfig()).eval()
        scorer.runtime.model, scorer.runtime.config = big, MplugOwlConfig()
    llm = VLMChatLLM(vlm_dir, device=device, dtype="float32" if tiny else "bfloat16", max_tokens=16 if tiny else 64)
    return {"generator": gen, "captioner": cap, "llm": llm, "scorer": scorer}


def one_round(roles: dict, steps: int, out: Path) -> float:
    t0 = time.perf_counter()
    roles["llm"].complete([{"role": "user", "content": f"List the physical rules of: {PROMPT}"}])
    roles["generator"].steps = steps
    video = roles["generator"].generate(PROMPT, seed=0, out_path=out)
    caption = roles["captioner"].caption(video.path)
    roles["scorer"].score(video.path, PROMPT)
    roles["llm"].complete([{"role": "user", "content": f"Caption: {caption[:200]}. What mismatches?"}])
    return time.perf_counter() - t0


def run(preset: str, tiny: bool, steps: int, out_dir: Path) -> dict:
    import torch

    from phyt2v.config import load_config
    from phyt2v.runtime import memplan
    from phyt2v.runtime.swap import Swapper

    cuda = torch.cuda.is_available() and not tiny
    if not tiny and not cuda:
        raise SystemExit("no CUDA GPU: run with --tiny for the CPU rehearsal")
    device = "cuda:0" if cuda else "cpu"
    config = load_config(preset)
    total = torch.cuda.mem_get_info()[1] if cuda else None
    result = {"preset": preset, "tiny": tiny, "steps": steps, "date": datetime.now(timezone.utc).isoformat(),
              "versions": _versions(), "placements": {}}
    if total:
        plan = memplan.make_plan(config, total, cuda=True, env={})
        result["plan_on_this_card"] = {"placement": plan.placement, "peak_bytes": plan.peak_bytes}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        raw = build_roles(config, tiny, device, work)
        result["build_seconds"] = round(time.perf_counter() - t0, 2)
        for placement in ("resident", "swap", "offload"):
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            roles = dict(raw)
            sw = None
            if placement != "resident":
                sw = Swapper(device, skip=("generator",) if placement == "offload" else ())
                if placement == "offload" and cuda:
                    raw["generator"].pipe.enable_model_cpu_offload(device=device)
                roles = {r: sw.wrap(r, b) for r, b in raw.items()}
                sw.park_all()
            secs = one_round(roles, steps, work / f"{placement}.mp4")
            row = {"round_seconds": round(secs, 2)}
            if sw is not None:
                row.update(swap_seconds=round(sw.seconds, 2), swaps=sw.swaps)
            row["peak_vram_bytes"] = int(torch.cuda.max_memory_allocated()) if cuda else None
            if sw is not None and cuda:  # back to the GPU for the next placement
                for r in ("captioner", "scorer"):
                    sw.activate(r)
            result["placements"][placement] = row
            print(placement, row, flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"local-{'tiny-cpu' if tiny else preset}-{datetime.now(timezone.utc):%Y%m%d-%H%M}.json"
    path = out_dir / name
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    result["path"] = str(path)
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="local-48gb", help="a local-* preset (its roles' architectures)")
    ap.add_argument("--tiny", action="store_true", help="CPU rehearsal with the tiny models")
    ap.add_argument("--steps", type=int, default=4, help="denoising steps per video (the memory is the same)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gpu")
    a = ap.parse_args(argv)
    res = run(a.preset, a.tiny, a.steps, a.out)
    print(res["path"])


if __name__ == "__main__":
    main()
