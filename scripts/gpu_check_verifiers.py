#!/usr/bin/env python
"""GPU check of the verifiers: VideoScore2 on a full-size random-weight Qwen2.5-VL-7B, then the ensemble of three
scorers (VideoCon-Physics, VideoPhy-2 AutoEval, VideoScore2) on 4 candidate videos; seconds per video and peak VRAM.

    PYTHONPATH=. python scripts/gpu_check_verifiers.py                 # one H100/H200, bf16, ~45 GB of weights
    PYTHONPATH=. python scripts/gpu_check_verifiers.py --tiny --out /tmp/verifiers.json   # CPU rehearsal

No download. Each scorer is built by phyt2v with ``model: tiny`` (its tokenizer, processor and code path), then, on
the GPU, its model is replaced by the full-size architecture built directly on the GPU in bf16 with RANDOM weights
(random weights measure speed and memory, never quality): Qwen2.5-VL-7B-Instruct's published config for VideoScore2
(``param_table.QWEN25VL_7B``: 8.29 B parameters, VideoScore2 is its full fine-tune) and mPLUG-Owl-Video's published
layout (``MplugOwlConfig()``, LLaMA-7B, 7.15 B) for VideoCon-Physics and VideoPhy-2. The candidates are 4 noise
videos of CogVideoX's shape (480x720, 49 frames, 8 fps), so VideoScore2 samples the card's 12 frames at 2 fps at
their full size (within 128..768 x 28 x 28 pixels) and the mPLUG-Owl scorers their 32 frames at 224 px.
Random weights never stop early: every reply runs to ``--new-tokens`` (VideoScore2, default 256; the card allows
1024) and to VideoPhy-2's 256, so the seconds are those of replies of that length, not of the model's real replies.
The tokenizers are the tiny models' (a word-level vocabulary): the prompts are fewer tokens than with the real
ones, a small share of each video's tokens next to its frames. Peak VRAM is ``torch.cuda.max_memory_allocated``,
reset before each part. The GPU machine lacks pydantic and imageio-ffmpeg: bring them as wheels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

PROMPT = "A rubber ball is dropped onto a wooden floor and bounces twice before rolling to a stop"
FULL = dict(height=480, width=720, frames=49, fps=8, new_tokens=256)
TINY = dict(height=32, width=32, frames=9, fps=8, new_tokens=64)
CANDIDATES = 4


def versions() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version()}


def qwen25vl_7b(tokenizer, device: str):
    """Qwen2.5-VL-7B-Instruct at full size (the published config), random weights, bf16, built on ``device``; its
    special token ids are the given tokenizer's."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    import param_table

    pub = param_table.QWEN25VL_7B
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text = dict(pub["text_config"], rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
                rope_theta=1000000.0, max_position_embeddings=128000,
                eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    vision = dict(pub["vision_config"], window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **ids)
    with param_table.made_on(device):
        return Qwen2_5_VLForConditionalGeneration(config).eval()


def mplug_owl_7b(device: str):
    """mPLUG-Owl-Video at full size (VideoCon-Physics' and VideoPhy-2's layout), random weights, bf16."""
    from phyt2v.scorers.mplug_owl.config import MplugOwlConfig
    from phyt2v.scorers.mplug_owl.model import MplugOwlForConditionalGeneration

    import param_table

    config = MplugOwlConfig()
    with param_table.made_on(device):
        return MplugOwlForConditionalGeneration(config).eval(), config


def full_size(scorers: dict, device: str) -> dict:
    """Replace each tiny scorer's model by the full-size random architecture on ``device``; returns parameter counts."""
    try:  # the PIL image processor (transformers 5.25); before, the torchvision one
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    except ImportError:
        from transformers import Qwen2VLImageProcessor as Qwen2VLImageProcessorPil

    from phyt2v.vlm import video as vv

    params = {}
    vs2 = scorers["videoscore2"]
    vs2.model = qwen25vl_7b(vs2.tokenizer, device)
    for part in ("image_processor", "video_processor"):  # the card's pixel range, not the tiny model's 16 patches
        proc = getattr(vs2.processor, part, None)
        if part == "image_processor" and proc is not None:
            vs2.processor.image_processor = Qwen2VLImageProcessorPil(min_pixels=vv.VIDEO_MIN_PIXELS,
                                                                    max_pixels=vv.VIDEO_MAX_PIXELS)
        elif proc is not None:
            proc.min_pixels, proc.max_pixels = vv.VIDEO_MIN_PIXELS, vv.VIDEO_MAX_PIXELS
            proc.size = {"shortest_edge": vv.VIDEO_MIN_PIXELS, "longest_edge": vv.VIDEO_MAX_PIXELS}
    params["videoscore2"] = sum(p.numel() for p in vs2.model.parameters())
    for name in ("videocon", "videophy2"):
        rt = scorers[name].runtime
        rt.model, rt.config = mplug_owl_7b(device)
        rt.image_size = rt.config.vision.image_size
        params[name] = sum(p.numel() for p in rt.model.parameters())
    return params


def make_scorers(tiny: bool, device: str, new_tokens: int) -> dict:
    """The three scorers through phyt2v's own constructors (``model: tiny``: tokenizers, processors, code path)."""
    from phyt2v.scorers.videocon import VideoConScorer
    from phyt2v.scorers.videophy2 import VideoPhy2Scorer
    from phyt2v.scorers.videoscore2 import VideoScore2Scorer

    frames = 4 if tiny else 32  # the mPLUG-Owl scorers: the reference's 32 frames at full size
    return {"videocon": VideoConScorer("tiny", device="cpu", dtype="float32", num_frames=frames),
            "videophy2": VideoPhy2Scorer("tiny", device="cpu", dtype="float32", num_frames=frames),
            "videoscore2": VideoScore2Scorer("tiny", device="cpu", dtype="float32", max_new_tokens=new_tokens,
                                             frame_size=32 if tiny else None)}


def candidates(folder: Path, size: dict) -> list[Path]:
    import numpy as np

    from phyt2v.store.video_io import write_video

    rng = np.random.default_rng(0)
    out = []
    for i in range(CANDIDATES):
        frames = [rng.integers(0, 255, (size["height"], size["width"], 3), dtype=np.uint8)
                  for _ in range(size["frames"])]
        out.append(write_video(frames, folder / f"video-s{i}.mp4", fps=size["fps"]))
    return out


def timed(fn, cuda: bool) -> tuple[object, float, float | None]:
    """(result, seconds, peak VRAM GB) of ``fn()``; the peak counter reset first."""
    import torch

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    return result, time.perf_counter() - t0, (round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None)


def force_length(scorer, tokens: int) -> list[int]:
    """Every VideoScore2 reply exactly ``tokens`` long (random weights would stop anywhere): min_new_tokens. Returns
    the list the new tokens of each reply are counted into."""
    real, lengths = scorer.model.generate, []

    def generate(**kw):
        out = real(**kw, min_new_tokens=tokens)
        lengths.append(int(out.sequences.shape[1] - kw["input_ids"].shape[1]))
        return out

    scorer.model.generate = generate
    return lengths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="the tiny models on CPU (rehearsal)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "gpu" / "verifiers.json"), help="JSON file to write")
    p.add_argument("--new-tokens", type=int, default=None, help="VideoScore2 reply length (default 256; tiny 64)")
    args = p.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("gpu_check_verifiers: no CUDA device; run it on a GPU machine, or pass --tiny for the CPU rehearsal",
              file=sys.stderr)
        return 2
    size = dict(TINY if args.tiny else FULL)
    size["new_tokens"] = args.new_tokens or size["new_tokens"]
    device = "cuda" if cuda else "cpu"
    start = time.monotonic()
    report: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "gpu": torch.cuda.get_device_name(0) if cuda else None, "device": device, "tiny": args.tiny,
                    **versions(), "settings": {**size, "candidates": CANDIDATES, "dtype": "bfloat16" if cuda else
                                               "float32", "prompt": PROMPT}}
    scorers = make_scorers(args.tiny, device, size["new_tokens"])
    report["params"] = full_size(scorers, device) if cuda else {
        "videoscore2": sum(p.numel() for p in scorers["videoscore2"].model.parameters()),
        **{n: sum(p.numel() for p in scorers[n].runtime.model.parameters()) for n in ("videocon", "videophy2")}}
    report["build_s"] = round(time.monotonic() - start, 2)
    report["weights_gb"] = round(torch.cuda.memory_allocated() / 2**30, 3) if cuda else None
    lengths = force_length(scorers["videoscore2"], size["new_tokens"])
    with tempfile.TemporaryDirectory(prefix="gpu-verifiers-") as tmp:
        videos = candidates(Path(tmp), size)
        vs2 = scorers["videoscore2"]
        vs2.score(videos[0], PROMPT)  # warm-up, untimed
        per, peaks = [], []
        for v in videos:
            s, secs, pk = timed(lambda v=v: vs2.score(v, PROMPT), cuda)
            per.append(round(secs, 3))
            peaks.append(pk)
        peak = max(peaks) if cuda else None
        report["videoscore2"] = {
            "s_per_video": per, "s_per_video_median": round(statistics.median(per), 3), "peak_vram_gb": peak,
            "sampled_frames": s.extra["sampled_frames"], "frames_as_images": s.extra.get("frames_as_images"),
            "reply_tokens": sorted(set(lengths)), "parsed": not s.extra["unparseable"]}
        print(f"videoscore2: {report['videoscore2']['s_per_video_median']} s/video (median of {len(per)}), "
              f"{s.extra['sampled_frames']} frames, peak VRAM {peak} GB", flush=True)
        report["ensemble"] = ensemble_part(scorers, videos, cuda)
    report["total_s"] = round(time.monotonic() - start, 2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    print(json.dumps(report))
    return 0


def ensemble_part(scorers: dict, videos: list[Path], cuda: bool) -> dict:
    """The three scorers as one ensemble over the candidates (one pass, each video decoded once per frame size);
    the best candidate by mean and by rank (``loop/ensemble.py``) from their recorded scores."""
    from types import SimpleNamespace

    from phyt2v.loop import ensemble as ens
    from phyt2v.scorers.ensemble import EnsembleScorer
    from phyt2v.store.record import RoundScores

    ensemble = EnsembleScorer(scorers, {name: 1.0 for name in scorers})
    results, seconds, peak = timed(lambda: ensemble.score_many([(v, PROMPT) for v in videos]), cuda)
    loop = SimpleNamespace(sa_weight=0.5, pc_weight=0.5)
    cands, rows = [], []
    for i, r in enumerate(results):
        table = r.scores.extra["scorers"]
        row = {"video": r.video.name, "error": r.error,
               **{name: {"sa": m.get("sa"), "pc": m.get("pc")} for name, m in table.items()}}
        rows.append(row)
        if r.error is None:
            extra = ens.with_member_scores(loop, {"scorers": table})
            score = ens.member_score(loop, r.scores.sa, r.scores.pc)
            cands.append(SimpleNamespace(seed=i, scores=RoundScores(sa=r.scores.sa, pc=r.scores.pc, score=score,
                                                                    extra=extra)))
    picks = {c: (ens.pick(cands, c).seed if cands else None) for c in ("mean", "rank")}
    part = {"members": list(scorers), "seconds": round(seconds, 3), "s_per_video": round(seconds / len(videos), 3),
            "peak_vram_gb": peak, "candidates": rows, "unscored": sum(1 for r in rows if r["error"]),
            "best_by_mean": picks["mean"], "best_by_rank": picks["rank"]}
    print(f"ensemble of {len(scorers)}: {part['s_per_video']} s/video over {len(videos)} candidates, peak VRAM "
          f"{peak} GB; best by mean: {picks['mean']}, by rank: {picks['rank']}", flush=True)
    return part


if __name__ == "__main__":
    sys.exit(main())
