"""A round whose video was lost, emptied or cut short is generated again on resume (with a warning),
also in a finished run; a prompt refused before any work leaves no run folder. Test doubles + real mp4s."""

import os
import signal

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v import Refiner, load_config
from phyt2v.errors import InputError, Interrupted
from phyt2v.store.video_io import video_problem

PROMPT = "a rubber ball is dropped onto a wooden floor"


def make(tmp_path, scores, gen=None, rounds=2, llm=None):
    warnings = []
    cfg = load_config(loop={"max_rounds": rounds, "min_rounds": rounds}, out=str(tmp_path))
    parts = dict(llm=llm or physics_llm(), generator=gen or FakeGenerator(), captioner=FakeCaptioner(),
                 scorer=FakeScorer(scores))
    ref = Refiner(cfg, on_event=lambda e: warnings.append(e.data["message"]) if e.kind == "warning" else None,
                  **parts)
    return ref, parts, warnings


def interrupted_after_round_1_caption(tmp_path):
    """Round 1 generated and captioned, then Ctrl-C: the run is resumable."""
    ref, parts, _ = make(tmp_path, [(0.2, 0.2)])
    orig = parts["captioner"].caption

    def caption_then_stop(video, objects=None):
        os.kill(os.getpid(), signal.SIGINT)
        return orig(video, objects=objects)

    ref._backends["captioner"].caption = caption_then_stop
    with pytest.raises(Interrupted):
        ref.refine(PROMPT)
    return ref.run_dir(PROMPT)


@pytest.mark.parametrize("damage", ["delete", "empty", "truncate"])
def test_lost_video_of_a_finished_step_is_generated_again_on_resume(tmp_path, damage):
    run_dir = interrupted_after_round_1_caption(tmp_path)
    video = run_dir / "round-1" / "video.mp4"
    assert video_problem(video) is None
    if damage == "delete":
        video.unlink()
    elif damage == "empty":
        video.write_bytes(b"")
    else:
        video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    ref, parts, warnings = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)])
    res = ref.refine(PROMPT)
    assert res.record.status == "finished" and video_problem(video) is None
    assert parts["generator"].calls == [PROMPT, "refined prompt number 1"]  # round 1 regenerated
    assert len(parts["captioner"].calls) == 2  # round 1's caption redone for the new video
    assert any("round 1's video" in w and "generating it again" in w for w in warnings)


def test_finished_run_whose_best_video_is_gone_regenerates_it(tmp_path):
    ref, _, _ = make(tmp_path, [(0.2, 0.2), (0.6, 0.6)])
    res = ref.refine(PROMPT)
    assert res.best.index == 2
    res.best_video.unlink()
    ref2, parts2, warnings = make(tmp_path, [(0.6, 0.6)])
    again = ref2.refine(PROMPT)
    assert again.best_video.is_file() and again.best.index == 2 and again.record.status == "finished"
    assert parts2["generator"].calls == ["refined prompt number 1"]  # only round 2's video
    assert any("finished, but the video of round 2 is missing" in w for w in warnings)
    assert [r.done for r in again.rounds] == [r.done for r in res.rounds]


def test_rounds_built_on_a_redone_round_that_refines_differently_are_run_again(tmp_path):
    ref, _, _ = make(tmp_path, [(0.2, 0.2), (0.3, 0.3), (0.4, 0.4)], rounds=3)
    res = ref.refine(PROMPT)
    (res.run_dir / "round-1" / "video.mp4").unlink()
    ref2, parts2, warnings = make(tmp_path, [(0.2, 0.2), (0.5, 0.5), (0.6, 0.6)], rounds=3,
                                  llm=physics_llm(refined=["another prompt", "and another"]))
    again = ref2.refine(PROMPT)
    assert [r.prompt for r in again.rounds] == [PROMPT, "another prompt", "and another"]
    assert parts2["generator"].calls == [PROMPT, "another prompt", "and another"]
    assert again.best.index == 3 and any("rounds 2..3 are run again" in w for w in warnings)


def test_prompt_refused_for_length_leaves_no_run_folder(tmp_path):
    ref, parts, _ = make(tmp_path, [])
    long = " ".join(["word"] * 60)  # FakeGenerator reads at most 40 tokens
    with pytest.raises(InputError, match="60 tokens"):
        ref.refine(long)
    assert not ref.run_dir(long).exists() and parts["generator"].calls == []


def test_video_problem_names_each_kind_of_damage(tmp_path, sample_videos):
    good = sample_videos[0]
    assert video_problem(good) is None
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[:-100])
    assert video_problem(cut) == "cut short"
    assert video_problem(tmp_path / "none.mp4") == "missing"
    (tmp_path / "zero.mp4").write_bytes(b"")
    assert video_problem(tmp_path / "zero.mp4") == "empty (0 bytes)"
    (tmp_path / "text.mp4").write_bytes(b"\x00\x00\x00\x10notanmp4file")
    assert video_problem(tmp_path / "text.mp4") == "not a complete mp4 (no header)"
