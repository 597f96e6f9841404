#!/usr/bin/env python
"""GPU check of LVD's layout guidance: seconds per denoising step and peak VRAM of a full-size random-weight
Wan2.1-T2V-1.3B at 480x832, 81 frames, with guidance off, on with gradient checkpointing, and on without it.

    PYTHONPATH=. python scripts/gpu_check_lvd.py                  # one H100/H200, bf16: writes benchmarks/gpu/lvd.json
    PYTHONPATH=. python scripts/gpu_check_lvd.py --tiny --out /tmp/lvd.json   # CPU rehearsal, tiny-wan

No download: the WanPipeline is the one ``gpu_check_seeds.py`` builds (the published transformer, UMT5-XXL encoder
and Wan 2.1 VAE in bf16 on the GPU with RANDOM weights; the tiny pipeline's tokenizer and UniPC scheduler). Random
weights measure speed and memory, never quality: the energies recorded say the code ran, not that a layout was
followed. Every arm goes through phyt2v's DiffusersGenerator (``generate(..., layout=)``), so the guided arms run
the code a ``loop.layout: guide`` round runs: the object tokens found with the pipeline's tokenizer, the text
attention of the middle third of the blocks (10..19 of 30) captured, LVD's energy, its gradient on the latents.
Settings: the issue's 5 gradient iterations in each of the first 10 steps (LVD's benchmark uses 1), LVD's loss scale
2.5 and top-p/weights; ``--steps`` (default 12) denoising steps so that 10 of them are guided.

Figures per arm: ``seconds`` of the whole video (denoising and VAE decode), ``step_s`` (the time between successive
step callbacks, synchronised: a guided step's time includes its guidance; the first also includes the prompt's
encoding), their medians over the guided steps (the first left out) and the unguided ones, and ``peak_vram_gb`` (``torch.cuda.max_memory_allocated``, reset before each arm). An arm that fails
(out of memory, most likely without checkpointing) records its error and the run goes on; ``--budget`` seconds
bound the whole run (an arm that would not fit is skipped and says so). One untimed 1-step warm-up video first.
The GPU machine lacks diffusers, pydantic and imageio-ffmpeg: bring them as wheels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

PROMPT = "a red ball rolls from the left of a wooden table to the right and falls off its edge"
FULL = dict(height=480, width=832, frames=81, steps=12, guided=10, iterations=5)
TINY = dict(height=64, width=64, frames=9, steps=4, guided=2, iterations=2)
ARMS = (("off", None), ("on_checkpointing", True), ("on_no_checkpointing", False))


def plan():
    """The ball moves from the left to the right of the frame and drops at the end; the table stays."""
    from phyt2v.schemas import Keyframe, Layout, LayoutObject

    kfs = []
    for k in range(6):
        x = 0.05 + 0.12 * k
        y = 0.35 if k < 5 else 0.6
        kfs.append(Keyframe(t=k * 0.5, objects=[LayoutObject(id=0, name="red ball", box=[x, y, x + 0.2, y + 0.2]),
                                                LayoutObject(id=1, name="wooden table", box=[0.0, 0.55, 0.8, 1.0])]))
    return Layout(keyframes=kfs)


def build(tiny: bool, size: dict, device: str, checkpointing: bool, pipe=None):
    """A DiffusersGenerator guiding ``size['guided']`` steps with ``size['iterations']`` iterations each; ``pipe``
    (the full-size pipeline) is shared by the arms, which differ only in their settings."""
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    shape = dict(height=size["height"], width=size["width"], num_frames=size["frames"], steps=size["steps"])
    guide = {"steps": size["guided"], "iterations": size["iterations"]}
    if tiny:
        return DiffusersGenerator("tiny-wan", device=device, layout_guidance=guide,
                                  guidance_checkpointing=checkpointing, **shape)
    return DiffusersGenerator("Wan-AI/Wan2.1-T2V-1.3B-Diffusers (random weights)", pipeline=pipe, device=device,
                              dtype="bfloat16", offload="none", layout_guidance=guide,
                              guidance_checkpointing=checkpointing, **shape)


def run_arm(gen, guided: bool, path: Path, cuda: bool, n_guided: int) -> dict:
    import torch

    marks: list[float] = []

    def on_step(i: int, total: int) -> None:
        if cuda:
            torch.cuda.synchronize()
        marks.append(time.perf_counter())

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    video = gen.generate(PROMPT, seed=0, out_path=path, on_step=on_step, layout=plan() if guided else None)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    steps = [round(b - a, 4) for a, b in zip([t0] + marks, marks)]
    # step k's time runs up to its callback, where the latents entering step k + 1 are guided: steps 0..n-1 carry
    # the guidance; step 0 also carries the prompt's encoding and the call's setup, so the medians leave it out
    guided_s, plain_s = steps[1:n_guided], steps[n_guided:]
    rec = video.knobs.get("layout_guidance") or {}
    return {"seconds": round(seconds, 3), "step_s": steps,
            "median_step_s_guided_part": round(statistics.median(guided_s), 4) if guided_s else None,
            "median_step_s_plain_part": round(statistics.median(plain_s), 4) if plain_s else None,
            "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
            "guided_steps": rec.get("guided_steps", []), "energy": rec.get("energy", []),
            "objects": rec.get("objects"), "blocks": rec.get("blocks"), "checkpointing": rec.get("checkpointing"),
            "frames": video.num_frames, "bytes": video.path.stat().st_size}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny-wan on CPU at 64x64, 9 frames, 4 steps (2 guided x 2)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "gpu" / "lvd.json"), help="JSON file to write")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default 12; tiny 4)")
    p.add_argument("--guided", type=int, default=None, help="steps guided (default 10, LVD's; tiny 2)")
    p.add_argument("--iterations", type=int, default=None, help="gradient iterations per guided step (default 5)")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run (default 450)")
    args = p.parse_args(argv)
    for k in ("steps", "guided", "iterations"):
        v = getattr(args, k)
        if v is not None and v < 1:
            p.error(f"--{k} {v}: need at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    from gpu_check_generators import versions

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("gpu_check_lvd: no CUDA device; run it on a GPU machine, or pass --tiny for the CPU rehearsal",
              file=sys.stderr)
        return 2
    base = TINY if args.tiny else FULL
    size = {k: getattr(args, k, None) or base[k] for k in base}
    if size["guided"] >= size["steps"]:
        print(f"gpu_check_lvd: --guided {size['guided']} needs --steps above it (a step guides the latents entering "
              "the next one)", file=sys.stderr)
        return 2
    device = "cuda" if cuda else "cpu"
    start = time.monotonic()
    t0 = time.perf_counter()
    pipe = None
    if not args.tiny:
        from gpu_check_seeds import build_pipeline

        pipe = build_pipeline(device)
    gens = {name: build(args.tiny, size, device, bool(ck), pipe) for name, ck in ARMS}
    build_s = round(time.perf_counter() - t0, 2)
    first = gens["off"]
    report = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "gpu": torch.cuda.get_device_name(0) if cuda else None, "device": device, "tiny": args.tiny,
              **versions(), "model": "tiny-wan" if args.tiny else "Wan2.1-T2V-1.3B (full size, random weights)",
              "transformer_params": sum(p.numel() for p in first.pipe.transformer.parameters()),
              "settings": {**size, "dtype": str(first.pipe.transformer.dtype).removeprefix("torch."),
                           "guidance": first.cfg.layout_guidance.record(), "prompt": PROMPT,
                           "warmup": "one video, 1 step, unguided"},
              "build_s": build_s,
              "weights_gb": round(torch.cuda.memory_allocated() / 2**30, 3) if cuda else None, "arms": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-lvd-") as tmp:
        folder = Path(tmp)
        first.generate(PROMPT, seed=99, out_path=folder / "warmup.mp4", overrides={"steps": 1})
        last = None
        for name, ck in ARMS:
            left = args.budget - (time.monotonic() - start)
            need = (last or 0.0) * (3 if ck is not None else 1)  # a guided arm takes a few times an unguided one
            if last is not None and need > left:
                report["arms"][name] = {"skipped": f"{left:.0f} s of --budget left, about {need:.0f} s needed"}
                print(f"{name}: skipped ({report['arms'][name]['skipped']})", flush=True)
                continue
            try:
                arm = run_arm(gens[name], ck is not None, folder / f"{name}.mp4", cuda, size["guided"])
            except Exception as e:  # noqa: BLE001 -- out of memory most likely: recorded, the run goes on
                arm = {"error": f"{type(e).__name__}: {str(e)[:500]}"}
            finally:
                gc.collect()
                if cuda:
                    torch.cuda.empty_cache()
            report["arms"][name] = arm
            if "error" in arm:
                print(f"{name}: failed: {arm['error']}", flush=True)
                continue
            last = arm["seconds"] if ck is None else last
            print(f"{name}: {arm['seconds']} s; median step {arm['median_step_s_guided_part']} s (first "
                  f"{size['guided']}), {arm['median_step_s_plain_part']} s (rest); peak VRAM {arm['peak_vram_gb']} GB",
                  flush=True)
    arms = report["arms"]
    off, on = arms.get("off", {}), arms.get("on_checkpointing", {})
    report["guided_vs_off"] = (round(on["seconds"] / off["seconds"], 3)
                               if "seconds" in on and "seconds" in off else None)
    report["total_s"] = round(time.monotonic() - start, 2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"guided (checkpointing) vs off: {report['guided_vs_off']}x the seconds of a video; wrote {out}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
