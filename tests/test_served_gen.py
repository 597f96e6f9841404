"""The served generators against loopback servers speaking their protocols (tests/video_servers.py), driven by the
real clients: the Videos API over httpx (``openai``) and google-genai (``veo``). Every served video is a real mp4
rendered by the tiny CogVideoX pipeline behind the server."""

import logging
import threading
import time

import pytest
from doubles import FakeCaptioner, FakeScorer, physics_llm
from video_servers import VeoServer, VideosServer

from phyt2v import Refiner, load_config, registry
from phyt2v.errors import BackendError, BudgetExceeded, ConfigError, Interrupted, JobFailed
from phyt2v.generators.openai_video import OpenAIVideoGenerator
from phyt2v.loop.jobs import CostBudget, JobLog
from phyt2v.loop.run import Run
from phyt2v.runtime import lanes, memplan
from phyt2v.store.record import RoundRecord, RunRecord, RunStore
from phyt2v.store.video_io import probe

PROMPT = "a rubber ball is dropped onto a wooden floor"


def served(srv, *sets, backend="openai", model="tiny-video"):
    return load_config("smoke", overrides=[f"generator.backend={backend}", f"generator.base_url={srv.base_url}",
                                           f"generator.model={model}", "generator.poll_s=0.05", *sets])


def job_log(tmp_path, stop=lambda: False, budget=None):
    store = RunStore(tmp_path / "run")
    store.dir.mkdir(parents=True, exist_ok=True)
    rec = RunRecord(run_id="run", prompt=PROMPT, config_hash="x", rounds=[RoundRecord(index=1, prompt=PROMPT)])
    return JobLog(Run(rec, store), rec.rounds[0], stop_requested=stop, budget=budget), store


def test_job_lifecycle_sends_the_vllm_omni_form_and_saves_a_real_mp4(tmp_path):
    with VideosServer(render_s=0.3) as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv))
        steps = []
        v = gen.generate(PROMPT, seed=7, out_path=tmp_path / "v.mp4", on_step=lambda i, n: steps.append((i, n)))
    (create,) = srv.creates()
    assert create["ctype"] == "multipart/form-data"
    assert create["fields"] == {"prompt": PROMPT, "model": "tiny-video", "size": "16x16", "seconds": "1",
                                "width": "16", "height": "16", "num_frames": "9", "fps": "8",
                                "num_inference_steps": "2", "guidance_scale": "6.0", "seed": "7"}
    info = probe(v.path)
    assert (info.num_frames, info.width, info.height) == (9, 16, 16) == (v.num_frames, v.width, v.height)
    assert v.seed == 7 and v.knobs == {"job": create["id"], "seed_sent": True}
    assert steps[-1] == (100, 100) and any(0 < i < 100 for i, _ in steps)  # the server's progress, then done


@pytest.mark.parametrize("fmt", ["json", "nvext"])
def test_json_and_dynamo_request_formats(tmp_path, fmt):
    with VideosServer() as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv, f"generator.options.request_format={fmt}",
                                                      "generator.options.negative_prompt=blur"))
        gen.generate(PROMPT, seed=3, out_path=tmp_path / "v.mp4")
    (create,) = srv.creates()
    f = create["fields"]
    assert create["ctype"] == "application/json" and f["prompt"] == PROMPT
    if fmt == "json":
        assert f["seed"] == 3 and f["num_frames"] == 9 and f["negative_prompt"] == "blur"
    else:
        assert f["nvext"] == {"fps": 8, "num_frames": 9, "negative_prompt": "blur", "num_inference_steps": 2,
                              "guidance_scale": 6.0, "seed": 3}
        assert f["seconds"] == 1 and "width" not in f


def test_429_waits_its_retry_after_then_succeeds(tmp_path):
    with VideosServer(rate_limit=1, retry_after=0.6) as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv))
        gen.backoff_s = 0.01
        gen.generate(PROMPT, seed=1, out_path=tmp_path / "v.mp4")
    posts = [e for e in srv.log if e["method"] == "POST"]
    assert [e["code"] for e in posts] == [429, 200]
    assert posts[1]["time"] - posts[0]["time"] >= 0.6


def test_5xx_retried_within_max_retries_then_one_line(tmp_path):
    with VideosServer(errors_5xx=1) as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv))
        gen.backoff_s = 0.01
        gen.generate(PROMPT, seed=1, out_path=tmp_path / "v.mp4")
        assert [e["code"] for e in srv.log[:2]] == [503, 200]
    with VideosServer(errors_5xx=50) as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv, "generator.max_retries=2"))
        gen.backoff_s = 0.01
        with pytest.raises(BackendError) as e:
            gen.generate(PROMPT, seed=1, out_path=tmp_path / "w.mp4")
    assert "HTTP 503 after 3 attempt(s)" in str(e.value) and "\n" not in str(e.value)
    assert len(srv.log) == 3 and not srv.creates()


def test_a_moderated_job_fails_naming_the_servers_code_and_message(tmp_path):
    with VideosServer(moderate="ball") as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv))
        with pytest.raises(JobFailed) as e:
            gen.generate(PROMPT, seed=1, out_path=tmp_path / "v.mp4")
    msg = str(e.value)
    assert e.value.code == "moderation_blocked" and "\n" not in msg
    assert "moderation_blocked: Your request was blocked by our moderation system." in msg
    assert not (tmp_path / "v.mp4").exists()


def test_past_the_deadline_the_job_is_deleted(tmp_path):
    log, _ = job_log(tmp_path)
    with VideosServer(hold=True) as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv, "generator.timeout_s=0.6"))
        t0 = time.monotonic()
        with pytest.raises(BackendError) as e:
            gen.generate(PROMPT, seed=1, out_path=tmp_path / "v.mp4", job_log=log)
        assert time.monotonic() - t0 < 3
        srv.release()
    assert "generator.timeout_s=0.6s" in str(e.value) and "it was deleted on the server" in str(e.value)
    deletes = [e for e in srv.log if e["method"] == "DELETE"]
    assert [d["code"] for d in deletes] == [200] and not srv.jobs
    assert log.find(1)["status"] == "deleted"  # not resumed: a rerun creates it again


def test_a_stopped_wait_leaves_the_job_recorded_and_the_rerun_polls_it(tmp_path):
    stop = threading.Event()
    log, store = job_log(tmp_path, stop=stop.is_set)
    with VideosServer(hold=True) as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv))
        threading.Timer(0.5, stop.set).start()
        with pytest.raises(Interrupted):
            gen.generate(PROMPT, seed=4, out_path=tmp_path / "v.mp4", job_log=log)
        saved = RunStore(store.dir).load().rounds[0].jobs  # on disk, not only in memory
        assert [(j.seed, j.id, j.status) for j in saved] == [(4, srv.creates()[0]["id"], "created")]
        srv.release()
        stop.clear()
        v = gen.generate(PROMPT, seed=4, out_path=tmp_path / "v.mp4", job_log=log)
    assert len(srv.creates()) == 1 and v.knobs["job"] == saved[0].id
    assert RunStore(store.dir).load().rounds[0].jobs[0].status == "downloaded"


def test_a_job_the_server_forgot_is_created_again_with_a_warning(tmp_path, caplog):
    log, _ = job_log(tmp_path)
    with VideosServer() as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv))
        gen.generate(PROMPT, seed=2, out_path=tmp_path / "v.mp4", job_log=log)
        first = log.find(2)["id"]
        log.update(2, status="created")  # as if killed before the download
        srv.forget(first)
        with caplog.at_level(logging.WARNING, logger="phyt2v"):
            gen.generate(PROMPT, seed=2, out_path=tmp_path / "v.mp4", job_log=log)
    assert len(srv.creates()) == 2 and log.find(2)["id"] != first
    assert any(f"no longer knows job {first}" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_seeds_are_n_jobs_each_with_its_seed_or_recorded_unseeded(tmp_path):
    with VideosServer(render_s=0.4) as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv))
        made = gen.generate_many(PROMPT, seeds=[5, 6, 7], out_paths=[tmp_path / f"{s}.mp4" for s in (5, 6, 7)])
        assert sorted(int(c["fields"]["seed"]) for c in srv.creates()) == [5, 6, 7]
        assert srv.peak >= 2  # the seeds' jobs ran at once
        assert len({m.path.read_bytes() for m in made}) == 3
    with VideosServer() as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv, "generator.options.send_seed=false"))
        v = gen.generate(PROMPT, seed=9, out_path=tmp_path / "u.mp4")
    assert "seed" not in srv.creates()[0]["fields"] and v.seed == 9 and v.knobs["seed_sent"] is False


def test_the_budget_refuses_a_job_before_it_is_created(tmp_path):
    budget = CostBudget(1.0, spent=0.5)
    log, _ = job_log(tmp_path, budget=budget)
    with VideosServer() as srv:
        gen = OpenAIVideoGenerator.from_config(served(srv, "generator.price_per_second=0.25"))
        gen.generate(PROMPT, seed=1, out_path=tmp_path / "a.mp4", job_log=log)  # 9/8 s x 0.25 = 0.28
        assert log.find(1)["cost_usd"] == pytest.approx(9 / 8 * 0.25)
        with pytest.raises(BudgetExceeded) as e:
            gen.generate(PROMPT, seed=2, out_path=tmp_path / "b.mp4", job_log=log)
    assert len(srv.creates()) == 1 and "--max-cost $1.00" in str(e.value)


def test_a_served_generator_plans_no_memory_and_gets_a_gate_not_the_gpu_lane(tmp_path):
    with VideosServer() as srv:
        cfg = served(srv)
        roles = memplan.make_plan(cfg, 8 * 2**30, env={}).roles
        assert (roles["generator"].bytes, roles["generator"].source) == (0, "remote")
        assert registry.is_remote("generator", cfg) and not registry.is_remote("generator", load_config("smoke"))
        r = Refiner(cfg)
        assert isinstance(r.lanes.generator, lanes.Gate) and Refiner(load_config("smoke")).lanes.generator is None


def test_the_gate_runs_jobs_in_the_callers_threads_at_once_without_the_gpu_lock():
    gate, seen, barrier = lanes.Gate("generator", 3), [], threading.Barrier(3, timeout=5)

    def job():
        seen.append(threading.current_thread().name)
        barrier.wait()  # all three are inside at once, or this times out

    with lanes.GPU_LOCK:  # another thread's GPU step holds the lock: the served jobs do not wait for it
        lanes_ = lanes.Lanes(generator=gate)  # the "generator" steps of a Refiner whose generator is served
        threads = [threading.Thread(target=lambda: lanes_.call("generator", job), name=f"t{i}") for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert sorted(seen) == ["t0", "t1", "t2"] and gate.peak == 3 and not barrier.broken


@pytest.mark.slow
def test_the_key_is_sent_and_never_written(tmp_path, monkeypatch):
    key = "sk-served-video-key-4242"
    monkeypatch.setenv("PHYT2V_VIDEO_KEY", key)
    with VideosServer(key=key) as srv:
        cfg = served(srv, "generator.api_key_env=PHYT2V_VIDEO_KEY", "loop.max_rounds=1", "loop.min_rounds=1")
        res = Refiner(cfg, llm=physics_llm(), captioner=FakeCaptioner(), scorer=FakeScorer([(0.5, 0.5)]),
                      out=tmp_path).refine(PROMPT)
    assert all(e["auth"] == f"Bearer {key}" for e in srv.log)
    assert res.record.rounds[0].jobs[0].status == "downloaded"
    for p in res.run_dir.rglob("*"):
        if p.is_file():
            assert key.encode() not in p.read_bytes(), p


@pytest.mark.slow
def test_the_loop_through_a_served_generator_records_its_jobs_and_resumes_without_a_create(tmp_path):
    with VideosServer() as srv:
        cfg = served(srv, "loop.max_rounds=2", "loop.seeds=2")
        res = Refiner(cfg, llm=physics_llm(), captioner=FakeCaptioner(),
                      scorer=FakeScorer([(0.5, 0.5), (0.4, 0.4), (0.6, 0.6), (0.3, 0.3)]), out=tmp_path).refine(PROMPT)
        assert [[(j.seed, j.status) for j in r.jobs] for r in res.rounds] == [[(42, "downloaded"), (43, "downloaded")]] * 2
        assert len(srv.creates()) == 4
        (res.run_dir / res.rounds[1].candidates[0].video).unlink()  # a lost video: redone by downloading its job
        Refiner(cfg, llm=physics_llm(), captioner=FakeCaptioner(), scorer=FakeScorer([(0.5, 0.5)] * 4),
                out=tmp_path).refine(PROMPT)
        assert len(srv.creates()) == 4


@pytest.mark.slow
def test_draft_rounds_send_their_steps_and_the_draft_model(tmp_path):
    with VideosServer(model="tiny-video") as srv:
        cfg = served(srv, "loop.max_rounds=1", "loop.min_rounds=1", "loop.draft.enabled=true",
                     "loop.draft.steps=1", "loop.draft.model=tiny-video")
        Refiner(cfg, llm=physics_llm(), captioner=FakeCaptioner(), scorer=FakeScorer([(0.5, 0.5)] * 2),
                out=tmp_path).refine(PROMPT)
    draft, final = (c["fields"] for c in srv.creates())
    assert draft["num_inference_steps"] == "1" and final["num_inference_steps"] == "2"
    with pytest.raises(ConfigError, match="loop.draft.cache"):
        registry.check_before_load("generator", served(srv, "loop.draft.enabled=true",
                                                       "loop.draft.cache={kind: first-block}"))


# ---------------------------------------------------------------- Veo through google-genai

def veo_config(srv, *sets):
    return load_config("smoke", overrides=["generator.backend=veo", f"generator.base_url={srv.base_url[:-3]}",
                                           "generator.model=veo-3.1-generate-preview", "generator.poll_s=0.05",
                                           "generator.steps=null", "generator.guidance=null", *sets])


@pytest.mark.slow
def test_veo_loop_through_the_sdk_records_the_operation_and_resumes_by_its_name(tmp_path, monkeypatch, recwarn):
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-test-key-777")
    with VeoServer(render_s=0.2) as srv:
        cfg = veo_config(srv, "loop.max_rounds=1", "loop.min_rounds=1")
        res = Refiner(cfg, llm=physics_llm(), captioner=FakeCaptioner(), scorer=FakeScorer([(0.5, 0.5)]),
                      out=tmp_path).refine(PROMPT)
        (start,) = srv.starts()
        assert start["key"] == "gemini-test-key-777"
        assert start["body"] == {"instances": [{"prompt": PROMPT}],
                                 "parameters": {"sampleCount": 1, "seed": 42, "fps": 8, "durationSeconds": 1}}
        job = res.rounds[0].jobs[0]
        assert job.id.endswith("/operations/op1") and job.status == "downloaded"
        assert probe(res.run_dir / res.rounds[0].video).num_frames == 9
        # a run killed while Veo rendered: the recorded operation is polled, not started again
        from phyt2v.generators.veo import VeoGenerator

        log, _ = job_log(tmp_path)
        log.record(42, job.id, backend="veo", model="veo-3.1-generate-preview")
        VeoGenerator.from_config(cfg).generate(PROMPT, seed=42, out_path=tmp_path / "again.mp4", job_log=log)
        assert len(srv.starts()) == 1
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_a_failed_veo_operation_is_one_line_with_its_code_and_message(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-test-key-777")
    from phyt2v.generators.veo import VeoGenerator

    with VeoServer(fail=(3, "The prompt could not be submitted: it violates the usage guidelines.")) as srv:
        with pytest.raises(JobFailed) as e:
            VeoGenerator.from_config(veo_config(srv)).generate(PROMPT, seed=1, out_path=tmp_path / "v.mp4")
    assert "failed: 3: The prompt could not be submitted" in str(e.value) and "\n" not in str(e.value)


def test_veo_without_a_key_or_project_says_how(monkeypatch, tmp_path):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    from phyt2v.generators.veo import VeoGenerator

    with VeoServer() as srv, pytest.raises(ConfigError, match="GEMINI_API_KEY"):
        VeoGenerator.from_config(veo_config(srv))


def test_a_rounds_jobs_are_recorded_in_seed_order_whichever_thread_creates_first():
    from types import SimpleNamespace

    from phyt2v.loop.jobs import JobLog

    saves = []
    run = SimpleNamespace(rec="rec", store=SimpleNamespace(save=saves.append, dir="d"))
    target = SimpleNamespace(jobs=[])
    log = JobLog(run, target)
    log.record(43, "job-b", backend="openai", model="m")  # seed 43's thread got its job id first
    log.record(42, "job-a", backend="openai", model="m")
    assert [(j.seed, j.id) for j in target.jobs] == [(42, "job-a"), (43, "job-b")] and len(saves) == 2
    log.record(43, "job-c", backend="openai", model="m")  # a redone job replaces the seed's earlier one, in place
    assert [(j.seed, j.id) for j in target.jobs] == [(42, "job-a"), (43, "job-c")]


def test_each_backend_estimates_a_jobs_length_from_its_own_option(monkeypatch):
    """The cost estimate before a job runs: frames / fps when both are set, else the backend's length option
    (openai ``seconds``, Veo ``duration_seconds``), else its default (4 s, 8 s)."""
    from phyt2v.generators.veo import VeoGenerator

    monkeypatch.setenv("GEMINI_API_KEY", "k")
    no_shape = ["generator.num_frames=null", "generator.fps=null"]
    with VeoServer() as vsrv, VideosServer() as osrv:
        for cls, srv, build, option, default in (
                (VeoGenerator, vsrv, veo_config, "duration_seconds", 8.0),
                (OpenAIVideoGenerator, osrv, served, "seconds", 4.0)):
            assert cls.from_config(build(srv, *no_shape)).requested_seconds({}) == default
            other = "seconds" if option == "duration_seconds" else "duration_seconds"
            assert cls.from_config(build(srv, *no_shape, f"generator.options.{other}=6")).requested_seconds({}) == default
            assert cls.from_config(build(srv, *no_shape, f"generator.options.{option}=6")).requested_seconds({}) == 6.0
            assert cls.from_config(build(srv)).requested_seconds({}) == pytest.approx(9 / 8)  # smoke: 9 frames, 8 fps
