"""Wall time of a batch with a served generator on CPU, offline: sequential (``--concurrency 1``) vs pipelined
(``--concurrency K``), the same prompts, the same servers.

The video server is tests/video_servers.VideosServer (the Videos API as vLLM-Omni documents it; each job stays
in progress ``--render-s`` seconds, a remote engine's render time, then the tiny CogVideoX pipeline renders a real
mp4). The LLM is tests/llm_servers.StepServer (valid JSON per step, after ``--llm-delay`` seconds). The tiny
captioner and judge run here on the CPU, the local GPU roles. Each arm is a separate ``Batch`` with its own output
folder, in one process, with the models loaded before the timing starts.

Prints both wall times, the most jobs the server had in progress at once in each arm, and, as the last line, one
JSON object.

    .venv/bin/python scripts/bench_served_batch.py            # ~2 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PROMPTS = ["a rubber ball is dropped onto a wooden floor", "water is poured into a glass until it overflows",
           "a glass falls off a table and shatters", "an ice cube melts on a hot pan",
           "a pendulum swings and slowly comes to rest", "a wooden block slides down a ramp",
           "a paper boat floats down a stream", "a domino knocks over a row of dominoes"]


def run_arm(concurrency: int, prompts: list[str], render_s: float, llm_delay: float, rounds: int) -> dict:
    from llm_servers import StepServer
    from video_servers import VideosServer

    from phyt2v import load_config
    from phyt2v.batch import Batch
    from phyt2v.batch.sources import load_source
    from phyt2v.loop.refiner import Refiner

    with tempfile.TemporaryDirectory() as d, StepServer(llm_delay) as llm, VideosServer(render_s=render_s) as srv:
        src_file = Path(d) / "prompts.txt"
        src_file.write_text("\n".join(prompts) + "\n")
        cfg = load_config("smoke", overrides=[
            "generator.backend=openai", f"generator.base_url={srv.base_url}", "generator.model=tiny-video",
            "generator.poll_s=0.1", f"generator.max_in_flight={max(concurrency, 1)}", "llm.backend=openai",
            f"llm.base_url={llm.base_url}", f"loop.max_rounds={rounds}", f"loop.min_rounds={rounds}"])
        refiner = Refiner(cfg)
        for role in ("captioner", "scorer", "generator"):  # loading is not timed
            refiner.backend(role)
        from video_servers import render_mp4

        render_mp4("warm-up", seed=0)  # the server's pipeline too
        batch = Batch(load_source(str(src_file)), cfg, out=Path(d) / "runs", refiner=refiner,
                      concurrency=concurrency)
        t0 = time.perf_counter()
        summary = batch.run()
        wall = time.perf_counter() - t0
        assert summary.finished == len(prompts), summary
        return {"wall_s": round(wall, 2), "jobs": len(srv.creates()), "peak_jobs": srv.peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--render-s", type=float, default=3.0, help="seconds each job stays in progress on the server")
    ap.add_argument("--llm-delay", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    prompts = PROMPTS[:args.prompts]
    seq = run_arm(1, prompts, args.render_s, args.llm_delay, args.rounds)
    print(f"sequential (--concurrency 1): {seq['wall_s']} s, {seq['jobs']} jobs, at most {seq['peak_jobs']} at once")
    pip = run_arm(args.concurrency, prompts, args.render_s, args.llm_delay, args.rounds)
    print(f"pipelined (--concurrency {args.concurrency}): {pip['wall_s']} s, {pip['jobs']} jobs, at most "
          f"{pip['peak_jobs']} at once")
    print(json.dumps({"prompts": len(prompts), "rounds": args.rounds, "render_s": args.render_s,
                      "llm_delay_s": args.llm_delay, "concurrency": args.concurrency, "sequential_s": seq["wall_s"],
                      "pipelined_s": pip["wall_s"], "speedup": round(seq["wall_s"] / pip["wall_s"], 2),
                      "peak_jobs_sequential": seq["peak_jobs"], "peak_jobs_pipelined": pip["peak_jobs"]}))


if __name__ == "__main__":
    main()
