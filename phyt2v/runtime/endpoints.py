"""Which roles run on an OpenAI-compatible endpoint (pure functions of the config), and whether each endpoint
answers: ``GET {base_url}/models`` within a few seconds, the model listed, the key set (``phyt2v doctor``).

A served role: the LLM when ``llm.backend`` is (or ``auto`` resolves to) ``openai``; the captioner with
``captioner.backend: openai``; the ``vlm-judge`` scorer when the captioner is served or ``scorer.base_url`` is set
(it asks the captioner's endpoint, or its own); an ``openai`` generator (the Videos API) with a
``generator.base_url``. Keys are read from the
environment variable each role names and never shown: only whether it is set.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..store import redact
from .deadline import Abandoned, call_with_deadline, one_line

if TYPE_CHECKING:
    from ..config import Config

PROBE_S = 3.0  # every endpoint is probed at once; the whole check takes about this long at most
SDK_DEFAULT = "the openai SDK's default endpoint"


@dataclass(frozen=True)
class Endpoint:
    """One served role: its base URL (None: the openai SDK's default, $OPENAI_BASE_URL or OpenAI), its model
    (None: whatever the server serves) and the name of the environment variable holding its key."""

    role: str
    base_url: str | None
    model: str | None
    key_env: str


def judge_served(config: "Config") -> bool:
    """``vlm-judge`` asks an endpoint (the served captioner's, or ``scorer.base_url``) instead of a local VLM."""
    return config.scorer.backend == "vlm-judge" and (config.captioner.backend == "openai"
                                                     or bool(config.scorer.base_url))


def captioner_endpoint(config: "Config") -> Endpoint:
    c = config.captioner
    return Endpoint("captioner", c.base_url or None, c.model, c.api_key_env)


def judge_endpoint(config: "Config") -> Endpoint:
    """The served judge's endpoint: ``scorer.base_url`` with ``scorer.api_key_env`` when set, else the captioner's;
    its model is ``scorer.model``, else the captioner's."""
    s, c = config.scorer, config.captioner
    if s.base_url:
        return Endpoint("scorer", s.base_url, s.model or c.model, s.api_key_env)
    return Endpoint("scorer", c.base_url or None, s.model or c.model, c.api_key_env)


def configured(config: "Config", env: Mapping[str, str] | None = None) -> list[Endpoint]:
    """Every role of ``config`` that runs on an endpoint, in role order."""
    from .llm_choice import captioner_llm, choose_llm

    env = os.environ if env is None else env
    out = []
    backend, model, _ = choose_llm(config, cuda=False, env=env)  # an endpoint's choice does not depend on CUDA
    if backend == "openai":
        served = captioner_llm(config) if config.llm.backend == "auto" else None
        c = config.llm
        out.append(Endpoint("llm", served["base_url"], served["model"], served["api_key_env"]) if served
                   else Endpoint("llm", c.base_url or None, model, c.api_key_env))
    g = config.generator
    if g.backend == "openai" and getattr(g, "base_url", None):  # a served generator (the Videos API)
        out.append(Endpoint("generator", g.base_url, g.model, g.api_key_env or "OPENAI_API_KEY"))
    if config.captioner.backend == "openai":
        out.append(captioner_endpoint(config))
    if judge_served(config):
        out.append(judge_endpoint(config))
    return out


@dataclass
class Check:
    """What ``probe`` found: ``ok`` when the endpoint answered, listed the model (or any model when none is
    asked for) and took the key; ``line`` says it in one line, the key's value never in it."""

    endpoint: Endpoint
    url: str
    ok: bool
    line: str
    seconds: float = 0.0
    models: list[str] | None = None


def resolved_url(ep: Endpoint, env: Mapping[str, str]) -> str | None:
    """The URL a request of ``ep`` goes to: its base URL, else $OPENAI_BASE_URL, else None (OpenAI itself, which
    doctor does not probe)."""
    url = ep.base_url or env.get("OPENAI_BASE_URL") or None
    return url.rstrip("/") if url else None


def _list_models(url: str, key: str | None, seconds: float) -> list[str]:
    import openai

    client = openai.OpenAI(api_key=key or "not-needed", base_url=url, timeout=seconds, max_retries=0)
    try:
        return [str(m.id) for m in client.models.list().data]
    finally:
        client.close()


def probe(ep: Endpoint, *, seconds: float = PROBE_S, env: Mapping[str, str] | None = None) -> Check:
    """``GET {url}/models`` for one endpoint, bounded by ``seconds`` in all."""
    import openai

    env = os.environ if env is None else env
    redact.watch(ep.key_env)
    key = env.get(ep.key_env) or None
    url = resolved_url(ep, env)
    keyword = f"key ${ep.key_env} " + ("set" if key else "not set")
    if url is None:
        return Check(ep, SDK_DEFAULT, key is not None, f"{SDK_DEFAULT} (OpenAI; no base_url): not probed; {keyword}")
    t0 = time.monotonic()
    try:
        models = call_with_deadline(lambda: _list_models(url, key, seconds), seconds + 0.5, "phyt2v-doctor-probe")
    except (Abandoned, openai.APITimeoutError):
        return _done(ep, url, t0, False, f"DOWN: no answer within {seconds:g}s (is the server up at this address?)")
    except openai.APIConnectionError as e:
        cause = type(e.__cause__).__name__ if e.__cause__ else "no response"
        return _done(ep, url, t0, False, f"DOWN: cannot connect ({cause}): start the server or fix the base_url")
    except openai.APIStatusError as e:
        code = e.status_code
        if code in (401, 403):
            why = f"HTTP {code}: the key was refused: " + (f"check ${ep.key_env}" if key else f"set ${ep.key_env}")
        elif code == 404:
            why = "HTTP 404 on /models: is the base_url the OpenAI-compatible API (usually ending in /v1)?"
        else:
            why = f"HTTP {code}: {one_line(getattr(e, 'message', '') or e, 120)}"
        return _done(ep, url, t0, False, f"reachable but {why}")
    except Exception as e:  # a non-JSON page, a malformed list: say what came back
        return _done(ep, url, t0, False, f"reachable but not an OpenAI-compatible /models ({type(e).__name__}: "
                                         f"{one_line(e, 120)})")
    shown = ", ".join(models[:5]) + (", ..." if len(models) > 5 else "") if models else "none"
    if ep.model and ep.model not in models:
        return _done(ep, url, t0, False, f"reachable; model '{ep.model}' NOT listed (served: {shown}): set "
                                         f"{ep.role}.model to a served one", models)
    what = f"model '{ep.model}' listed" if ep.model else f"models: {shown}"
    return _done(ep, url, t0, bool(models) or bool(ep.model), f"reachable; {what}; {keyword}", models)


def _done(ep: Endpoint, url: str, t0: float, ok: bool, line: str, models: list[str] | None = None) -> Check:
    return Check(ep, url, ok, redact.scrub(line), round(time.monotonic() - t0, 3), models)


def check_all(endpoints: list[Endpoint], *, seconds: float = PROBE_S,
              env: Mapping[str, str] | None = None) -> list[Check]:
    """Probe every endpoint at once (in threads); the results in the given order."""
    if not endpoints:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(endpoints)), thread_name_prefix="phyt2v-doctor") as pool:
        return list(pool.map(lambda ep: probe(ep, seconds=seconds, env=env), endpoints))


def as_dict(check: Check) -> dict[str, Any]:
    ep = check.endpoint
    return {"role": ep.role, "url": check.url, "model": ep.model, "key_env": ep.key_env, "ok": check.ok,
            "line": check.line, "seconds": check.seconds}
