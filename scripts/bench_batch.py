"""Throughput of a batch on CPU, offline: sequential vs pipelined (``--concurrency K``), and draft rounds.

The smoke components (tiny random-weight CogVideoX and Qwen2-VL on CPU, one torch thread: "the GPU") and a
real loopback OpenAI-compatible LLM server with a fixed delay on every request (a remote API's latency), called
through the real ``openai`` backend. ``--llm step`` (default): a stdlib server answering each PhyT2V step with
valid JSON derived from the request (tests/llm_servers.StepServer): like a remote API, its compute is not on
this machine. ``--llm smollm2``: llama.cpp serving SmolLM2-135M behind a delay proxy; its compute then shares
this machine's cores with "the GPU" and is one more serial resource (slow on 2 cores). The delay is sized from a
warm-up run so that LLM time per round is about the GPU-role time per round (or set with ``--delay``).

Arms, all on the same loaded models (loading is not timed):
  sequential   ``Batch(concurrency=1)`` over the prompts
  pipelined    ``Batch(concurrency=K)`` over the same prompts (its results must equal the sequential ones)
  drafts       one prompt for ``--draft-rounds`` rounds with ``loop.draft`` on, vs the same rounds without:
               denoising steps spent (rounds + the final full render) over the steps of the full rounds

Prints each figure, then as its last line one JSON object with ``sequential_s``, ``pipelined_s``,
``generator_busy`` (the GPU worker's busy fraction while prompts remain to start) and ``draft_step_fraction``.
Targets (issue 12): pipelined <= 0.6 x sequential, busy >= 0.9, drafts <= 0.6.

    .venv/bin/python scripts/bench_batch.py            # ~2-4 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PROMPTS = ["a rubber ball is dropped onto a wooden floor", "water is poured into a glass until it overflows",
           "a glass falls off a table and shatters", "an ice cube melts on a hot pan",
           "a pendulum swings and slowly comes to rest", "a wooden block slides down a ramp",
           "a paper boat floats down a stream", "a domino knocks over a row of dominoes",
           "sand pours through an hourglass", "a balloon pops when pricked with a pin"]


def comparable(line: dict) -> tuple:
    return (line["id"], line["status"], line["best_round"],
            tuple((r["prompt"], r["sa"], r["pc"], r["caption"]) for r in line["rounds"]))


def results(batch) -> list[tuple]:
    from phyt2v.batch import folder as batchdir

    return [comparable(x) for x in map(json.loads, (batch.dir / batchdir.RESULTS_FILE).read_text().splitlines())]


def steps_of(run_dir: Path) -> int:
    rec = json.loads((run_dir / "run.json").read_text())
    renders = [r.get("video_info") for r in rec["rounds"]] + [c.get("video_info") for r in rec["rounds"]
                                                              for c in r.get("candidates", [])[1:]]
    if rec.get("final"):
        renders.append(rec["final"].get("video_info"))
    return sum(int(v["steps"]) for v in renders if v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--steps", type=int, default=16, help="full denoising steps of the tiny generator")
    ap.add_argument("--size", type=int, default=64, help="height and width of the tiny generator's videos")
    ap.add_argument("--frames", type=int, default=17, help="frames of the tiny generator's videos")
    ap.add_argument("--delay", type=float, default=None, help="seconds added to each LLM request "
                    "(default: sized so LLM time per round ~ GPU-role time per round)")
    ap.add_argument("--draft-rounds", type=int, default=4)
    ap.add_argument("--llm", choices=("step", "smollm2"), default="step")
    ap.add_argument("--out", type=Path, default=None, help="keep the batch folders here (default: a temp dir)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from contextlib import ExitStack

    from llm_servers import DelayProxy, StepServer, smollm_server

    from phyt2v.batch import Batch
    from phyt2v.batch.sources import load_source
    from phyt2v.cli.progress import quiet_libraries
    from phyt2v.config import load_config
    from phyt2v.loop import Refiner

    quiet_libraries()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    out.mkdir(parents=True, exist_ok=True)
    src_file = out / "prompts.txt"
    src_file.write_text("\n".join((PROMPTS * 10)[:args.prompts]) + "\n")

    with ExitStack() as stack:
        if args.llm == "step":
            proxy = stack.enter_context(StepServer(0.0))
        else:
            upstream = stack.enter_context(smollm_server(n_ctx=4096, n_threads=1))
            proxy = stack.enter_context(DelayProxy(upstream, 0.0))
        def config(**loop):
            # cache_prompt off: llama.cpp's prompt cache makes a reply depend on the request before it
            return load_config("smoke", llm={"backend": "openai", "base_url": proxy.base_url, "model": "smollm2",
                                             "temperature": 0.0, "max_tokens": 640, "timeout_s": 600,
                                             "options": {"cache_prompt": False}},
                               generator={"steps": args.steps, "height": args.size, "width": args.size,
                                          "num_frames": args.frames}, loop=loop)

        cfg = config()
        ref = Refiner(cfg, out=out / "warm-up")
        # warm-up: load every model, and measure a prompt's GPU-role and LLM seconds
        warm = ref.refine(PROMPTS[-1], run_id="warmup")
        gpu_s = sum(r.timings.get(f"{s}_s", 0) for r in warm.rounds for s in ("generate", "caption", "score"))
        llm_calls = [c for c in map(json.loads, (warm.run_dir / "calls.jsonl").read_text().splitlines())
                     if c["role"] == "llm"]
        llm_s = sum(c.get("duration_s", 0) for c in llm_calls)
        rounds = len(warm.rounds)
        if args.delay is None:  # LLM per round ~ GPU-role per round
            proxy.delay_s = max(0.0, (gpu_s - llm_s) / max(1, len(llm_calls)))
        else:
            proxy.delay_s = args.delay
        print(f"LLM: {args.llm} server on loopback, through the openai backend", flush=True)
        print(f"warm-up: {rounds} rounds, GPU-role {gpu_s / rounds:.2f} s/round, LLM compute {llm_s:.2f} s in "
              f"{len(llm_calls)} calls; added delay {proxy.delay_s:.2f} s per LLM request", flush=True)

        src = load_source(str(src_file))
        seq = Batch(src, cfg, out=out / "sequential", refiner=ref, concurrency=1)
        t0 = time.perf_counter()
        s1 = seq.run()
        sequential_s = time.perf_counter() - t0
        print(f"sequential: {s1.finished} prompts in {sequential_s:.1f} s", flush=True)

        starts: list[float] = []
        pipe = Batch(src, cfg, out=out / "pipelined", refiner=ref, concurrency=args.concurrency,
                     on_event=lambda kind, d: starts.append(time.perf_counter()) if kind == "prompt_start" else None)
        t0 = time.perf_counter()
        s2 = pipe.run()
        pipelined_s = time.perf_counter() - t0
        gpu = ref.last_lanes.gpu
        busy_all = gpu.busy_fraction()
        busy = gpu.busy_fraction(until=max(starts))
        if busy is None:  # every prompt started before the first GPU step (prompts <= concurrency)
            busy = busy_all
        same = results(seq) == results(pipe)
        print(f"pipelined (K={args.concurrency}): {s2.finished} prompts in {pipelined_s:.1f} s; ratio "
              f"{pipelined_s / sequential_s:.2f} (target <= 0.60); results equal to sequential: {same}", flush=True)
        print(f"GPU worker busy: {busy:.1%} while prompts remained to start (target >= 90%), {busy_all:.1%} "
              "over the whole pipelined run", flush=True)

        # drafts: the same prompt and rounds with and without loop.draft, on the loaded models
        r = args.draft_rounds
        parts = {role: ref.backend(role) for role in ("llm", "generator", "captioner", "scorer")}
        full = Refiner(config(max_rounds=r, min_rounds=r), out=out / "full", **parts).refine(PROMPTS[0])
        draft = Refiner(config(max_rounds=r, min_rounds=r, draft={"enabled": True}), out=out / "draft",
                        **parts).refine(PROMPTS[0])
        full_steps, draft_steps = steps_of(full.run_dir), steps_of(draft.run_dir)
        frac = draft_steps / full_steps
        print(f"drafts: {r} rounds at full settings = {full_steps} denoising steps; {r} draft rounds + the final "
              f"render = {draft_steps} steps; fraction {frac:.2f} (target <= 0.60)", flush=True)

    figures = {"sequential_s": round(sequential_s, 2), "pipelined_s": round(pipelined_s, 2),
               "ratio": round(pipelined_s / sequential_s, 3), "generator_busy": round(busy, 3),
               "generator_busy_whole_run": round(busy_all, 3), "results_equal": same,
               "draft_step_fraction": round(frac, 3), "prompts": args.prompts, "concurrency": args.concurrency,
               "llm_delay_s": round(proxy.delay_s, 3), "llm": args.llm}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
