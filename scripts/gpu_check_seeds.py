#!/usr/bin/env python
"""GPU check of best-of-N seeds: N seeds rendered in ONE pipeline call (``generate_many``) vs N separate
calls (``generate``), seconds and peak VRAM of each arm, on a full-size random-weight Wan2.1-T2V-1.3B.

    PYTHONPATH=. python scripts/gpu_check_seeds.py                 # one H100/H200: 480x832, 81 frames, 4 steps
    PYTHONPATH=. python scripts/gpu_check_seeds.py --tiny --out /tmp/seeds.json   # CPU rehearsal, tiny-wan

No download: the WanPipeline is built on the GPU in bf16 from the published architecture with RANDOM weights
(random weights measure speed and memory, never quality): the transformer of Wan2.1-T2V-1.3B (WAN_13B in
gpu_check_generators.py: dim 1536 = 12 heads x 128, ffn 8960, 30 layers, freq 256, patch (1, 2, 2), text 4096,
qk rms-norm, cross-attention norm, eps 1e-6; source: the Wan team's wan/configs/wan_t2v_1_3B.py in
github.com/Wan-Video/Wan2.1 and transformer/config.json of Wan-AI/Wan2.1-T2V-1.3B-Diffusers), the UMT5-XXL
encoder (param_table.UMT5_XXL) and the Wan 2.1 VAE (AutoencoderKLWan's defaults: z 16, x8 spatial, x4 temporal);
tokenizer and UniPC scheduler (flow shift 3.0, the 480p value) come from the tiny Wan pipeline.
Both arms go through phyt2v's DiffusersGenerator (VAE tiling and slicing on, as configured by default), write
real mp4 files, and start after one untimed warm-up video (1 step). Steps default to 4 (not the 50 of the
model card) so the check stays well under 8 minutes; seconds scale about linearly with ``--steps``.
Peak VRAM is ``torch.cuda.max_memory_allocated``, reset before each arm. A batched call that runs out of
memory is halved by generate_many; ``pipeline_calls`` records how many calls each arm made.
The GPU machine lacks diffusers, pydantic and imageio-ffmpeg: bring them as wheels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

PROMPT = "A rubber ball is dropped onto a wooden floor and bounces twice before rolling to a stop"
FULL = dict(height=480, width=832, frames=81, steps=4)
TINY = dict(height=16, width=16, frames=9, steps=2)


def build_pipeline(device: str):
    """Wan2.1-T2V-1.3B at full size, random weights, bf16, built directly on ``device``."""
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    import param_table
    from gpu_check_generators import WAN_13B
    from phyt2v.tiny import tiny_model_dir

    tiny = WanPipeline.from_pretrained(str(tiny_model_dir("wan")))
    umt5 = {k: v for k, v in param_table.UMT5_XXL.items() if k != "model_type"}
    with param_table.made_on(device):
        transformer = WanTransformer3DModel(**WAN_13B)
        text_encoder = UMT5EncoderModel(UMT5Config(**umt5))
        vae = AutoencoderKLWan()
    return WanPipeline(tokenizer=tiny.tokenizer, text_encoder=text_encoder.eval(), vae=vae.eval(),
                       transformer=transformer.eval(), scheduler=tiny.scheduler)


def build_generator(tiny: bool, size: dict, device: str):
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    shape = dict(height=size["height"], width=size["width"], num_frames=size["frames"], steps=size["steps"])
    if tiny:
        return DiffusersGenerator("tiny-wan", device=device, **shape)
    return DiffusersGenerator("Wan-AI/Wan2.1-T2V-1.3B-Diffusers (random weights)", pipeline=build_pipeline(device),
                              device=device, dtype="bfloat16", offload="none", **shape)


def run_arm(gen, batched: bool, seeds: list[int], folder: Path, cuda: bool) -> dict:
    import torch

    calls = []

    def on_step(i: int, total: int) -> None:
        if i == 1:
            calls.append(total)

    paths = [folder / f"{'batched' if batched else 'separate'}-seed{s}.mp4" for s in seeds]
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if batched:
        videos = gen.generate_many(PROMPT, seeds=seeds, out_paths=paths, on_step=on_step, batch_size=0)
    else:
        videos = [gen.generate(PROMPT, seed=s, out_path=p, on_step=on_step) for s, p in zip(seeds, paths)]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "s_per_video": round(seconds / len(seeds), 3),
            "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
            "pipeline_calls": len(calls),
            "videos": [{"seed": v.seed, "file": v.path.name, "frames": v.num_frames, "width": v.width,
                        "height": v.height, "bytes": v.path.stat().st_size} for v in videos]}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny-wan on CPU at 16x16, 9 frames, 2 steps")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "gpu" / "seeds.json"), help="JSON file to write")
    p.add_argument("--seeds", type=int, default=4, help="N: videos per arm (seeds 0..N-1)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps per video (default 4; tiny 2)")
    p.add_argument("--frames", type=int, default=None, help="frames, 4k+1 (default 81; tiny 9)")
    p.add_argument("--height", type=int, default=None, help="default 480 (tiny 16)")
    p.add_argument("--width", type=int, default=None, help="default 832 (tiny 16)")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds {args.seeds}: need at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    from gpu_check_generators import versions

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("gpu_check_seeds: no CUDA device; run it on a GPU machine, or pass --tiny for the CPU rehearsal",
              file=sys.stderr)
        return 2
    base = TINY if args.tiny else FULL
    size = {k: getattr(args, k) or base[k] for k in ("height", "width", "frames", "steps")}
    device = "cuda" if cuda else "cpu"
    seeds = list(range(args.seeds))
    start = time.monotonic()
    t0 = time.perf_counter()
    gen = build_generator(args.tiny, size, device)
    build_s = round(time.perf_counter() - t0, 2)
    report = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "gpu": torch.cuda.get_device_name(0) if cuda else None, "device": device, "tiny": args.tiny,
              **versions(), "model": "tiny-wan" if args.tiny else "Wan2.1-T2V-1.3B (full size, random weights)",
              "transformer_params": sum(p.numel() for p in gen.pipe.transformer.parameters()),
              "settings": {**size, "seeds": seeds, "dtype": str(gen.pipe.transformer.dtype).removeprefix("torch."),
                           "warmup": "one video, 1 step"},
              "build_s": build_s,
              "weights_gb": round(torch.cuda.memory_allocated() / 2**30, 3) if cuda else None, "arms": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-seeds-") as tmp:
        folder = Path(tmp)
        gen.generate(PROMPT, seed=99, out_path=folder / "warmup.mp4", overrides={"steps": 1})
        for name, batched in (("batched", True), ("separate", False)):
            report["arms"][name] = run_arm(gen, batched, seeds, folder, cuda)
            arm = report["arms"][name]
            print(f"{name}: {len(arm['videos'])} videos in {arm['pipeline_calls']} call(s), {arm['seconds']} s "
                  f"({arm['s_per_video']} s/video), peak VRAM {arm['peak_vram_gb']} GB", flush=True)
    arms = report["arms"]
    report["speedup"] = round(arms["separate"]["seconds"] / max(arms["batched"]["seconds"], 1e-9), 3)
    report["total_s"] = round(time.monotonic() - start, 2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"batched vs separate: {report['speedup']}x; wrote {out}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
