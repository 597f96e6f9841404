#!/usr/bin/env python
"""GPU check of the generator layer: seconds per denoising step and peak VRAM of full-size transformers.

Wan2.1-T2V-1.3B and CogVideoX-5B transformers are built from their published architecture numbers with
random weights (no download: random weights measure speed and memory, never quality), directly on the
GPU in bf16, and run a few denoising steps of the transformer alone at the presets' resolution with
random text embeddings of the right shape, classifier-free guidance as each pipeline runs it (Wan: a
"cond" and an "uncond" call per step; CogVideoX: one call on a batch of 2). Each model is measured with
the first-block cache off/on (``transformer.enable_cache(FirstBlockCacheConfig)``) and regional compile
off/on (``compile_repeated_blocks``, or each transformer block when the model declares no repeated
blocks). Figures: median seconds per step after warm-up (``torch.cuda.synchronize`` around each step),
every step's time (cache hits show as fast steps; with random weights the hit rate says nothing about
real videos), and ``torch.cuda.max_memory_allocated``. Every measurement is in try/except (the error is
recorded, the run goes on) and a global time budget skips what would not fit.

    python scripts/gpu_check_generators.py                  # GPU: writes benchmarks/gpu/<date>-generators.json
    python scripts/gpu_check_generators.py --tiny --out /tmp  # CPU, tiny configs, seconds: the same code path

Imports only torch, diffusers and transformers (the GPU machine has no pydantic/openai/xllamacpp).
Without CUDA it switches to --tiny by itself. Built on the device rather than on ``meta`` + ``to_empty``:
the latter leaves non-persistent buffers (Wan's RoPE tables) uninitialised; init kernels run on the GPU,
so there is no CPU init either way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

# Published architectures (transformer/config.json of Wan-AI/Wan2.1-T2V-1.3B-Diffusers and THUDM/CogVideoX-5b).
WAN_13B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
               text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6)
COGVIDEOX_5B = dict(num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16, flip_sin_to_cos=True,
                    freq_shift=0, time_embed_dim=512, text_embed_dim=4096, num_layers=42, dropout=0.0,
                    attention_bias=True, sample_width=90, sample_height=60, sample_frames=49, patch_size=2,
                    temporal_compression_ratio=4, max_text_seq_length=226, activation_fn="gelu-approximate",
                    timestep_activation_fn="silu", norm_elementwise_affine=True, norm_eps=1e-5,
                    spatial_interpolation_scale=1.875, temporal_interpolation_scale=1.0,
                    use_rotary_positional_embeddings=True)
WAN_TINY = dict(WAN_13B, num_attention_heads=2, attention_head_dim=16, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2)
COGVIDEOX_TINY = dict(COGVIDEOX_5B, num_attention_heads=2, attention_head_dim=16, time_embed_dim=8, text_embed_dim=16,
                      num_layers=2, sample_width=8, sample_height=8, sample_frames=9, max_text_seq_length=8)

# name -> class, configs, latent (C, F, H, W) at the preset's size, text (tokens, dim), how CFG runs.
MODELS = {
    "wan2.1-1.3b": SimpleNamespace(
        cls="WanTransformer3DModel", full=WAN_13B, tiny=WAN_TINY, size="480x832, 81 frames",
        latents=(16, 21, 60, 104), tiny_latents=(16, 3, 8, 8), text=(512, 4096), tiny_text=(8, 16), cfg="two calls"),
    "cogvideox-5b": SimpleNamespace(
        cls="CogVideoXTransformer3DModel", full=COGVIDEOX_5B, tiny=COGVIDEOX_TINY, size="480x720, 49 frames",
        latents=(16, 13, 60, 90), tiny_latents=(16, 3, 8, 8), text=(226, 4096), tiny_text=(8, 16), cfg="batch of 2"),
}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build(spec, tiny: bool, device: str, dtype: torch.dtype) -> torch.nn.Module:
    import diffusers

    with torch.device(device):
        model = getattr(diffusers, spec.cls)(**(spec.tiny if tiny else spec.full))
    return model.to(dtype).eval().requires_grad_(False)


def make_inputs(spec, model, tiny: bool, device: str, dtype: torch.dtype) -> dict:
    torch.manual_seed(0)
    c, f, h, w = spec.tiny_latents if tiny else spec.latents
    n, d = spec.tiny_text if tiny else spec.text
    if spec.cls.startswith("Wan"):
        return {"x": torch.randn(1, c, f, h, w, device=device, dtype=dtype),
                "cond": torch.randn(1, n, d, device=device, dtype=dtype),
                "uncond": torch.randn(1, n, d, device=device, dtype=dtype)}
    from diffusers import CogVideoXPipeline

    fake_pipe = SimpleNamespace(vae_scale_factor_spatial=8, transformer=model)   # the pipeline's own RoPE helper
    rope = CogVideoXPipeline._prepare_rotary_positional_embeddings(fake_pipe, h * 8, w * 8, f, torch.device(device))
    return {"x": torch.randn(2, f, c, h, w, device=device, dtype=dtype),
            "text": torch.randn(2, n, d, device=device, dtype=dtype), "rope": rope}


def denoise_step(model, spec, inputs: dict, t: float, dt_: float) -> None:
    """One denoising step with CFG as the pipeline runs it, then an Euler update so the latents move."""
    x = inputs["x"]
    with torch.no_grad():
        if spec.cls.startswith("Wan"):
            ts = torch.full((1,), t, device=x.device)
            preds = []
            for name in ("cond", "uncond"):
                with model.cache_context(name):
                    preds.append(model(hidden_states=x, timestep=ts, encoder_hidden_states=inputs[name],
                                       return_dict=False)[0])
            pred = preds[1] + 5.0 * (preds[0] - preds[1])
        else:
            ts = torch.full((x.shape[0],), t, device=x.device)
            with model.cache_context("cond_uncond"):
                out = model(hidden_states=x, encoder_hidden_states=inputs["text"], timestep=ts,
                            image_rotary_emb=inputs["rope"], return_dict=False)[0]
            pred = out[1:] + 6.0 * (out[:1] - out[1:])
            pred = pred.expand_as(x)
        inputs["x"] = (x.float() - dt_ * pred.float() / 1000.0).to(x.dtype)


def compile_blocks(model, backend: str) -> str:
    """Regional compile: the model's declared repeated blocks, else every block of its block list."""
    if getattr(model, "_repeated_blocks", None):
        model.compile_repeated_blocks(backend=backend)
        return "compile_repeated_blocks"
    blocks = getattr(model, "transformer_blocks", None) or getattr(model, "blocks")
    for block in blocks:
        block.compile(backend=backend)
    return f"each of {len(blocks)} blocks (no _repeated_blocks)"


def measure(model, spec, inputs: dict, steps: int, warmup: int, device: str, deadline: float) -> dict:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    n = warmup + steps
    times = []
    for i in range(n):
        if time.monotonic() > deadline and i > 0:   # over budget: stop, keep what was timed
            break
        t = 999.0 * (1 - i / n)
        sync(device)
        t0 = time.perf_counter()
        denoise_step(model, spec, inputs, t, 999.0 / n)
        sync(device)
        times.append(time.perf_counter() - t0)
    timed = times[warmup:]
    if not timed:
        raise RuntimeError(f"time budget spent during warm-up ({len(times)} steps)")
    finite = bool(torch.isfinite(inputs["x"]).all())   # random weights: recorded, timings stay valid either way
    return {"latents_finite": finite, "s_per_step_median": round(statistics.median(timed), 5), "s_per_step": [round(v, 5) for v in timed],
            "first_step_s": round(times[0], 4), "steps_timed": len(timed), "truncated": len(timed) < steps,
            "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if device.startswith("cuda") else None}


def cache_hooks(model) -> int:
    """Blocks carrying a first-block-cache hook (0 when the cache is off)."""
    return sum(1 for m in model.modules()
               if any(n.startswith("fbc") for n in getattr(getattr(m, "_diffusers_hook", None), "hooks", {})))


def build_timed(spec, args, device: str, dtype: torch.dtype, rec: dict):
    t0 = time.perf_counter()
    model = build(spec, args.tiny, device, dtype)
    sync(device)
    rec["build_s"] = round(time.perf_counter() - t0, 3)
    rec["params"] = sum(p.numel() for p in model.parameters())
    if device.startswith("cuda"):
        rec["weights_gb"] = round(torch.cuda.memory_allocated() / 2**30, 3)
    return model


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def run_phase(spec, rec: dict, use_compile: bool, args, device: str, dtype: torch.dtype, deadline: float) -> None:
    """Build the model once, then measure cache off and on (compiled first when ``use_compile``)."""
    from diffusers.hooks import FirstBlockCacheConfig

    runs = [{"compile": use_compile, "cache": cache, "error": None} for cache in (False, True)]
    rec["runs"] += runs
    if time.monotonic() > deadline:
        for run in runs:
            run["error"] = "skipped: time budget spent"
        return
    try:
        model = build_timed(spec, args, device, dtype, rec)
    except Exception as e:
        for run in runs:
            run["error"] = f"build: {type(e).__name__}: {e}"[:800]
        free(device)
        return
    try:
        if use_compile:
            rec["compile_mode"] = compile_blocks(model, args.compile_backend)
    except Exception as e:
        for run in runs:
            run["error"] = f"compile: {type(e).__name__}: {e}"[:800]
        runs = []
    warmup = max(args.warmup, args.compile_warmup) if use_compile else args.warmup
    for run in runs:
        if time.monotonic() > deadline:
            run["error"] = "skipped: time budget spent"
            continue
        try:
            if run["cache"]:
                model.enable_cache(FirstBlockCacheConfig(threshold=args.cache_threshold))
            run["cache_hooks"] = cache_hooks(model)
            inputs = make_inputs(spec, model, args.tiny, device, dtype)
            run.update(measure(model, spec, inputs, args.steps, warmup, device, deadline))
            run["warmup"] = warmup
        except Exception as e:
            run["error"] = f"{type(e).__name__}: {e}"[:800]
        finally:
            if run["cache"]:
                try:
                    model.disable_cache()
                except Exception as e:
                    run["error"] = run["error"] or f"disable_cache: {type(e).__name__}: {e}"[:800]
    del model
    if use_compile:
        torch._dynamo.reset()
    free(device)


def versions() -> dict:
    import diffusers
    import transformers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version()}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny configs on CPU (automatic without CUDA)")
    p.add_argument("--out", default="benchmarks/gpu", help="folder for <date>-generators[-tiny].json")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    p.add_argument("--steps", type=int, default=5, help="timed denoising steps per measurement (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--compile-warmup", type=int, default=4,
                   help="untimed steps of compiled runs (compile, and the cache hooks' recompiles, happen here)")
    p.add_argument("--budget-s", type=float, default=400.0, help="global time budget; later measurements are skipped")
    p.add_argument("--cache-threshold", type=float, default=0.05, help="FirstBlockCacheConfig threshold")
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None,
                   help="default bfloat16 on CUDA, float32 on CPU")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; eager with --tiny)")
    args = p.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        p.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    start = time.monotonic()
    deadline = start + args.budget_s
    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("no CUDA device: running the tiny CPU configs (--tiny)", file=sys.stderr)
    args.tiny = not cuda
    args.compile_backend = args.compile_backend or ("inductor" if cuda else "eager")
    device = "cuda" if cuda else "cpu"
    dtype = getattr(torch, args.dtype or ("bfloat16" if cuda else "float32"))
    report = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "gpu": torch.cuda.get_device_name(0) if cuda else None, "device": device, "tiny": args.tiny,
              **versions(), "dtype": str(dtype).removeprefix("torch."),
              "settings": {"steps": args.steps, "warmup": args.warmup, "budget_s": args.budget_s,
                           "cache": f"FirstBlockCacheConfig(threshold={args.cache_threshold})",
                           "compile_backend": args.compile_backend},
              "models": {}}
    names = args.models.split(",")
    for name in names:
        spec = MODELS[name]
        report["models"][name] = {
            "class": spec.cls, "size": spec.size, "cfg": spec.cfg, "config": spec.tiny if args.tiny else spec.full,
            "latents": list(spec.tiny_latents if args.tiny else spec.latents),
            "text": list(spec.tiny_text if args.tiny else spec.text), "runs": []}
    for use_compile in (False, True):   # every model uncompiled first: the budget cuts compiled runs first
        for name in names:
            run_phase(MODELS[name], report["models"][name], use_compile, args, device, dtype, deadline)
    report["total_s"] = round(time.monotonic() - start, 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{report['date'][:10]}-generators{'-tiny' if args.tiny else ''}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    for name, rec in report["models"].items():
        print(f"{name}: {rec.get('params', 0) / 1e9:.3f} B params, {rec.get('weights_gb')} GB weights")
        for r in rec["runs"]:
            figs = r.get("error") or f"{r['s_per_step_median']} s/step, peak {r['peak_vram_gb']} GB"
            print(f"  compile={'on ' if r['compile'] else 'off'} cache={'on ' if r['cache'] else 'off'}  {figs}")
    print(f"wrote {path} in {report['total_s']} s")
    ok = any(r.get("s_per_step_median") for rec in report["models"].values() for r in rec["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
