"""The memory plan: each role's resident VRAM estimated from its config before anything loads, and a
placement for the whole stack on one GPU.

Placements: ``resident`` (every role on the GPU at once), ``swap`` (only the role in use on the GPU,
the others parked in CPU RAM), ``offload`` (swap, and the generator itself offloaded to CPU by
diffusers: ``model``, ``group`` or ``sequential``), ``cpu`` (no CUDA device: nothing on a GPU). A role that
does not fit even alone and offloaded raises ConfigError naming the role, the bytes and the knobs.

Estimates are parameter counts (``paramcount``: local folder or hub cache configs built on the meta
device, else the shipped table) times bytes per parameter, plus the working-memory constants below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import registry
from ..config.ensemble import member_config, plan_role, scorer_model, scorer_sections, setting_key
from ..errors import ConfigError, Phyt2vError
from . import endpoints, hub, paramcount

if TYPE_CHECKING:
    from ..config import Config

GiB = 2**30
RESERVE = int(1.0 * GiB)          # CUDA context, cuBLAS workspace and allocator fragmentation, once per card
VLM_WORK = int(1.5 * GiB)         # VLM captioner: vision tokens of 8-16 frames, KV cache, logits
LLM_WORK = int(1.0 * GiB)         # text-only LLM: KV cache of a few thousand tokens, logits
SCORER_WORK = int(1.5 * GiB)      # VideoCon-Physics: 32 frames at 224 px through CLIP-L, LLaMA-7B forward
GEN_FIXED = int(2.0 * GiB)        # generator: tiled VAE decode, text embeddings, scheduler state
GEN_LIVE_TENSORS = 12             # tokens x hidden tensors alive in one transformer block (q, k, v, out, 4x FFN)
SEQUENTIAL_RESIDENT = int(1.0 * GiB)  # sequential offload keeps about one block's weights on the GPU
# Group offload (``generators/knobs.place``: leaf_level with a CUDA stream) keeps the layers running on the GPU plus
# the next ones, prefetched on the stream while the current ones compute: about one block's weights, twice. The
# largest single leaf of the presets' pipelines, UMT5-XXL's 256k x 4096 token embedding (2.0 GiB in bf16), runs
# during text encoding, when the denoiser's working memory (in ``work_bytes``, at least GEN_FIXED) is not live.
GROUP_RESIDENT = 2 * SEQUENTIAL_RESIDENT
# ``offload: auto`` tries these in order, fastest first: model offload moves each component once per video (the
# transformer stays on the GPU for every step); group offload streams every weight in each step but overlaps the
# copy of the next layers with the current one's compute (and pins the pipeline in CPU RAM); sequential offload
# copies each layer just before it runs, the GPU idle during every copy: the slowest, and the smallest share.
AUTO_OFFLOAD = ("none", "model", "group", "sequential")
BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "auto": 2}  # auto plans for the GPU: bf16
QUANT_BYTES = {"int8": 1.1, "fp8": 1.1, "nf4": 0.6}  # per parameter, scales and 16-bit norms/embeddings included

# A render whose shape nothing knows (no local or cached configs, not in the published table): CogVideoX-5B's
# (hidden 3072, 16 pixels and 4 frames per token, 480x720, 49 frames); a size the config sets is used as set.
GEN_UNKNOWN = {"hidden": 3072, "pixels_per_token": 16, "frames_per_token": 4, "height": 480, "width": 720,
               "num_frames": 49}


@dataclass
class RoleEstimate:
    role: str
    model: str
    bytes: int = 0                     # resident weights on the GPU
    work_bytes: int = 0                # working memory while the role runs
    source: str = "none"               # config | cache | table | tiny | remote | cpu | shared | unknown
    components: dict[str, int] = field(default_factory=dict)
    shared_with: str | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = {"model": self.model, "bytes": self.bytes, "work_bytes": self.work_bytes, "source": self.source}
        if self.components:
            d["components"] = self.components
        if self.shared_with:
            d["shared_with"] = self.shared_with
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class Plan:
    roles: dict[str, RoleEstimate]
    placement: str
    peak_bytes: int
    free_bytes: int | None
    generator_offload: str = "none"
    llm: dict[str, str] = field(default_factory=dict)
    quantized_scorer: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"roles": {r: e.as_dict() for r, e in self.roles.items()}, "placement": self.placement,
                "peak_bytes": self.peak_bytes, "free_bytes": self.free_bytes,
                "generator_offload": self.generator_offload, "llm_choice": self.llm,
                "quantized_scorer": self.quantized_scorer}

    def llm_line(self) -> str:
        c = self.llm
        return f"LLM: {c['backend']}" + (f" {c['model']}" if c.get("model") else "") + f" ({c['reason']})"

    def summary(self) -> str:
        gib = lambda b: f"{b / GiB:.1f} GiB"  # noqa: E731
        if self.free_bytes is None:
            served = any(e.source == "remote" for e in self.roles.values())
            return "memory plan: cpu (no CUDA device): every " + ("local " if served else "") + "role runs on the CPU"
        parts = [f"{r} {gib(e.bytes)}" + (f" (shared with {e.shared_with})" if e.shared_with else "")
                 for r, e in self.roles.items()]
        free = "no CUDA" if self.free_bytes is None else f"{gib(self.free_bytes)} free"
        off = f", generator offload={self.generator_offload}" if self.generator_offload != "none" else ""
        return f"memory plan: {self.placement}{off}, peak ~{gib(self.peak_bytes)} of {free}; " + ", ".join(parts)


# ---------------------------------------------------------------- per-role estimates

def _per_param(dtype: str, quant: str = "none") -> float:
    return QUANT_BYTES[quant] if quant != "none" else BYTES.get(dtype, 2)


def _where(model: str) -> str:
    return "config" if Path(model).expanduser().is_dir() else "cache"


def _model_params(model: str, kind: str, counter: Any = None) -> tuple[dict[str, int] | None, str]:
    """(parameters per component, source) for a pipeline ('pipeline') or a transformers model ('transformers'),
    or a model whose backend counts its own ``config.json`` (``counter``: the backend class's ``count_params``);
    (None, 'unknown') when nothing knows it."""
    if model == "tiny":
        return {}, "tiny"
    try:
        if kind == "pipeline":
            parts = paramcount.pipeline_params(model)
        else:
            cfg = hub.read_json(model, "config.json")
            parts = None if cfg is None else {"model": counter(cfg) if counter is not None
                                               else paramcount.transformers_model_params(cfg)}
        if parts:
            return parts, _where(model)
    except (ValueError, TypeError, KeyError, ImportError):
        pass  # an odd config: the table may still know the model
    table = paramcount.published(model)
    return (table, "table") if table else (None, "unknown")


def _backend_class(role: str, backend: str) -> Any:
    try:
        return registry.resolve(role, backend)
    except Phyt2vError:
        return None


def _scorer_estimate(role: str, config: "Config", s: Any) -> RoleEstimate:
    """One scorer: shared with the captioner (vlm-judge on its model), else its model's parameters (the backend
    class's ``count_params`` hook, or the config built on meta, or the table) and its working memory (the class's
    ``work_bytes``, else ``SCORER_WORK``)."""
    c = config.captioner
    one = member_config(config, s)
    if endpoints.judge_served(one):  # vlm-judge asking an endpoint
        return RoleEstimate(role, endpoints.judge_endpoint(one).model or "", 0, 0, "remote", note="not on the GPU")
    if s.backend == "vlm-judge" and s.model in (None, c.model):
        return RoleEstimate(role, c.model, 0, 0, "shared", shared_with="captioner")
    cls = _backend_class("scorer", s.backend)
    model = scorer_model(config, s, getattr(cls, "default_model", None) or "videophysics/videocon_physics")
    parts, src = _model_params(model, "transformers", getattr(cls, "count_params", None))
    work = int(getattr(cls, "work_bytes", SCORER_WORK)) if model != "tiny" else 0
    return RoleEstimate(role, model, int(sum((parts or {}).values()) * _per_param(s.dtype, s.quantization)), work, src)


def _render_shape(config: "Config") -> dict[str, int]:
    """The generator backend's ``render_shape(config)`` (hidden size, pixels and frames per token, height, width,
    frames: its family's facts, read before loading), filled from the config and ``GEN_UNKNOWN`` where unknown."""
    g = config.generator
    try:
        hook = getattr(registry.resolve("generator", g.backend), "render_shape", None)
        shape = hook(config) if hook is not None else None
    except Phyt2vError:
        shape = None
    set_ = {k: getattr(g, k, None) for k in ("height", "width", "num_frames")}
    return {**GEN_UNKNOWN, **(shape or {}), **{k: v for k, v in set_.items() if v}}


def _gen_work(config: "Config", per_param: float) -> int:
    """tokens = latent frames x (H / px) x (W / px); x hidden x live tensors x bytes, x2 for the CFG batch."""
    if config.generator.model == "tiny":
        return int(0.1 * GiB)
    s = _render_shape(config)
    px = s["pixels_per_token"]
    tokens = ((s["num_frames"] - 1) // s["frames_per_token"] + 1) * (s["height"] // px) * (s["width"] // px)
    return GEN_FIXED + int(2 * tokens * s["hidden"] * GEN_LIVE_TENSORS * per_param)


def estimate_roles(config: "Config", llm_choice: tuple[str, str | None, str]) -> dict[str, RoleEstimate]:
    out: dict[str, RoleEstimate] = {}
    g = config.generator
    if registry.is_remote("generator", config):  # a served generator (openai, veo): renders on its server
        out["generator"] = RoleEstimate("generator", g.model, 0, 0, "remote", note="not on the GPU")
    else:
        parts, src = _model_params(g.model, "pipeline")
        per = _per_param(getattr(g, "dtype", None) or "auto")
        comps = {k: int(v * per) for k, v in (parts or {}).items()}
        out["generator"] = RoleEstimate("generator", g.model, sum(comps.values()), _gen_work(config, per), src,
                                        comps)

    c = config.captioner
    if c.backend == "openai":  # a served captioner: on the endpoint's server
        out["captioner"] = RoleEstimate("captioner", c.model, 0, 0, "remote", note="not on the GPU")
    else:
        parts, src = _model_params(c.model, "transformers")
        out["captioner"] = RoleEstimate("captioner", c.model, int(sum((parts or {}).values()) *
                                                                  _per_param(c.dtype, c.quantization)),
                                        VLM_WORK if c.model != "tiny" else 0, src)

    backend, model, _ = llm_choice
    if backend == "vlm" and model in (None, c.model):  # llms/vlm_llm.py shares the captioner's copy
        out["llm"] = RoleEstimate("llm", c.model, 0, 0, "shared", shared_with="captioner")
    elif backend in ("transformers", "vlm") and model:
        parts, src = _model_params(model, "transformers")
        l = config.llm
        out["llm"] = RoleEstimate("llm", model, int(sum((parts or {}).values()) * _per_param(l.dtype, l.quantization)),
                                  LLM_WORK, src)
    else:
        out["llm"] = RoleEstimate("llm", model or backend, 0, 0, "remote" if backend == "openai" else "cpu",
                                  note="not on the GPU")

    for label, s in scorer_sections(config):  # one estimate per scorer: an ensemble's members each placed alone
        role = plan_role(label)
        out[role] = _scorer_estimate(role, config, s)
    for e in out.values():
        if e.source == "unknown":
            e.note = "size unknown: configs not in a local folder or the hub cache, and not in the table"
    return out


# ---------------------------------------------------------------- placement

def _gen_offload_need(gen: RoleEstimate, mode: str) -> int:
    if mode == "model":
        return max(gen.components.values(), default=gen.bytes) + gen.work_bytes
    if mode == "sequential":
        return SEQUENTIAL_RESIDENT + gen.work_bytes
    if mode == "group":
        return GROUP_RESIDENT + gen.work_bytes
    return gen.bytes + gen.work_bytes


def check_sizes_known(roles: dict[str, RoleEstimate]) -> None:
    """Refuse a role whose size nothing knows: planning it at 0 bytes would place it resident or swapped with no
    offload, and it would run out of memory on the card. (Offload is no answer either: its working memory and
    block sizes are as unknown as its weights.) Reading its ``*.json`` configs, a few KB, makes it plannable."""
    for e in roles.values():
        if e.source != "unknown":
            continue
        if Path(e.model).expanduser().is_dir():
            missing = _first_missing(e.model, e.role == "generator")
            raise ConfigError(f"memory plan: the size of the {e.role} model '{e.model}' is unknown: the folder has "
                              f"no {missing} to count its parameters from; pass the complete model folder with "
                              f"--set {setting_key(e.role, 'model')}=PATH")
        raise ConfigError(f"memory plan: the size of the {e.role} model '{e.model}' is unknown (its configs are "
                          "not in a local folder or the Hugging Face cache, and it is not in phyt2v's table), so it "
                          f"cannot be placed on the GPU; download its configs with `hf download {e.model} --include "
                          f'"*.json"`, or pass a local folder with --set {setting_key(e.role, "model")}=PATH')


def _first_missing(folder: str, pipeline: bool) -> str:
    if not pipeline:
        return "config.json"
    index = hub.read_json(folder, "model_index.json")
    if index is None:
        return "model_index.json"
    for comp in paramcount.WEIGHTED:
        spec = index.get(comp)
        if isinstance(spec, list) and len(spec) == 2 and spec[1] and hub.read_json(folder, f"{comp}/config.json") is None:
            return f"{comp}/config.json"
    return "model_index.json entry with weights"


def _knobs(role: str) -> str:
    if role == "generator":
        return ("set generator.offload=sequential (or group: faster, 1 GiB more), lower generator.height/width/num_frames, or choose a smaller "
                "generator.model")
    return (f"set {setting_key(role, 'quantization')}=nf4 (or int8), choose a smaller {setting_key(role, 'model')}, "
            "or free VRAM")


def make_plan(config: "Config", free_bytes: int | None, *, cuda: bool | None = None,
              env: dict[str, str] | None = None) -> Plan:
    """The plan for ``free_bytes`` of VRAM (None: no CUDA device, everything on CPU)."""
    import os

    from .llm_choice import choose_llm

    choice = choose_llm(config, cuda=free_bytes is not None if cuda is None else cuda,
                        env=dict(os.environ) if env is None else env)
    roles = estimate_roles(config, choice)
    llm = {"backend": choice[0], "model": choice[1] or "", "reason": choice[2]}
    quant = any((config.captioner if roles[plan_role(label)].shared_with == "captioner" else s).quantization != "none"
                for label, s in scorer_sections(config))  # what the scorers will run as
    if free_bytes is None:
        return Plan(roles, "cpu", 0, None, "none", llm, quant)
    check_sizes_known(roles)
    gpu = [e for e in roles.values() if e.bytes or e.work_bytes]
    alone = {e.role: e.bytes + e.work_bytes for e in gpu}
    resident = sum(e.bytes for e in gpu) + max((e.work_bytes for e in gpu), default=0) + RESERVE
    gen = roles["generator"]
    fixed = config.generator.offload
    if fixed in ("auto", "none") and resident <= free_bytes:
        return Plan(roles, "resident", resident, free_bytes, "none", llm, quant)
    for role, need in alone.items():
        if role != "generator" and need + RESERVE > free_bytes:
            raise ConfigError(f"memory plan: the {role} ({roles[role].model}) needs ~{need / GiB:.1f} GiB of VRAM "
                              f"but {free_bytes / GiB:.1f} GiB is free even with every other role parked in CPU "
                              f"RAM; {_knobs(role)}.")
    modes = [fixed] if fixed != "auto" else list(AUTO_OFFLOAD)
    for mode in modes:
        need = _gen_offload_need(gen, mode)
        peak = max([need] + [v for r, v in alone.items() if r != "generator"]) + RESERVE
        if peak <= free_bytes:
            placement = "swap" if mode == "none" else "offload"
            return Plan(roles, placement, peak, free_bytes, mode, llm, quant)
    need = _gen_offload_need(gen, modes[-1])
    raise ConfigError(f"memory plan: the generator ({gen.model}) needs ~{(need + RESERVE) / GiB:.1f} GiB of VRAM "
                      f"even with offload={modes[-1]}, but {free_bytes / GiB:.1f} GiB is free; {_knobs('generator')}.")


def free_vram(vram_gb: float | None = None) -> int | None:
    """Bytes of VRAM to plan for: ``vram_gb`` GiB when given (a card of that size), else this
    machine's free memory on the current CUDA device, else None (no CUDA)."""
    if vram_gb is not None:
        if not 0 < vram_gb < float("inf"):  # NaN fails every comparison
            raise ConfigError(f"--vram {vram_gb} must be a positive card size in GiB, e.g. --vram 24")
        return int(vram_gb * GiB)
    import torch

    if not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info()
    return int(free)


# ---------------------------------------------------------------- a run's plan

def free_for_run() -> int | None:
    """Free VRAM on the current CUDA device plus what this process already holds in torch's cache
    (models loaded by an earlier run in the same process are ours to move), or None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info()
    return int(free + torch.cuda.memory_reserved())


def run_plan(config: "Config", free_bytes: int | None = None) -> Plan:
    """The plan at the start of a run; raises ConfigError, before any weights load, when a role cannot fit or a
    quantization setting cannot apply on this machine (``quant.check_before_load``)."""
    from .quant import check_before_load

    plan = make_plan(config, free_for_run() if free_bytes is None else free_bytes)
    check_before_load(config, plan)
    return plan


def build_config(config: "Config", plan: Plan) -> "Config":
    """The config the generator is built with: ``offload=auto`` replaced by the plan's choice."""
    if config.generator.offload != "auto" or plan.placement == "cpu":
        return config
    gen = config.generator.model_copy(update={"offload": plan.generator_offload})
    return config.model_copy(update={"generator": gen})


def swapper_for(plan: Plan, device: str | None = None) -> Any:
    """A :class:`swap.Swapper` for the ``swap`` and ``offload`` placements, else None."""
    if plan.placement not in ("swap", "offload"):
        return None
    from .devices import resolve_device
    from .swap import Swapper

    skip = ("generator",) if plan.generator_offload != "none" else ()
    return Swapper(device or resolve_device("auto", "device"), skip=skip)
