"""LVD's stage-1 benchmark for the configured LLM: plan a layout for each selected LVD prompt with phyt2v's layout
step, write the replies as an LVD layout cache (``{prompt: [reply in LVD's text format, ...]}``), then score the
cache with LVD's predicates (as ``phyt2v metrics lvd-layouts CACHE`` does) and print the figures.

The subset: the items at positions 0, k, 2k, ... of each task (``--per-task 10`` gives 10 per task, 50 in all;
``--per-task 100`` the whole benchmark). A prompt the step cannot plan (``ParseError``: unreadable twice, or a
faulty layout after its re-ask) is written as a line LVD's format cannot read, so it counts as a failure. The cache
is written after every prompt; rerunning the same command resumes (prompts already in the cache are not asked
again). As LVD does, no Step-1 rules are given unless ``--with-rules``.

    .venv/bin/python scripts/lvd_stage_one.py --preset smoke --per-task 10 --cache lvd-smollm2.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]


def subset(per_task: int) -> list[tuple[str, dict]]:
    from phyt2v.batch.lvd import TASKS, lvd_items

    items = lvd_items()
    out = []
    for task in TASKS:
        mine = [it for it in items if it[1]["task"] == task]
        step = max(1, len(mine) // per_task)
        out += mine[::step][:per_task]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke", help="phyt2v preset whose LLM plans (default smoke: SmolLM2)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override, e.g. llm.model=...")
    ap.add_argument("--per-task", type=int, default=10, help="prompts per task (default 10: 50 in all)")
    ap.add_argument("--cache", type=Path, default=Path("lvd-layouts.json"), help="the LVD-format cache to write")
    ap.add_argument("--with-rules", action="store_true", help="plan with the Step-1 rules (one more LLM call each)")
    args = ap.parse_args(argv)

    from phyt2v import registry
    from phyt2v.config import load_config
    from phyt2v.errors import ParseError, first_line
    from phyt2v.loop.layouts import lvd_text
    from phyt2v.loop.llm_steps import extract_rules, plan_layout
    from phyt2v.store.files import atomic_write_text
    from phyt2v.store.record import CallLog
    from phyt2v.views.lvd import score_cache

    cfg = load_config(args.preset, overrides=args.sets)
    items = subset(args.per_task)
    cache: dict[str, list[str]] = json.loads(args.cache.read_text()) if args.cache.is_file() else {}
    seen: Counter[str] = Counter()
    todo = []
    for prompt, meta in items:
        seen[prompt] += 1
        if seen[prompt] > len(cache.get(prompt, [])):
            todo.append((prompt, meta))
    print(f"{len(items)} prompts selected, {len(items) - len(todo)} already in {args.cache}; "
          f"LLM: {cfg.llm.backend} {cfg.llm.model or ''}", flush=True)
    llm = registry.build("llm", cfg) if todo else None
    t0, failed = time.perf_counter(), 0
    for n, (prompt, meta) in enumerate(todo, 1):
        log = CallLog(None)
        t = time.perf_counter()
        try:
            rules = extract_rules(llm, prompt, log=log, retries=cfg.loop.parse_retries) if args.with_rules else None
            reply = lvd_text(plan_layout(llm, prompt, rules, log=log, retries=cfg.loop.parse_retries))
        except ParseError as e:
            failed += 1
            reply = f"(phyt2v: no usable layout: {first_line(e)})"
        cache.setdefault(prompt, []).append(reply)
        atomic_write_text(args.cache, json.dumps(cache, indent=1, ensure_ascii=False))
        print(f"[{n}/{len(todo)}] {meta['task']}: {time.perf_counter() - t:.0f} s, {log.count} LLM calls"
              + (" (no usable layout)" if reply.startswith("(phyt2v") else ""), flush=True)
    if todo:
        print(f"planned {len(todo)} prompts in {time.perf_counter() - t0:.0f} s; {failed} without a usable layout")
    if llm is not None and hasattr(llm, "close"):
        llm.close()

    res = score_cache(args.cache)
    print(f"LVD stage 1 on {args.cache} ({res['overall']['total']} prompts scored):")
    for task, s in res["tasks"].items():
        print(f"  {task:16s} {s['success']:3d}/{s['total']:<3d} {100 * s['rate']:5.1f}%")
    o = res["overall"]
    print(f"  {'overall':16s} {o['success']:3d}/{o['total']:<3d} {100 * o['rate']:5.1f}%  "
          f"(unreadable or unplanned: {res['unreadable']})")
    print(json.dumps({k: res[k] for k in ("tasks", "overall", "unreadable")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
