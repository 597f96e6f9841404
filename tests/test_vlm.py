"""The shared VLM, the vlm captioner and the vlm-judge scorer on a tiny Qwen2-VL, CPU, offline."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v import registry
from phyt2v.config import Config  # noqa: E402
from phyt2v.errors import BackendError, InputError  # noqa: E402
from phyt2v.store.video_io import write_video  # noqa: E402
from phyt2v.vlm import runtime as vlm_runtime  # noqa: E402

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
CFG = Config(captioner={"model": "tiny", "num_frames": 4, "max_new_tokens": 12, "frame_size": 64},
             scorer={"backend": "vlm-judge", "num_frames": 4, "frame_size": 64})


@pytest.fixture(scope="module")
def roles():
    """Captioner and judge built by the registry from one config, after a fresh VLM cache."""
    vlm_runtime.clear_cache()
    before = registry.LOADS["captioner"]
    cap = registry.build("captioner", CFG)
    judge = registry.build("scorer", CFG)
    loads = registry.LOADS["captioner"] - before
    return cap, judge, loads


@pytest.fixture(scope="module")
def generated_video(tmp_path_factory):
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    g = CogVideoXGenerator("tiny", height=32, width=48, num_frames=9, steps=2)
    out = tmp_path_factory.mktemp("gen") / "ball.mp4"
    return g.generate("A ball falls onto the floor", seed=0, out_path=out).path


@pytest.fixture
def shared_video():
    vids = sorted(SHARED_VIDEOS.glob("*.mp4")) if SHARED_VIDEOS.is_dir() else []
    if not vids:
        pytest.skip(f"no shared videos in {SHARED_VIDEOS}")
    return vids[0]


def test_captioner_and_judge_share_one_model(roles):
    cap, judge, loads = roles
    assert (cap.backend, judge.backend) == ("vlm", "vlm-judge")
    assert cap.model is judge.model and cap.processor is judge.processor
    assert loads == 1
    again, _ = vlm_runtime.get_vlm("tiny")
    assert again is cap.model
    n = registry.LOADS["captioner"]
    vlm_runtime.get_vlm(str(vlm_runtime.resolve_model("tiny")))  # same folder by path: still the cached copy
    assert registry.LOADS["captioner"] == n


def test_frames_fed_as_images_without_torchvision(roles, shared_video):
    cap, _, _ = roles
    if importlib.util.find_spec("torchvision") is None:
        assert isinstance(cap.processor, vlm_runtime.FramesProcessor)
    frames = vlm_runtime.video_frames(shared_video, 5, 64)
    assert len(frames) == 5 and all(max(f.size) <= 64 and f.mode == "RGB" for f in frames)
    proc = vlm_runtime.FramesProcessor.from_pretrained(vlm_runtime.resolve_model("tiny"))
    inputs = vlm_runtime.build_inputs(cap.model, proc, frames, "Describe the video.")
    grid = inputs["image_grid_thw"]
    merged = int((grid.prod(-1) // 4).sum())
    ids = inputs["input_ids"][0]
    assert int((ids == proc.image_token_id).sum()) == merged == int(inputs["mm_token_type_ids"].sum())
    assert inputs["pixel_values"].shape[0] == int(grid.prod(-1).sum())


def _greedy_text(model, processor, frames, instruction, max_new_tokens):
    """Greedy decoding by hand: argmax of a full forward pass, one token at a time."""
    import torch

    tok = processor.tokenizer
    messages = [{"role": "user", "content": [{"type": "image"}] * len(frames) + [{"type": "text", "text": instruction}]}]
    chat = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    batch = dict(processor(text=[chat], images=frames, return_tensors="pt"))
    prompt_len = batch["input_ids"].shape[1]
    ids = batch["input_ids"]
    with torch.no_grad():
        for _ in range(max_new_tokens):
            extra = ids.shape[1] - prompt_len
            step = dict(batch, input_ids=ids, attention_mask=torch.ones_like(ids),
                        mm_token_type_ids=torch.nn.functional.pad(batch["mm_token_type_ids"], (0, extra)))
            nxt = model(**step).logits[0, -1].argmax().view(1, 1)
            ids = torch.cat([ids, nxt], 1)
            if int(nxt) == tok.eos_token_id:
                break
    return tok.decode(ids[0, prompt_len:], skip_special_tokens=True)


def test_caption_is_the_greedy_answer_to_the_instruction_with_the_objects(roles, shared_video):
    from phyt2v.captioners.vlm import caption_instruction

    cap, _, _ = roles
    seen = []
    hook = cap.model.register_forward_pre_hook(
        lambda mod, args, kw: seen.append(kw["input_ids"][0]) if not seen else None, with_kwargs=True)
    try:
        text = cap.caption(shared_video, objects=["brush", "car"])
    finally:
        hook.remove()
    seen_text = cap.processor.tokenizer.decode(seen[0])
    assert "brush and car" in seen_text  # the objects reach the model
    assert seen_text.count("<|vision_start|>") == 4  # one image per sampled frame (captioner.num_frames)
    frames = vlm_runtime.video_frames(shared_video, 4, 64)
    want = _greedy_text(cap.model, cap.processor, frames, caption_instruction(4, ["brush", "car"]), 12)
    assert text and text == " ".join(want.split())


def test_caption_on_generated_video(roles, generated_video):
    cap, _, _ = roles
    text = cap.caption(generated_video)
    assert isinstance(text, str)
    assert text == cap.caption(generated_video)  # greedy: same caption twice


def test_caption_instruction_template():
    from phyt2v.captioners.vlm import caption_instruction

    text = caption_instruction(8, ["rubber ball", "floor", "table"])
    assert "8 frames" in text and "rubber ball, floor and table" in text and "{{" not in text
    assert "the main objects" in caption_instruction(4, None)


def test_empty_model_output_gives_empty_caption(roles, generated_video, monkeypatch):
    cap, _, _ = roles
    monkeypatch.setattr(cap.model, "generate", lambda input_ids, **kw: input_ids)  # fault: no new tokens
    assert cap.caption(generated_video) == ""


def _independent_p(model, processor, frames, question):
    """P(Yes)/(P(Yes)+P(No)) straight from the model's forward pass on the chat-formatted input."""
    import torch

    tok = processor.tokenizer
    messages = [{"role": "user", "content": [{"type": "image"}] * len(frames) + [{"type": "text", "text": question}]}]
    chat = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert chat.endswith("<|im_start|>assistant\n")
    batch = processor(text=[chat], images=frames, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits[0, -1].double()
    probs = torch.softmax(logits, -1)
    yes, no = tok.convert_tokens_to_ids("Yes"), tok.convert_tokens_to_ids("No")
    return float(probs[yes] / (probs[yes] + probs[no]))


def test_judge_matches_independent_logits(roles, generated_video):
    _, judge, _ = roles
    prompt = "A ball falls onto the floor"
    s = judge.score(generated_video, prompt)
    assert 0.0 <= s.sa <= 1.0 and 0.0 <= s.pc <= 1.0
    assert s.sa == pytest.approx(1 / (1 + math.exp(-s.extra["sa_logit_diff"])))
    assert s.pc == pytest.approx(1 / (1 + math.exp(-s.extra["pc_logit_diff"])))
    frames = vlm_runtime.video_frames(generated_video, 4, 64)
    sa_q = 'Does this video entail the description: "A ball falls onto the floor"?'
    assert s.sa == pytest.approx(_independent_p(judge.model, judge.processor, frames, sa_q), abs=1e-5)
    pc_q = "Does this video follow the physical laws?"
    assert s.pc == pytest.approx(_independent_p(judge.model, judge.processor, frames, pc_q), abs=1e-5)
    other = judge.score(generated_video, "Water pours into a glass cup")
    assert other.sa != s.sa and other.pc == pytest.approx(s.pc)  # SA follows the prompt given; PC does not


def test_judge_errors(roles, generated_video):
    from phyt2v.scorers.vlm_judge import answer_token_id

    _, judge, _ = roles
    tok = judge.processor.tokenizer
    assert answer_token_id(tok, "Yes") == judge.yes_id != judge.no_id
    with pytest.raises(BackendError, match="'Zyzzyva'"):
        answer_token_id(tok, "Zyzzyva")  # not a single known token
    with pytest.raises(InputError, match="empty prompt"):
        judge.score(generated_video, " ")


def test_unknown_options_rejected(roles):
    from phyt2v.errors import ConfigError

    with pytest.raises(ConfigError, match="scorer.options"):
        registry.build("scorer", CFG.model_copy(update={"scorer": CFG.scorer.model_copy(update={"options": {"x": 1}})}))
    with pytest.raises(ConfigError, match="captioner.options"):
        registry.build("captioner", CFG.model_copy(
            update={"captioner": CFG.captioner.model_copy(update={"options": {"x": 1}})}))


def test_bad_model_path_and_video(roles, tmp_path):
    cap, _, _ = roles
    with pytest.raises(BackendError, match="VLM model path not found: ./missing/vlm"):
        vlm_runtime.get_vlm("./missing/vlm")
    from phyt2v.errors import VideoError

    with pytest.raises(VideoError):
        cap.caption(tmp_path / "none.mp4")
    write_video([[[[0, 0, 0]] * 16] * 16], tmp_path / "one.mp4", fps=8)  # one black frame: still works
    assert isinstance(cap.caption(tmp_path / "one.mp4"), str)


def test_truncated_video_is_an_error_for_captioner_judge_and_the_loop(roles, truncated_video, tmp_path):
    from doubles import FakeGenerator, physics_llm

    from phyt2v import Refiner
    from phyt2v.errors import VideoError
    from phyt2v.store.record import RunRecord

    cap, judge, _ = roles
    with pytest.raises(VideoError, match=r"truncated or corrupt: 20 of the 32 frames .*cut\.mp4"):
        cap.caption(truncated_video)
    with pytest.raises(VideoError, match=r"truncated or corrupt: .*cut\.mp4"):
        judge.score(truncated_video, "An apple falls.")

    class CutGenerator(FakeGenerator):  # fault injection: the video on disk is cut off
        def generate(self, prompt, *, seed, out_path, on_step=None):
            Path(out_path).parent.mkdir(parents=True, exist_ok=True)
            Path(out_path).write_bytes(truncated_video.read_bytes())

    cfg = CFG.model_copy(update={"out": str(tmp_path)})
    ref = Refiner(cfg, llm=physics_llm(), generator=CutGenerator(), captioner=cap, scorer=judge)
    with pytest.raises(VideoError, match=r"truncated or corrupt: .*round-1/video\.mp4"):
        ref.refine("an apple falls onto the ground")
    rec = RunRecord.model_validate_json(next(tmp_path.glob("*/run.json")).read_text())
    assert rec.status == "failed" and rec.error.step == "caption" and rec.error.kind == "VideoError"


def test_judge_runs_the_vision_tower_once_per_video(roles, generated_video, shared_video):
    import torch

    from phyt2v.scorers.vlm_judge import PC_QUESTION, SA_QUESTION

    _, judge, _ = roles
    calls = []
    hook = vlm_runtime.vision_tower(judge.model).register_forward_hook(lambda *a: calls.append(1))
    try:
        scores = [judge.score(v, "A ball falls onto the floor") for v in (generated_video, shared_video)]
        assert len(calls) == 2  # one vision pass per video for both questions
        for video, s in zip((generated_video, shared_video), scores):
            frames = vlm_runtime.video_frames(video, 4, 64)
            for key, q in (("sa", SA_QUESTION.format(prompt="A ball falls onto the floor")), ("pc", PC_QUESTION)):
                inputs = vlm_runtime.build_inputs(judge.model, judge.processor, frames, q)  # pixels in, as before
                with torch.inference_mode():
                    logits = judge.model(**inputs).logits[0, -1].float()
                assert s.extra[f"{key}_logit_diff"] == pytest.approx(
                    float(logits[judge.yes_id] - logits[judge.no_id]), abs=1e-5)
        assert len(calls) == 6  # the per-question reference paths encode again: the hook sees the tower
    finally:
        hook.remove()


def test_registry_clear_cache_frees_the_vlm_and_the_judge_keys_on_what_it_shares(roles):
    cap, judge, _ = roles
    n = registry.LOADS["captioner"]
    longer = CFG.model_copy(update={"captioner": CFG.captioner.model_copy(update={"max_new_tokens": 20})})
    assert registry.build("scorer", longer) is judge  # a caption length is not the judge's
    assert registry.build("captioner", longer) is not cap and registry.LOADS["captioner"] == n  # same weights
    other_dtype = CFG.model_copy(update={"captioner": CFG.captioner.model_copy(update={"dtype": "bfloat16"})})
    rebuilt = registry.build("scorer", other_dtype)  # the judge shares the captioner's model, device and dtype
    assert rebuilt is not judge and rebuilt.model is not judge.model and registry.LOADS["captioner"] == n + 1
    registry.clear_cache()
    try:
        again = registry.build("captioner", CFG)
        assert again is not cap and again.model is not cap.model  # weights loaded afresh
        assert registry.LOADS["captioner"] == n + 2
    finally:
        registry.clear_cache()
