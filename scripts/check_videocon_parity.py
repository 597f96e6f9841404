#!/usr/bin/env python
"""Score the VideoPhy example videos with the native VideoCon-Physics scorer and compare with the
outputs the VideoPhy repository publishes (examples/videocon_physics_{sa,pc}_testing.csv,
reference code: transformers 4.28, bf16, 257-token cut). Needs the weights and, in practice, a GPU.

    python scripts/check_videocon_parity.py [--videos ../shared/videos] [--model videophysics/videocon_physics]

Prints each video's SA/PC, the published value and the difference; exits 1 if any difference
exceeds --tol (default 0.02: the reference rounds its probabilities through bf16).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# video file -> (caption used by the reference, published SA, published PC)
PUBLISHED = {
    "A_wooden_spoon_stirs_the_hot_soup_in_the_pot._1.mp4":
        ("A wooden spoon stirs the hot soup in the pot.", 0.006683349609375, 0.94140625),
    "Shoe_squishes_a_bug._0.mp4": ("Shoe squishes a bug.", 5.424022674560547e-06, 0.5),
    "A_spatula_scoops_up_cake_batter_into_a_baking_pan._0.mp4":
        ("A spatula scoops up cake batter into a baking pan.", 0.0203857421875, 0.22265625),
    "Pushpin_skates_across_a_glossy_desk_surface._1.mp4":
        ("Pushpin skates across a glossy desk surface.", 0.00860595703125, 0.1328125),
    "An_apple_falls_and_bounces_on_the_hard_ground._1.mp4":
        ("An apple falls and bounces on the hard ground.", 0.004608154296875, 0.1064453125),
    "Coffee_accepting_a_gentle_pour_of_milk_1.mp4":
        ("Coffee accepting a gentle pour of milk.", 0.953125, 0.62109375),
    "A_car_brush_lathers_shampoo_onto_a_dirty_vehicle_1.mp4":
        ("A car brush lathers shampoo onto a dirty vehicle.", 1.150369644165039e-05, 0.59375),
}


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=here.parent / "shared" / "videos")
    ap.add_argument("--model", default="videophysics/videocon_physics", help="HF id or local checkpoint folder")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", help="auto = bfloat16 on CUDA (as the reference)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--tol", type=float, default=0.02)
    args = ap.parse_args()

    from phyt2v.scorers.many import score_videos
    from phyt2v.scorers.videocon import VideoConScorer

    items = [(args.videos / name, cap) for name, (cap, _, _) in PUBLISHED.items() if (args.videos / name).is_file()]
    if not items:
        print(f"no VideoPhy example videos in {args.videos}; pass --videos", file=sys.stderr)
        return 2
    # the captions are short, so the 257-token cut changes nothing; keep the reference behaviour anyway
    scorer = VideoConScorer(args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                            reference_truncation=True)
    worst = 0.0
    print(f"{'video':56s} {'SA':>8s} {'ref':>8s} {'diff':>8s} {'PC':>8s} {'ref':>8s} {'diff':>8s}")
    for res in score_videos(scorer, items, batch_size=args.batch_size):
        _, ref_sa, ref_pc = PUBLISHED[res.video.name]
        if not res.ok:
            print(f"{res.video.name:56s} error: {res.error}")
            worst = float("inf")
            continue
        dsa, dpc = res.scores.sa - ref_sa, res.scores.pc - ref_pc
        worst = max(worst, abs(dsa), abs(dpc))
        print(f"{res.video.name[:56]:56s} {res.scores.sa:8.4f} {ref_sa:8.4f} {dsa:+8.4f} "
              f"{res.scores.pc:8.4f} {ref_pc:8.4f} {dpc:+8.4f}")
    print(f"max |difference| = {worst:.4f} (tolerance {args.tol})")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
