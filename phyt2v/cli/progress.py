"""Rich progress for ``phyt2v refine``: round, step and denoising steps; the final rounds table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..batch.folder import round_of
from ..store.record import RunRecord
from ..store.redact import scrub


def quiet_libraries() -> None:
    """Hide transformers' and diffusers' own tqdm bars and advisory logs (ours replace them).
    Imports them, so call it only just before a model loads."""
    for mod in ("transformers", "diffusers"):
        try:
            lib = __import__(f"{mod}.utils.logging", fromlist=["logging"])
            lib.disable_progress_bar()
            lib.set_verbosity_error()
        except Exception:  # a library that is not installed has no bars to hide
            pass


def excerpt(text: str, n: int = 60) -> str:
    """The start of a text, scrubbed of the API key first (a cut must not leave part of a key)."""
    text = scrub(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def rounds_table(rec: RunRecord) -> Table:
    t = Table(title=f"{rec.run_id} ({rec.status})", title_justify="left")
    for col in ("round", "prompt", "SA", "PC", "score", "seconds"):
        t.add_column(col, justify="right" if col != "prompt" else "left")
    for r in rec.rounds:
        s = r.scores
        mark = " *" if rec.best_round == r.index else ""
        t.add_row(f"{r.index}{mark}", excerpt(r.prompt),
                  f"{s.sa:.3f}" if s else "-", f"{s.pc:.3f}" if s else "-", f"{s.score:.3f}" if s else "-",
                  f"{sum(r.timings.values()):.1f}")
    return t


class RefineProgress:
    """Turns loop events into a live progress display on stderr."""

    def __init__(self, console: Console, config: Any, *, quiet_rounds: bool = False):
        self.console = console
        self.quiet_rounds = quiet_rounds  # no per-round score line (a batch prints one line per prompt)
        self.max_rounds = config.loop.max_rounds
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)
        self.step_task = self.progress.add_task("starting", total=None)
        self.denoise_task = None
        self._started = False

    def __enter__(self) -> "RefineProgress":
        self.progress.start()
        self._started = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self._started:
            self.progress.stop()
            self._started = False

    def on_event(self, ev: Any) -> None:
        if not getattr(self, "_quieted", False) and ev.kind == "step_start" and (ev.step or "").startswith("load"):
            quiet_libraries()
            self._quieted = True
        where = f"round {ev.round}/{self.max_rounds} " if ev.round else ""
        if ev.kind == "step_start":
            self.progress.update(self.step_task, description=f"{where}{ev.step}")
        elif ev.kind == "denoise":
            total = ev.data.get("total") or None  # 0: a pipeline with no step callback (indeterminate)
            label = "denoising" if total else "generating"
            if self.denoise_task is None:
                self.denoise_task = self.progress.add_task(label, total=total)
            self.progress.update(self.denoise_task, completed=ev.data.get("i", 0), total=total,
                                 description=f"{where}{label}")
        elif ev.kind == "step_end":
            if ev.step in ("generate", "final generate") and self.denoise_task is not None:
                self.progress.remove_task(self.denoise_task)
                self.denoise_task = None
            if ev.step in ("score", "final score") and not self.quiet_rounds:
                d = ev.data
                head = f"round {ev.round}" if ev.round else "final render (full settings)"
                seeds = (f"  (best of {len(d['candidates'])} seeds: seed {d['seed']})"
                         if len(d.get("candidates") or []) > 1 else "")
                self.progress.console.print(f"{head}: SA {d['sa']:.3f}  PC {d['pc']:.3f}  "
                                            f"score {d['score']:.3f}{seeds}")
        # "warning" events are not printed here: the loop also logs each one, and the CLI prints the log.
        elif ev.kind == "run_start":
            d = ev.data
            if d.get("resumed"):
                self.progress.console.print(f"resuming {d['run_dir']} ({d['rounds_done']} round(s) on disk)",
                                            soft_wrap=True, highlight=False)
            else:
                self.progress.console.print(f"run folder: {d['run_dir']}", soft_wrap=True, highlight=False)
            for line in (d.get("memory_plan"), d.get("llm_line")):  # memplan: placement and the LLM chosen
                if line:
                    self.progress.console.print(line, soft_wrap=True, highlight=False)


class BatchProgress:
    """``phyt2v batch``: a prompts bar (done / total, ETA) above the current prompt's step line, and one
    printed line per finished prompt (so logs of long batches stay readable)."""

    def __init__(self, console: Console, config: Any, label: str = ""):
        from rich.console import Group
        from rich.live import Live
        from rich.progress import TimeRemainingColumn

        self.console = console
        self.label = label
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
        self.task = self.bar.add_task(f"{label}prompts", total=None)
        self.refine = RefineProgress(console, config, quiet_rounds=True)
        self.live = Live(Group(self.bar, self.refine.progress), console=console, transient=True,
                         refresh_per_second=4)
        self.done = 0
        self.total = 0
        self.inflight: dict[str, Any] = {}  # run folder name -> its line (several prompts in flight)
        self.ids: dict[str, str] = {}
        self.many = False

    def __enter__(self) -> "BatchProgress":
        self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.live.stop()

    def on_refine_event(self, ev: Any) -> None:
        if self.many and ev.kind == "step_start" and ev.run in self.inflight:  # each prompt's state
            where = f"round {ev.round} " if ev.round else ""
            self.bar.update(self.inflight[ev.run], description=f"  {self.ids.get(ev.run, ev.run)}: {where}{ev.step}")
        if ev.kind != "run_start":  # the per-prompt line below says where each run is
            self.refine.on_event(ev)

    def on_batch_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "batch_start":
            self.done, self.total = data["done"], data["total"]
            self.bar.update(self.task, total=self.total, completed=self.done)
            shard = data["shard"]
            where = f" (shard {shard})" if shard.count > 1 else ""
            self.console.print(f"batch folder: {data['dir']}{where}", soft_wrap=True, highlight=False)
            self.console.print(f"{self.total} prompt(s): {self.done} already done, {data['todo']} to run",
                               highlight=False)
            k = data.get("concurrency", 1)
            self.many = k > 1 and data["todo"] > 1
            if self.many:
                self.console.print(f"{k} prompts in flight (GPU steps one at a time)", highlight=False)
        elif kind == "prompt_start":
            it = data["item"]
            if self.many:
                name = data["run_dir"].name
                self.ids[name] = it.id
                self.inflight[name] = self.bar.add_task(f"  {it.id}: starting", total=None)
            else:
                self.bar.update(self.task, description=f"{self.label}prompt {it.id}")
        elif kind == "prompt_end":
            task = self.inflight.pop(data["line"]["run_id"], None)
            if task is not None:
                self.bar.remove_task(task)
            self.done += 1
            self.bar.update(self.task, completed=self.done)
            line = data["line"]
            head = f"[{self.done}/{self.total}] {line['id']}"
            if line["status"] == "finished":
                first, best = round_of(line, "first"), round_of(line, "best")
                if line.get("stop_reason") == "not_physical":
                    msg = f"{head} skipped: physics score {line['physics']['score']:.2f} is under --min-physics"
                elif best and first:
                    what = (f"final render of round {best['index']}" if best.get("final")
                            else f"best round {best['index']}")
                    r1 = "draft round 1" if first.get("draft") else "round 1"
                    msg = (f"{head} ok: {r1} SA {first['sa']:.3f} PC {first['pc']:.3f} -> {what} "
                           f"SA {best['sa']:.3f} PC {best['pc']:.3f} "
                           f"({line['timings']['wall_s']:.0f} s)")
                else:
                    msg = f"{head} ok (no scored round)"
                self.console.print(msg, highlight=False)
            else:
                err = line.get("error") or {}
                self.console.print(f"[red]{head} failed[/red] at {err.get('step') or '?'}: "
                                   f"{excerpt(err.get('message', ''), 200)}", highlight=False)
        elif kind == "warning":
            self.console.print(f"[yellow]warning:[/yellow] {data.get('message', '')}", highlight=False)
