"""Best-of-N seeds and draft overrides on the generator side, on real tiny pipelines (CPU): several seeds in
one pipeline call, per-call overrides of steps/size/cache that leave the pipeline as it was, and the
out-of-memory halving (fault injection: a pipe wrapper that raises when the batch is too large)."""

from __future__ import annotations

import copy
import logging
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v.errors import InputError  # noqa: E402
from phyt2v.store.video_io import probe, read_frames, write_video  # noqa: E402

PROMPT = "A ball falls onto a table"
SIZES = {"tiny": (16, 16), "tiny-wan": (16, 16), "tiny-ltx": (32, 32), "tiny-hunyuan": (16, 16)}
_GENS: dict = {}


def make(model: str, **extra):
    from phyt2v.generators.cogvideox import CogVideoXGenerator
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    h, w = SIZES[model]
    cls = CogVideoXGenerator if model == "tiny" else DiffusersGenerator  # "tiny": the CogVideoX alias
    return cls(model, height=h, width=w, num_frames=9, steps=2, device="cpu", **extra)


def gen(model: str):
    if model not in _GENS:
        _GENS[model] = make(model)
    return _GENS[model]


def first_frame(path) -> np.ndarray:
    return np.asarray(read_frames(path)[0][0]).astype(np.int16)


def all_frames(path) -> np.ndarray:
    return np.stack(read_frames(path)[0]).astype(np.int16)


def steps_log():
    calls: list[tuple[int, int]] = []
    return calls, lambda i, total: calls.append((i, total))


@pytest.mark.parametrize("model", list(SIZES))
@pytest.mark.slow
def test_seeds_in_one_call_give_distinct_reproducible_videos(model, tmp_path):
    g = gen(model)
    assert g.supports_many is True
    seeds = [7, 8, 9]
    calls, on_step = steps_log()
    vids = g.generate_many(PROMPT, seeds=seeds, out_paths=[tmp_path / f"a{s}.mp4" for s in seeds], on_step=on_step)
    assert calls == [(1, 2), (2, 2)]  # one pipeline call: one progress stream over its 2 steps
    assert [v.seed for v in vids] == seeds and [v.path.name for v in vids] == ["a7.mp4", "a8.mp4", "a9.mp4"]
    for v in vids:
        info = probe(v.path)
        assert (info.num_frames, info.width, info.height) == (9, *SIZES[model]) and v.steps == 2
    firsts = [first_frame(v.path) for v in vids]
    for i, j in ((0, 1), (0, 2), (1, 2)):  # each seed its own noise
        assert not np.array_equal(firsts[i], firsts[j]), (model, i, j)
    again = g.generate_many(PROMPT, seeds=seeds, out_paths=[tmp_path / f"b{s}.mp4" for s in seeds])
    assert [v.path.read_bytes() for v in again] == [v.path.read_bytes() for v in vids]
    calls.clear()
    g.generate_many(PROMPT, seeds=seeds, out_paths=[tmp_path / f"c{s}.mp4" for s in seeds], on_step=on_step,
                    batch_size=2)
    assert calls == [(1, 2), (2, 2)] * 2  # chunks of 2 and 1: two calls


def test_no_overrides_is_the_plain_pipeline_call(tmp_path):
    """generate() with nothing overridden writes the very bytes of the pipeline called as before issue 12."""
    import torch

    g = gen("tiny-wan")
    a = g.generate(PROMPT, seed=3, out_path=tmp_path / "a.mp4")
    b = g.generate(PROMPT, seed=3, out_path=tmp_path / "b.mp4", overrides={})
    g.pipe.set_progress_bar_config(disable=False)
    out = g.pipe(prompt=PROMPT, generator=torch.Generator(device="cpu").manual_seed(3), output_type="np",
                 **g.family.call_kwargs(g.pipe, g.settings, g.sig))
    ref = write_video(list(out.frames[0]), tmp_path / "ref.mp4", fps=g.fps)
    assert a.path.read_bytes() == b.path.read_bytes() == ref.read_bytes()
    assert (a.steps, a.width, a.height) == (2, 16, 16) and "cache" not in a.knobs


def test_overrides_change_one_call_only(tmp_path):
    g = gen("tiny-wan")
    plain = g.generate(PROMPT, seed=1, out_path=tmp_path / "plain.mp4")
    calls, on_step = steps_log()
    draft = g.generate(PROMPT, seed=1, out_path=tmp_path / "draft.mp4", on_step=on_step,
                       overrides={"steps": 1, "height": 32, "width": 48})
    assert calls == [(1, 1)] and draft.steps == 1
    info = probe(draft.path)
    assert (info.width, info.height, draft.width, draft.height) == (48, 32, 48, 32)
    assert (g.steps, g.height, g.width, g.settings.steps) == (2, 16, 16, 2)
    after = g.generate(PROMPT, seed=1, out_path=tmp_path / "after.mp4")
    assert after.path.read_bytes() == plain.path.read_bytes()


def test_cache_override_is_on_for_the_call_and_gone_after(tmp_path):
    g = gen("tiny-wan")
    tr = g.pipe.transformer
    plain = g.generate(PROMPT, seed=2, out_path=tmp_path / "plain.mp4", overrides={"steps": 4})
    seen = []
    cached = g.generate(PROMPT, seed=2, out_path=tmp_path / "cached.mp4",
                        on_step=lambda i, n: seen.append(tr.is_cache_enabled),
                        overrides={"steps": 4, "cache": {"kind": "first-block", "params": {"threshold": 1000.0}}})
    assert seen == [True] * 4 and cached.knobs["cache"] == {"kind": "first-block", "threshold": 1000.0}
    assert not np.array_equal(all_frames(plain.path), all_frames(cached.path))  # blocks were skipped
    assert not tr.is_cache_enabled and g.knobs["cache"] is None
    after = g.generate(PROMPT, seed=2, out_path=tmp_path / "after.mp4", overrides={"steps": 4})
    assert after.path.read_bytes() == plain.path.read_bytes()


def test_cache_none_turns_the_configured_cache_off_for_one_call(tmp_path):
    from phyt2v.config import CacheConfig

    g = make("tiny-wan", cache=CacheConfig(kind="first-block", params={"threshold": 1000.0}))
    tr = g.pipe.transformer
    uncached = gen("tiny-wan").generate(PROMPT, seed=4, out_path=tmp_path / "uncached.mp4")  # same weights
    cached = g.generate(PROMPT, seed=4, out_path=tmp_path / "cached.mp4")
    seen = []
    off = g.generate(PROMPT, seed=4, out_path=tmp_path / "off.mp4", overrides={"cache": None},
                     on_step=lambda i, n: seen.append(tr.is_cache_enabled))
    assert seen == [False, False] and "cache" not in off.knobs and cached.knobs["cache"]["kind"] == "first-block"
    assert off.path.read_bytes() == uncached.path.read_bytes()
    assert tr.is_cache_enabled and type(tr._cache_config).__name__ == "FirstBlockCacheConfig"
    again = g.generate(PROMPT, seed=4, out_path=tmp_path / "again.mp4")
    assert again.path.read_bytes() == cached.path.read_bytes()


@pytest.mark.parametrize("overrides, match", [
    ({"stepz": 2}, r"unknown overrides key 'stepz'; known keys: steps, height, width, cache"),
    ({"height": 20}, r"overrides: height 20 must be a multiple of 16 .*e\.g\. 16 or 32"),
    ({"width": 40}, r"overrides: width 40 must be a multiple of 16"),
    ({"steps": 0}, r"overrides\['steps'\] 0 must be an integer >= 1"),
    ({"steps": "4"}, r"overrides\['steps'\] '4' must be an integer"),
    ({"cache": {"kind": "nope"}}, r"overrides\['cache'\].*kind"),
    ({"cache": {"kind": "first-block", "params": {"bogus": 1}}}, r"overrides\['cache'\] 'first-block': unknown params \['bogus'\]; FirstBlockCacheConfig takes threshold"),
    ([("steps", 2)], r"overrides .* must be a dict"),
])
def test_bad_overrides_are_named_and_leave_the_pipeline_alone(overrides, match, tmp_path):
    g = gen("tiny-wan")
    with pytest.raises(InputError, match=match):
        g.generate(PROMPT, seed=0, out_path=tmp_path / "v.mp4", overrides=overrides)
    assert not g.pipe.transformer.is_cache_enabled and not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("kw, match", [
    (dict(seeds=[], out_paths=[]), "non-empty list"),
    (dict(seeds=[1, 1], out_paths=["a.mp4", "b.mp4"]), "repeat a seed"),
    (dict(seeds=[1, "2"], out_paths=["a.mp4", "b.mp4"]), "seed '2' is not an integer"),
    (dict(seeds=[1, 2], out_paths=["a.mp4"]), "2 seeds need 2 out_paths"),
    (dict(seeds=[1, 2], out_paths=["a.mp4", "a.mp4"]), "out_paths repeat a path"),
    (dict(seeds=[1, 2], out_paths=["a.mp4", "b.mp4"], batch_size=-1), "batch_size -1 must be an integer >= 0"),
])
def test_bad_seed_lists_are_named(kw, match, tmp_path):
    kw["out_paths"] = [tmp_path / p for p in kw["out_paths"]]
    with pytest.raises(InputError, match=match):
        gen("tiny-wan").generate_many(PROMPT, **kw)


class OOMPipe:
    """Fault injection: the real pipe, raising CUDA out-of-memory when a call renders more than ``fits``."""

    def __init__(self, pipe, fits: int):
        self._pipe, self.fits, self.sizes = pipe, fits, []

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def __call__(self, **kw):
        import torch

        prompt = kw["prompt"]
        n = kw.get("num_videos_per_prompt", 1) * (len(prompt) if isinstance(prompt, list) else 1)
        self.sizes.append(n)
        if n > self.fits:
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected, {n} videos)")
        return self._pipe(**kw)


@pytest.mark.parametrize("model", ["tiny", "tiny-wan"])  # prompt list (CogVideoX) and num_videos_per_prompt
@pytest.mark.slow
def test_out_of_memory_halves_the_call(model, tmp_path, caplog):
    base = gen(model)
    seeds = [10, 11, 12, 13]
    ref = [base.generate(PROMPT, seed=s, out_path=tmp_path / f"ref{s}.mp4") for s in seeds]
    g = copy.copy(base)
    g.pipe = OOMPipe(base.pipe, fits=1)
    with caplog.at_level(logging.WARNING, logger="phyt2v.generators.chunks"):
        vids = g.generate_many(PROMPT, seeds=seeds, out_paths=[tmp_path / f"v{s}.mp4" for s in seeds])
    assert g.pipe.sizes == [4, 2, 1, 1, 1, 1]  # 4 -> 2+2 -> 1+1, then the second half split at once
    assert "retrying as 2 + 2" in caplog.text and "retrying as 1 + 1" in caplog.text
    assert [v.seed for v in vids] == seeds
    # every seed ended up rendered alone: its video is the single-seed one, in seed order
    assert [v.path.read_bytes() for v in vids] == [r.path.read_bytes() for r in ref]

    g.pipe = OOMPipe(base.pipe, fits=2)
    g.generate_many(PROMPT, seeds=seeds, out_paths=[tmp_path / f"w{s}.mp4" for s in seeds])
    assert g.pipe.sizes == [4, 2, 2]


def test_out_of_memory_at_one_video_re_raises(tmp_path):
    import torch

    g = copy.copy(gen("tiny-wan"))
    g.pipe = OOMPipe(gen("tiny-wan").pipe, fits=0)
    with pytest.raises(torch.OutOfMemoryError):
        g.generate_many(PROMPT, seeds=[1, 2, 3], out_paths=[tmp_path / f"v{s}.mp4" for s in (1, 2, 3)])
    assert g.pipe.sizes == [3, 2, 1]


def test_mag_cache_follows_the_draft_steps(tmp_path):
    """MagCache is set up for a number of steps: a steps override re-applies it for the call's steps."""
    from phyt2v.config import CacheConfig

    g = make("tiny-wan", cache=CacheConfig(kind="mag", params={"mag_ratios": [1.0, 1.0]}))
    tr = g.pipe.transformer
    assert tr._cache_config.num_inference_steps == 2
    seen = []
    g.generate(PROMPT, seed=0, out_path=tmp_path / "d.mp4", overrides={"steps": 3},
               on_step=lambda i, n: seen.append(tr._cache_config.num_inference_steps))
    assert seen == [3, 3, 3] and tr._cache_config.num_inference_steps == 2
