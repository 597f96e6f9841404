"""The served captioner (``captioner.backend: openai``) and ``vlm-judge`` over an endpoint, driven through the real
openai SDK against a loopback vision chat server that checks each request's shape (``vlm_servers.VisionServer``)."""

import math
import time

import numpy as np
import pytest
from llm_servers import FaultyServer, fail, ok, trickle
from vlm_servers import JUDGE, VisionServer, expected

from phyt2v import registry
from phyt2v.captioners.openai_vlm import OpenAIVLMCaptioner
from phyt2v.captioners.vlm import caption_instruction
from phyt2v.config import load_config
from phyt2v.errors import BackendError, ConfigError, LoadError
from phyt2v.scorers.judge_questions import PC_QUESTION, SA_QUESTION
from phyt2v.scorers.served_judge import ServedJudgeScorer, yes_no_mass
from phyt2v.store.video_io import write_video
from phyt2v.vlm.video import sampled_fps

KEY_ENV = "PHYT2V_TEST_VLM_KEY"
KEY = "sk-test-VLM-KEY-never-on-disk-41c2"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A real 12-frame 40x24 mp4 at 8 fps: a bright square moving right."""
    frames = []
    for i in range(12):
        a = np.zeros((24, 40, 3), np.uint8)
        a[8:16, 2 + 3 * i:10 + 3 * i] = 255
        frames.append(a)
    return write_video(frames, tmp_path_factory.mktemp("clip") / "clip.mp4", 8)


def captioner(srv, **kw):
    args = dict(base_url=srv.base_url, api_key_env=KEY_ENV, num_frames=4, frame_size=32, max_new_tokens=40,
                backoff_s=0.01, timeout_s=5.0)
    return OpenAIVLMCaptioner("vision-test", **{**args, **kw})


def judge(srv, **kw):
    args = dict(base_url=srv.base_url, api_key_env=KEY_ENV, num_frames=4, frame_size=32, backoff_s=0.01,
                timeout_s=5.0)
    return ServedJudgeScorer("vision-test", **{**args, **kw})


def test_a_caption_sends_the_sampled_frames_as_jpegs_with_the_local_captioners_prompt(clip, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with VisionServer(frames=4, max_side=32) as srv:
        text = captioner(srv).caption(clip, objects=["square", "floor"])
    assert text == "A ball falls and bounces on the floor, seen in 4 frames."
    assert srv.rejected == [] and len(srv.requests) == 1
    req = srv.requests[0]
    assert req["media"]["images"] == [(32, 19)] * 4  # 40x24 scaled to a longest side of 32, as the local captioner
    assert req["text"] == caption_instruction(4, ["square", "floor"])
    assert req["body"] == {"model": "vision-test", "max_tokens": 40, "temperature": 0.0}
    assert req["headers"]["authorization"] == f"Bearer {KEY}"


def test_the_video_option_sends_one_mp4_of_the_sampled_frames_at_their_rate(clip):
    with VisionServer(frames=4, video=True) as srv:
        captioner(srv, video=True).caption(clip)
    assert srv.rejected == []
    (frames, w, h, fps), = srv.requests[0]["media"]["videos"]
    assert (frames, w, h) == (4, 32, 20)  # 32x19 padded to even for yuv420p
    assert fps == pytest.approx(sampled_fps(clip, 4), abs=0.01)  # 4 frames over 1.5 s


def test_a_server_that_checks_the_count_refuses_the_wrong_one(clip):
    """The server really checks: 4 frames sent where it expects 5 is a 400, reported in one line."""
    with VisionServer(frames=5) as srv:
        with pytest.raises(BackendError) as e:
            captioner(srv).caption(clip)
    assert "HTTP 400: expected 5 frames, got 4" in str(e.value) and "\n" not in str(e.value)


def test_the_judge_asks_each_question_once_and_reads_p_yes_from_top_logprobs(clip):
    with VisionServer(frames=4, max_side=32) as srv:
        s = judge(srv).score(clip, "  a square slides to the right ")
    assert srv.rejected == [] and len(srv.requests) == 2
    assert [r["text"] for r in srv.requests] == [SA_QUESTION.format(prompt="a square slides to the right"),
                                                 PC_QUESTION]
    for r in srv.requests:
        assert r["body"] == {"model": "vision-test", "max_tokens": 1, "temperature": 0.0, "logprobs": True,
                             "top_logprobs": 20}
        assert r["media"]["images"] == [(32, 19)] * 4
    assert s.sa == pytest.approx(expected(JUDGE["sa"]), abs=1e-12)
    assert s.pc == pytest.approx(expected(JUDGE["pc"]), abs=1e-12)
    assert s.extra["sa_logit_diff"] == pytest.approx(math.log(s.extra["sa_p_yes"] / s.extra["sa_p_no"]))


def test_yes_and_no_sum_their_variants_and_nothing_else():
    top = [{"token": "Yes", "logprob": math.log(0.4)}, {"token": " yes", "logprob": math.log(0.1)},
           {"token": "\u0120YES", "logprob": math.log(0.05)}, {"token": "\u2581No", "logprob": math.log(0.2)},
           {"token": "no ", "logprob": math.log(0.05)}, {"token": "Yesterday", "logprob": math.log(0.1)},
           {"token": "Not", "logprob": math.log(0.1)}]
    yes, no = yes_no_mass(top)
    assert yes == pytest.approx(0.55) and no == pytest.approx(0.25)


def test_an_endpoint_without_logprobs_fails_in_one_line_naming_the_fix(clip):
    with VisionServer(logprobs=False) as srv:
        with pytest.raises(LoadError) as e:  # a LoadError: every prompt would fail the same way, a batch stops
            judge(srv).score(clip, "a square slides")
    msg = str(e.value)
    assert "no logprobs" in msg and "vLLM" in msg and "scorer.backend=videocon" in msg and "\n" not in msg
    assert len(srv.requests) == 1  # no retry of a reply that will never change


def test_top_logprobs_holding_neither_word_is_an_error_not_a_guess(clip):
    with VisionServer(judge={"sa": [("Maybe", -0.1), ("The", -2.0)], "pc": JUDGE["pc"]}) as srv:
        with pytest.raises(BackendError, match=r"neither Yes nor No is among the answer's top 2 tokens"):
            judge(srv).score(clip, "a square slides")


def test_an_unknown_model_names_the_key_to_fix(clip):
    with VisionServer() as srv:
        c = OpenAIVLMCaptioner("no-such-model", base_url=srv.base_url, api_key_env=KEY_ENV, num_frames=2,
                               frame_size=32, backoff_s=0.01)
        with pytest.raises(BackendError, match=r"HTTP 404: The model `no-such-model` does not exist.*"
                                               r"check captioner.model \('no-such-model'\)") as e:
            c.caption(clip)
    assert "after 1 attempt;" in str(e.value)  # a 404 is not retried


def test_5xx_and_429_are_retried_within_max_retries(clip):
    with FaultyServer([fail(503), fail(429, retry_after="0"), ok("a square slides right")]) as srv:
        assert captioner(srv, max_retries=2).caption(clip) == "a square slides right"
        assert srv.count == 3
    with FaultyServer([fail(502)]) as srv:
        with pytest.raises(BackendError, match=r"HTTP 502 after 2 attempts; .*captioner.max_retries"):
            captioner(srv, max_retries=1).caption(clip)
        assert srv.count == 2


def test_no_key_and_no_base_url_is_a_config_error_naming_the_variable():
    with pytest.raises(ConfigError, match=rf"set the environment variable {KEY_ENV} \(captioner.api_key_env"):
        OpenAIVLMCaptioner("m", api_key_env=KEY_ENV)


def test_the_config_builds_the_served_backends_and_refuses_what_does_not_apply(clip):
    with VisionServer(frames=3, max_side=32) as srv:
        sets = ["captioner.backend=openai", f"captioner.base_url={srv.base_url}", "captioner.model=vision-test",
                f"captioner.api_key_env={KEY_ENV}", "scorer.num_frames=3"]
        cfg = load_config("smoke", overrides=sets)
        cap, sc = registry.build("captioner", cfg), registry.build("scorer", cfg)
        assert isinstance(cap, OpenAIVLMCaptioner) and isinstance(sc, ServedJudgeScorer)
        assert sc.base_url == srv.base_url and sc.model_id == "vision-test" and sc.frame_size == 32
        sc.score(clip, "a square")
        assert srv.rejected == []
        for bad, msg in [(["captioner.options.video=3"], r"captioner.options.video must be true or false"),
                         (["captioner.options.fps=2"], r"unknown captioner.options \['fps'\] for the 'openai'"),
                         (["scorer.options.top_logprobs=50"], r"top_logprobs must be an integer from 2 to 20")]:
            registry.clear_cache()
            with pytest.raises(ConfigError, match=msg):
                c = load_config("smoke", overrides=sets + bad)
                registry.build("captioner", c)
                registry.build("scorer", c)


def test_a_scorer_base_url_serves_the_judge_beside_a_local_captioner(clip):
    with VisionServer(models=("judge-model",)) as srv:
        cfg = load_config("smoke", overrides=[f"scorer.base_url={srv.base_url}", "scorer.model=judge-model",
                                              f"scorer.api_key_env={KEY_ENV}"])
        sc = registry.build("scorer", cfg)
        assert isinstance(sc, ServedJudgeScorer) and sc.model_id == "judge-model"
        s = sc.score(clip, "a square")
    assert 0.0 < s.sa < 1.0 and len(srv.requests) == 2


def test_a_reply_trickled_byte_by_byte_is_abandoned_at_the_deadline(clip):
    """httpx's timeout is per read; a server sending one byte every 0.2 s never trips it. timeout_s is a deadline."""
    with FaultyServer([trickle("late caption", 0.2)], hang_s=10) as srv:
        t0 = time.monotonic()
        with pytest.raises(BackendError, match=r"timeout after 1s after 2 attempts"):
            captioner(srv, timeout_s=1.0, max_retries=1).caption(clip)
        took = time.monotonic() - t0
    assert srv.count == 2 and took < 4.0
