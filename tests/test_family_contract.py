"""One contract over every family in ``FAMILIES``, on its tiny random-weight pipeline: a family added there is held
to it with no new test (and fails here until it has a tiny builder).

For each family: its tiny folder loads through ``from_pretrained`` as the family's pipeline class; its defaults are
the pipeline signature's and, for the published models of the shipped table, renderable under their own frame and
size rule; its frame and size rule (read from the VAE / transformer configs before loading) is what the pipeline
renders: one frame group (t+1 frames) at the smallest sides comes back whole, and t+2 frames are refused before any
weight loads; the token budget known before loading is the loaded pipeline's; progress reports each step where
``__call__`` takes a step callback and an indeterminate state where it does not; audio comes back where the family
makes it; several seeds rendered in one call give each seed's own video."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phyt2v.config import load_config
from phyt2v.errors import ConfigError
from phyt2v.generators.budget import budget_before_load
from phyt2v.generators.diffusers_gen import DiffusersGenerator
from phyt2v.generators.families import FAMILIES, signature_defaults
from phyt2v.generators.model_index import index_before_load
from phyt2v.runtime.paramcount import PUBLISHED_CONFIGS
from phyt2v.store.video_io import probe, read_frames

pytestmark = pytest.mark.slow


def _tiny(family) -> str:
    assert family.tiny, (f"{family.name} has no tiny pipeline: add a builder to phyt2v/tiny (build.py's _BUILDERS) "
                         "and name its kind in the family's `tiny`")
    return f"tiny-{family.tiny}"


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_every_family_meets_the_contract(family, tmp_path, monkeypatch):
    import diffusers

    model = _tiny(family)
    index = index_before_load(model)
    assert index is not None and index.class_name in family.classes  # the tiny folder is the family's pipeline
    t, s = family.rules(index.vae, index.transformer)
    side = s * math.ceil(16 / s)  # the smallest side on the rule, at least 16 px
    budget = budget_before_load(load_config(overrides=[f"generator.model={model}"]).generator)

    # refused before any weight loads: a frame count off the rule
    with monkeypatch.context() as m:
        m.setattr(DiffusersGenerator, "_load", lambda self, path: pytest.fail("weights were loaded"))
        with pytest.raises(ConfigError, match=rf"generator.num_frames {t + 2} must be {t}k\+1"):
            DiffusersGenerator(model, num_frames=t + 2, steps=2, height=side, width=side, device="cpu")

    gen = DiffusersGenerator(model, num_frames=t + 1, steps=2, height=side, width=side, device="cpu")
    assert gen.family is family and type(gen.pipe).__name__ in family.classes and gen.rules == (t, s)

    # defaults: the pipeline's own signature, renderable by each published model of the family
    sig = signature_defaults(type(gen.pipe))
    assert gen.defaults["steps"] == sig["num_inference_steps"] and gen.defaults["guidance"] == sig.get("guidance_scale")
    assert all(isinstance(gen.defaults[k], int) and gen.defaults[k] > 0 for k in ("height", "width", "num_frames", "fps"))
    for entry in (e for e in PUBLISHED_CONFIGS.values() if e["pipeline"] in family.classes):
        pt, ps = family.rules(entry["vae"], entry["transformer"])
        d = family.defaults(signature_defaults(getattr(diffusers, entry["pipeline"])), entry["transformer"])
        assert (d["num_frames"] - 1) % pt == 0 and d["height"] % ps == 0 and d["width"] % ps == 0, (entry, d)

    # the budget before loading is the loaded pipeline's, and a prompt is counted against it
    assert gen.model_limit == budget == gen.describe()["token_budget"] and gen.count_tokens("A ball falls") > 0

    steps: list[tuple[int, int]] = []
    video = gen.generate("A ball falls onto the floor", seed=0, out_path=tmp_path / "v.mp4",
                         on_step=lambda i, n: steps.append((i, n)))
    info = probe(video.path)
    assert (info.num_frames, info.width, info.height) == (t + 1, side, side) == (video.num_frames, video.width,
                                                                                  video.height)
    # steps wherever the pipeline's __call__ takes a step callback (the family must not leave one unused)
    assert steps == ([(1, 2), (2, 2)] if "callback_on_step_end" in sig else [(0, 0)])
    assert (video.audio is not None) is family.audio

    # several seeds in one pipeline call: each video is the one its seed gives alone (up to float rounding)
    many = gen.generate_many("A ball falls onto the floor", seeds=[1, 0], out_paths=[tmp_path / "a.mp4", tmp_path / "b.mp4"])
    first, alone = (np.stack(read_frames(p)[0]).astype(int) for p in (many[1].path, video.path))
    assert np.abs(first - alone).max() <= 2 and not np.array_equal(np.stack(read_frames(many[0].path)[0]), first)
