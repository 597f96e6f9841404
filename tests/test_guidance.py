"""LVD's layout guidance on real tiny Wan and CogVideoX pipelines (CPU, random weights): the energy falls across
iterations, the object tokens' attention inside the boxes rises against the unguided run on the same seed, nothing
changes without a layout (bit for bit, before and after a guided call), the record says what ran; families that
cannot guide are refused in one line, before any weight loads where the model's files say the family."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v.errors import ConfigError, InputError  # noqa: E402
from phyt2v.generators import guidance  # noqa: E402
from phyt2v.schemas import Keyframe, Layout, LayoutObject  # noqa: E402
from phyt2v.store.video_io import read_frames, write_video  # noqa: E402

PROMPT = "a red ball rolls across the wooden table"
MODELS = {"wan": "tiny-wan", "cogvideox": "tiny"}
STRONG = {"iterations": 4, "steps": 2, "loss_scale": 500.0}  # random weights: a large step shows the direction
_GENS: dict = {}


def layout(name: str = "red ball") -> Layout:
    """The ball moves from the left to the right of the frame over six keyframes."""
    return Layout(keyframes=[Keyframe(t=k * 0.5, objects=[LayoutObject(id=0, name=name,
                                                                       box=[0.05 + 0.1 * k, 0.2, 0.45 + 0.1 * k, 0.7])])
                             for k in range(6)])


def make(family: str, **guide):
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    return DiffusersGenerator(MODELS[family], height=64, width=64, num_frames=9, steps=4, guidance=5.0,
                              device="cpu", layout_guidance=guide or STRONG)


def gen(family: str):
    if family not in _GENS:
        _GENS[family] = make(family)
    return _GENS[family]


def frames(path) -> np.ndarray:
    return np.stack(read_frames(path)[0]).astype(np.int16)


# ---------------------------------------------------------------- pure pieces

def test_keyframes_map_to_token_frames_through_the_vae_temporal_factor():
    # 81 frames, VAE x4: 21 latent frames; latent 0 is frame 0, latent j covers frames 4j-3..4j (centre 4j-1.5)
    fr = guidance.frame_fractions(81, 4, 21, 1)
    assert fr[0] == 0.0 and fr[1] == pytest.approx(2.5 / 80) and fr[-1] == pytest.approx(78.5 / 80)
    # a temporal patch of 2 (CogVideoX 1.5) joins two latent frames
    assert guidance.frame_fractions(9, 4, 1, 2) == [pytest.approx((0 + 2.5) / 2 / 8)]


def test_boxes_interpolate_between_the_keyframes_that_show_the_object():
    positions = [0.0, 0.5, 1.0]
    shown = [(0, [0.0, 0.0, 0.2, 0.2]), (2, [0.8, 0.0, 1.0, 0.2])]  # not shown at the middle keyframe
    assert guidance.box_at(0.0, positions, shown) == [0.0, 0.0, 0.2, 0.2]
    assert guidance.box_at(0.2, positions, shown) == pytest.approx([0.16, 0.0, 0.36, 0.2])
    assert guidance.box_at(0.5, positions, shown) is None  # the nearest keyframe does not show it: absent
    assert guidance.box_at(0.9, positions, shown) == pytest.approx([0.72, 0.0, 0.92, 0.2])


def test_masks_round_the_corner_then_the_size_as_lvd():
    m = guidance.masks([[0.3, 0.25, 0.8, 0.75], None], 4, 4).reshape(2, 4, 4)
    assert m[0].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert m[1].sum() == 0  # absent: an empty box (only the outside term acts)
    # x from 2.5 to 5.5 of 8 tokens: the corner rounds to 2 (half to even), the width 3.0 to 3: tokens 2, 3, 4
    assert guidance.masks([[0.3125, 0.0, 0.6875, 1.0]], 1, 8).tolist() == [[0, 0, 1, 1, 1, 0, 0, 0]]


def test_object_tokens_are_found_with_the_pipelines_tokenizer():
    tok = gen("wan").pipe.tokenizer
    text = "a red ball rolls across the wooden table"
    ids = tok(text).input_ids
    pos = guidance.phrase_tokens(tok, text, guidance.find_span(text, "red ball"), 512)
    assert [tok.convert_ids_to_tokens(ids[p]) for p in pos] == ["red", "ball"]
    assert guidance.find_span(text, "big wooden table") == (text.index("table"), len(text))  # the last word
    assert guidance.find_span(text, "dog") is None
    assert guidance.phrase_tokens(tok, text, guidance.find_span(text, "table"), 4) == []  # past the encoder's limit


# ---------------------------------------------------------------- guided renders

@pytest.mark.parametrize("family", list(MODELS))
def test_energy_falls_across_iterations_and_the_render_records_it(family, tmp_path):
    v = gen(family).generate(PROMPT, seed=3, out_path=tmp_path / "g.mp4", layout=layout())
    rec = v.knobs["layout_guidance"]
    assert rec["guided_steps"] == [1, 2] and rec["objects"] == {"red ball": 2} and rec["unmatched"] == []
    assert rec["iterations"] == 4 and rec["loss_scale"] == 500.0 and rec["blocks"] == [0, 1]
    for step in rec["energy"]:
        assert len(step) == 4 and all(b < a for a, b in zip(step, step[1:])), step


def denoise_inputs(g, layout_=None, seed: int = 3, path=None):
    """The latents, timestep and conditional text embeddings entering each denoising step (a forward pre-hook on
    the transformer, read only outside gradient mode: the guidance's own passes run with gradients)."""
    import torch

    seen: list = []

    def hook(module, args, kwargs):
        if not torch.is_grad_enabled():
            seen.append((kwargs["hidden_states"].detach().clone(), kwargs["timestep"],
                         kwargs["encoder_hidden_states"].detach().clone()))

    handle = g.pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        g.generate(PROMPT, seed=seed, out_path=path, layout=layout_)
    finally:
        handle.remove()
    if g.family.name == "wan":  # a conditional then an unconditional call per step
        return [(x, t[0], c) for x, t, c in seen[::2]]
    return [(x[1:], t[0], c[1:]) for x, t, c in seen]  # one call of [uncond, cond] per step


@pytest.mark.parametrize("family", list(MODELS))
def test_attention_inside_the_boxes_rises_against_the_unguided_run(family, tmp_path):
    from phyt2v.generators.guide_call import prepare

    g = gen(family)
    plain = denoise_inputs(g, None, path=tmp_path / "p.mp4")
    guided = denoise_inputs(g, layout(), path=tmp_path / "g.mp4")
    probe = prepare(g, layout(), g.family.text(PROMPT, g.settings), g.num_frames, None)
    x0, t, cond = plain[0]
    assert torch_equal(x0, guided[0][0])  # the same seed: the same noise; the first step is not guided
    share = [(probe.share(g.pipe, plain[k][0], plain[k][1], cond), probe.share(g.pipe, guided[k][0], guided[k][1], cond))
             for k in (1, 2)]  # the latents entering steps 1 and 2 (guided)
    for before, after in share:
        assert after > before + 0.01, share


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


@pytest.mark.slow
@pytest.mark.parametrize("family", list(MODELS))
def test_without_a_layout_the_frames_are_the_plain_pipeline_call_bit_for_bit(family, tmp_path):
    import torch

    g = gen(family)
    kw = g.family.call_kwargs(g.pipe, g.settings, g.sig)
    g.pipe.set_progress_bar_config(disable=True)
    out = g.pipe(prompt=PROMPT, generator=torch.Generator(device="cpu").manual_seed(5), output_type="np", **kw)
    today = frames(write_video(list(out.frames[0]), tmp_path / "today.mp4", fps=g.fps))
    before = frames(g.generate(PROMPT, seed=5, out_path=tmp_path / "a.mp4").path)
    guided = frames(g.generate(PROMPT, seed=5, out_path=tmp_path / "g.mp4", layout=layout()).path)
    after = frames(g.generate(PROMPT, seed=5, out_path=tmp_path / "b.mp4").path)
    assert np.array_equal(today, before) and np.array_equal(before, after)  # a guided call leaves nothing behind
    assert not np.array_equal(before, guided)
    g.cfg.layout_guidance.enabled = False  # switched off: a layout given is not followed
    try:
        v = g.generate(PROMPT, seed=5, out_path=tmp_path / "off.mp4", layout=layout())
    finally:
        g.cfg.layout_guidance.enabled = True
    assert np.array_equal(frames(v.path), before) and "layout_guidance" not in v.knobs


@pytest.mark.slow
def test_checkpointing_changes_memory_not_the_result(tmp_path):
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    energies = []
    for ckpt in (True, False):
        g = DiffusersGenerator("tiny-wan", height=64, width=64, num_frames=9, steps=3, guidance=5.0, device="cpu",
                               layout_guidance={"iterations": 2, "steps": 1, "loss_scale": 500.0},
                               guidance_checkpointing=ckpt)
        v = g.generate(PROMPT, seed=2, out_path=tmp_path / f"{ckpt}.mp4", layout=layout())
        energies.append(v.knobs["layout_guidance"]["energy"])
        assert v.knobs["layout_guidance"]["checkpointing"] is ckpt and not g.pipe.transformer.gradient_checkpointing
    assert energies[0] == energies[1]


def test_an_object_missing_from_the_prompt_is_recorded_not_guided(tmp_path):
    v = gen("wan").generate(PROMPT, seed=1, out_path=tmp_path / "m.mp4", layout=layout("purple dog"))
    rec = v.knobs["layout_guidance"]
    assert rec["unmatched"] == ["purple dog"] and rec["objects"] == {} and rec["energy"] == []


# ---------------------------------------------------------------- refusals

def test_a_family_without_readable_text_attention_is_refused_in_one_line(tmp_path):
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    g = DiffusersGenerator("tiny-ltx", height=32, width=32, num_frames=9, steps=2, device="cpu")
    with pytest.raises(ConfigError, match=r"^layout guidance reads the text attention of wan and cogvideox") as e:
        g.generate(PROMPT, seed=1, out_path=tmp_path / "x.mp4", layout=layout())
    assert "\n" not in str(e.value) and not (tmp_path / "x.mp4").exists()


def test_guide_is_refused_before_any_weight_loads(monkeypatch):
    from phyt2v import registry
    from phyt2v.config import load_config
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    monkeypatch.setattr(DiffusersGenerator, "_load", lambda *a: pytest.fail("weights loaded"))
    ltx = ["generator.model=tiny-ltx", "generator.height=32", "generator.width=32"]
    for sets, match in ((ltx, "the ltx family has none"),
                        (["generator.cache={kind: first-block}"], "remove generator.cache"),
                        (["generator.layout_guidance.enabled=false"], "needs generator.layout_guidance.enabled"),
                        (["generator.layout_guidance.blocks=[1,5]"], r"blocks \[1, 5\]: the wan transformer of "
                                                                     r"tiny-wan has blocks 0..1")):
        cfg = load_config("smoke", overrides=["generator.backend=diffusers", "generator.model=tiny-wan",
                                              "loop.layout=guide", *sets])
        with pytest.raises(ConfigError, match=match):
            registry.check_before_load("generator", cfg)
    ok = load_config("smoke", overrides=["generator.backend=diffusers", "generator.model=tiny-wan",
                                         "loop.layout=guide"])
    registry.check_before_load("generator", ok)
    hub = ["loop.layout=guide", "generator.layout_guidance.blocks=[29, 30]"]  # a hub id: the published table
    with pytest.raises(ConfigError, match=r"Wan2.1-T2V-1.3B-Diffusers has blocks 0..29"):
        registry.check_before_load("generator", load_config("local-24gb", overrides=hub))


def test_bad_blocks_and_bad_layouts_are_refused(tmp_path):
    g = make("wan", blocks=[0, 7])
    with pytest.raises(ConfigError, match=r"blocks \[0, 7\]: the wan transformer has blocks 0..1"):
        g.generate(PROMPT, seed=1, out_path=tmp_path / "x.mp4", layout=layout())
    with pytest.raises(InputError, match="layout must be a phyt2v.schemas.Layout"):
        gen("wan").generate(PROMPT, seed=1, out_path=tmp_path / "y.mp4", layout={"keyframes": []})


@pytest.mark.parametrize("blocks, match", [("[]", "an empty list reads no attention"),
                                           ("[-1]", "block numbers start at 0")])
def test_blocks_that_name_no_block_are_a_config_error(blocks, match):
    from phyt2v.config import load_config

    with pytest.raises(ConfigError, match=match):
        load_config("smoke", overrides=[f"generator.layout_guidance.blocks={blocks}"])
