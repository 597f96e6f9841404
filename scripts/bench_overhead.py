#!/usr/bin/env python
"""Orchestration overhead of the refine loop on the smoke preset (CPU, offline).

Runs several prompts for several rounds in ONE process and prints: total wall time, model-load
time, time inside model calls (from calls.jsonl), what is left (the loop's own overhead: records,
video I/O, parsing), their ratio, and the number of weight loads per role (must be 1 per process).

    python scripts/bench_overhead.py [--rounds 3] [--prompts 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = ["a rubber ball is dropped onto a wooden floor", "a glass of water is knocked off a table",
           "a wooden spoon stirs hot soup in a pot", "a car brush lathers shampoo onto a dirty car"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=2)
    args = ap.parse_args()

    from phyt2v import Event, Refiner, load_config, registry
    from phyt2v.cli.progress import quiet_libraries

    quiet_libraries()

    cfg = load_config("smoke", loop={"max_rounds": args.rounds, "min_rounds": args.rounds})
    loads: dict[str, float] = {}

    def on_event(ev: Event) -> None:
        if ev.kind == "step_end" and ev.step and ev.step.startswith("load "):
            loads[ev.step[5:]] = ev.data["seconds"]

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        refiner = Refiner(cfg, out=out, on_event=on_event)
        per_prompt = []
        for p in PROMPTS[: args.prompts]:
            t1 = time.perf_counter()
            res = refiner.refine(p)
            per_prompt.append(time.perf_counter() - t1)
            print(f"  {p!r}: {len(res.rounds)} rounds, stop={res.stop_reason}, {per_prompt[-1]:.2f} s", flush=True)
        wall = time.perf_counter() - t0
        calls = [json.loads(line) for f in Path(out).glob("*/calls.jsonl") for line in f.read_text().splitlines()]

    in_calls = sum(c["duration_s"] for c in calls)
    load_s = sum(loads.values())
    by_role: dict[str, float] = {}
    for c in calls:
        by_role[c["role"]] = by_role.get(c["role"], 0.0) + c["duration_s"]
    overhead = wall - load_s - in_calls
    print(f"prompts: {args.prompts}, rounds each: {args.rounds}, model calls: {len(calls)}")
    print(f"total wall time:        {wall:8.2f} s")
    print(f"model loading:          {load_s:8.2f} s  ({', '.join(f'{k} {v:.2f}' for k, v in loads.items())})")
    print(f"inside model calls:     {in_calls:8.2f} s  ({', '.join(f'{k} {v:.2f}' for k, v in by_role.items())})")
    print(f"orchestration overhead: {overhead:8.2f} s  = {overhead / max(wall - load_s, 1e-9):.1%} of the "
          f"time after loading (median per prompt {statistics.median(per_prompt):.2f} s)")
    print("weight loads per role in this process: "
          + ", ".join(f"{r} {registry.LOADS.get(r, 0)}" for r in registry.ROLES)
          + " (scorer vlm-judge shares the captioner's VLM)")
    bad = {r: n for r, n in registry.LOADS.items() if n > 1}
    if bad:
        print(f"FAIL: some role loaded weights more than once: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
