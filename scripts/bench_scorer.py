#!/usr/bin/env python
"""Throughput and peak VRAM of the native VideoCon-Physics scorer: the full-size architecture
(LLaMA-7B + ViT-L/14 + abstractor) with random weights, bf16 on CUDA, no download needed.

    python scripts/bench_scorer.py [--batch-sizes 1 8] [--videos 16]
    python scripts/bench_scorer.py --tiny --device cpu    # a smoke run of this script on CPU

Writes random 49-frame 480x720 mp4s (CogVideoX's output size), scores each one (SA + PC, frames
decoded in the worker thread), and prints videos/second and peak VRAM for each batch size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def build_checkpoint(folder: Path, tiny: bool, device: str) -> Path:
    import torch

    from phyt2v.scorers.mplug_owl.config import MplugOwlConfig
    from phyt2v.scorers.mplug_owl.loading import save_model
    from phyt2v.scorers.mplug_owl.tiny import build_tiny_checkpoint, train_tokenizer

    if tiny:
        return build_tiny_checkpoint(folder)
    from phyt2v.scorers.mplug_owl.model import MplugOwlForConditionalGeneration

    train_tokenizer(folder)  # a small vocabulary: ids stay below LLaMA's 32000
    with torch.device("meta"):
        model = MplugOwlForConditionalGeneration(MplugOwlConfig())
    model.to_empty(device=device)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    model.to(torch.bfloat16)
    save_model(model, folder, fmt="safetensors", shards=4)  # ~15 GB on disk
    del model
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--videos", type=int, default=16, help="videos per measured run")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny random model (checks the script itself)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the checkpoint and videos go (default: tmp)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from phyt2v.scorers.many import score_videos
    from phyt2v.scorers.videocon import VideoConScorer
    from phyt2v.store.video_io import write_video

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA GPU: run on a GPU machine, or pass --tiny --device cpu for a smoke run", file=sys.stderr)
        return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="phyt2v-bench-"))
    ckpt = build_checkpoint(work / "ckpt", args.tiny, args.device)
    rng = np.random.default_rng(0)
    h, w, n = (64, 96, 12) if args.tiny else (480, 720, 49)
    videos = [write_video([rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)],
                          work / f"v{i}.mp4", fps=8) for i in range(args.videos)]
    scorer = VideoConScorer(str(ckpt), device=args.device, dtype="auto")
    print(f"device={args.device} dtype={scorer.runtime.dtype} model={'tiny' if args.tiny else 'full-size random'}")
    items = [(v, "A ball rolls down a slanted ramp and stops at the bottom.") for v in videos]
    score_videos(scorer, items[:2], batch_size=2)  # warm-up
    for bs in args.batch_sizes:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        res = score_videos(scorer, items, batch_size=bs)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        bad = [r.error for r in res if not r.ok]
        cuda = args.device.startswith("cuda")
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if cuda else "n/a (not CUDA)"
        print(f"batch {bs:2d}: {len(items) / secs:6.2f} videos/s ({secs:.1f} s for {len(items)}), "
              f"peak VRAM {peak}" + (f", {len(bad)} errors: {bad[0]}" if bad else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
