"""Batch logic on the loop's test doubles (fast): result lines, failures that do not stop the batch,
resume without model calls, torn result lines, shards and their merge. The real end-to-end batch
(smoke preset, kill -9, accelerate processes) is in test_e2e_batch.py."""

import json
from pathlib import Path

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v.batch import Batch, Shard, parse_shard
from phyt2v.batch import folder as batchdir
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.errors import BackendError, InputError
from phyt2v.loop import Refiner
from phyt2v.store.files import append_jsonl

PROMPTS = ["a ball rolls down a ramp", "water pours into a glass", "a glass falls and shatters",
           "ice melts on a hot pan"]


class CountingScorer(FakeScorer):
    def __init__(self):
        super().__init__([])
        self.n = 0

    def score(self, video, prompt):
        from phyt2v.roles import Scores

        self.n += 1
        return Scores(sa=0.5, pc=min(1.0, 0.1 * self.n))


class FailOn:
    """Wraps the fake generator: raises on prompts containing ``word`` (fault injection)."""

    backend, model_id, max_prompt_tokens = "fake", "fake-gen", 40

    def __init__(self, word: str):
        self.word, self.inner = word, FakeGenerator()

    def count_tokens(self, prompt):
        return self.inner.count_tokens(prompt)

    def generate(self, prompt, **kw):
        if self.word in prompt:
            raise RuntimeError("CUDA out of memory (injected)")
        return self.inner.generate(prompt, **kw)


def make(tmp_path: Path, *, generator=None, prompts=PROMPTS):
    src_file = tmp_path / "prompts.txt"
    src_file.write_text("\n".join(prompts) + "\n")
    cfg = load_config(loop={"max_rounds": 2, "min_rounds": 2})
    parts = dict(llm=physics_llm(), generator=generator or FakeGenerator(), captioner=FakeCaptioner(),
                 scorer=CountingScorer())
    return load_source(str(src_file)), cfg, Refiner(cfg, **parts), parts


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.slow
def test_batch_writes_one_line_per_prompt_with_rounds_and_categories(tmp_path):
    src, cfg, ref, parts = make(tmp_path)
    s = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    assert s.ok and s.finished == 4 and s.merged
    res = lines(s.batch_dir / "results.jsonl")
    assert [r["prompt"] for r in res] == PROMPTS
    for r in res:
        assert r["status"] == "finished" and r["error"] is None
        assert [x["index"] for x in r["rounds"]] == [1, 2]
        assert r["best_round"] in (1, 2) and r["stop_reason"] == "max_rounds"
        for x in r["rounds"]:
            assert (s.batch_dir / x["video"]).is_file()
            assert 0 <= x["sa"] <= 1 and 0 <= x["pc"] <= 1
        assert (s.batch_dir / r["run_dir"] / "run.json").is_file()
    header = batchdir.read_batch(s.batch_dir)
    assert header["config_hash"] == cfg.hash() and header["selected"] == 4
    assert [p["prompt"] for p in batchdir.read_prompts(s.batch_dir)] == PROMPTS


def test_same_source_and_config_share_a_folder_other_config_does_not(tmp_path):
    src, cfg, ref, _ = make(tmp_path)
    a = Batch(src, cfg, out=tmp_path).dir
    assert Batch(src, load_config(loop={"max_rounds": 2, "min_rounds": 2}), out=tmp_path).dir == a
    assert Batch(src, load_config(loop={"max_rounds": 3}), out=tmp_path).dir != a


def test_failing_prompt_is_recorded_and_the_batch_goes_on_then_retried(tmp_path):
    src, cfg, ref, parts = make(tmp_path, generator=FailOn("glass"))
    s = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    assert s.finished == 2 and len(s.failed) == 2 and not s.ok
    res = {r["prompt"]: r for r in lines(s.batch_dir / "results.jsonl")}
    bad = res["water pours into a glass"]
    assert bad["status"] == "failed" and bad["error"]["step"] == "generate"
    assert "out of memory" in bad["error"]["message"]
    assert res["a ball rolls down a ramp"]["status"] == "finished"
    # the fault goes away: a rerun retries only the failed prompts; the latest line wins
    parts["generator"].word = "no-such-word"
    s2 = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    assert s2.already_done == 2 and s2.finished == 2 and s2.ok
    assert all(r["status"] == "finished" for r in batchdir.read_results(s.batch_dir).values())


def test_load_failure_stops_the_batch_instead_of_failing_every_prompt(tmp_path):
    src, cfg, _, _ = make(tmp_path)
    cfg = load_config(loop={"max_rounds": 2}, generator={"model": str(tmp_path / "no-such-model")})
    with pytest.raises(BackendError, match="not found"):
        Batch(src, cfg, out=tmp_path / "out").run()


def test_finished_batch_rerun_makes_no_model_calls(tmp_path):
    src, cfg, ref, parts = make(tmp_path)
    Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    n_llm, n_gen = len(parts["llm"].calls), len(parts["generator"].calls)
    s = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    assert s.already_done == 4 and s.finished == 0 and s.ok
    assert (len(parts["llm"].calls), len(parts["generator"].calls)) == (n_llm, n_gen)


def test_torn_last_line_is_redone_and_the_file_stays_valid(tmp_path):
    src, cfg, ref, parts = make(tmp_path)
    s = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    path = s.batch_dir / "results.jsonl"
    text = path.read_text().splitlines(keepends=True)
    path.write_text("".join(text[:3]) + text[3][: len(text[3]) // 2])  # a kill in the middle of a write
    with pytest.warns(UserWarning, match="incomplete last line"):
        s2 = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    assert s2.already_done == 3 and s2.finished == 1
    res = lines(path)  # merged: every line parses again
    assert [r["prompt"] for r in res] == PROMPTS


def test_append_jsonl_cuts_a_torn_line_before_appending(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": "a"}\n{"id": "b", "tor')
    append_jsonl(p, {"id": "c"})
    assert p.read_text() == '{"id": "a"}\n{"id": "c"}\n'


def test_limit_and_damaged_results_line_message(tmp_path):
    src, cfg, ref, _ = make(tmp_path)
    s = Batch(src, cfg, out=tmp_path / "out", limit=2, refiner=ref).run()
    assert s.total == 2 and [r["prompt"] for r in lines(s.batch_dir / "results.jsonl")] == PROMPTS[:2]
    path = s.batch_dir / "results.jsonl"
    path.write_text("not json\n" + path.read_text())
    with pytest.raises(InputError, match=r"results.jsonl:1 is not valid JSON"):
        Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    with pytest.raises(InputError, match="positive"):
        Batch(src, cfg, out=tmp_path / "out", limit=0)


def test_shards_split_prompts_and_merge_in_source_order(tmp_path):
    src, cfg, ref, _ = make(tmp_path)
    a = Batch(src, cfg, out=tmp_path / "out", shard=Shard(0, 2), refiner=ref).run()
    assert a.mine == 2 and not a.merged  # shard 1 has not run yet
    assert [r["prompt"] for r in lines(batchdir.shard_file(a.batch_dir, 0, 2))] == PROMPTS[0::2]
    assert not (a.batch_dir / "results.jsonl").exists()
    b = Batch(src, cfg, out=tmp_path / "out", shard=Shard(1, 2), refiner=ref).run()
    assert b.merged and a.batch_dir == b.batch_dir
    merged = lines(a.batch_dir / "results.jsonl")
    assert [r["prompt"] for r in merged] == PROMPTS
    assert [r["shard"] for r in merged] == [[0, 2], [1, 2], [0, 2], [1, 2]]
    # an unsharded rerun finds everything done
    s = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    assert s.already_done == 4 and s.finished == 0 and s.merged


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/3", "0/0"])
def test_bad_shard_option(text):
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


def test_parse_shard_ok():
    assert parse_shard("1/3") == Shard(1, 3) and Shard(1, 3).take(list(range(7))) == [1, 4]


def test_phygenbench_export_names_videos_by_prompts_json_position(tmp_path, shared_dir):
    from phyt2v.views.export import export

    src = load_source("phygenbench", from_file=shared_dir / "benchmarks/phygenbench/prompts.json")
    cfg = load_config(loop={"max_rounds": 2, "min_rounds": 2})
    ref = Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(),
                  scorer=CountingScorer())
    s = Batch(src, cfg, out=tmp_path, shard=Shard(0, 2), limit=5, refiner=ref).run()  # prompts 0, 2, 4
    res = export(s.batch_dir, "phygenbench", out=tmp_path / "pgb", name="mymodel")
    assert res.path == tmp_path / "pgb" / "mymodel" and res.exported == 3
    assert sorted(p.name for p in res.path.iterdir()) == ["output_video_1.mp4", "output_video_3.mp4",
                                                          "output_video_5.mp4"]
    assert len(res.missing) == 160 - 3  # every prompt of prompts.json without a video is listed
    first = batchdir.read_results(s.batch_dir)[src.items[0].id]
    best = batchdir.round_of(first, "best")
    assert (res.path / "output_video_1.mp4").read_bytes() == (s.batch_dir / best["video"]).read_bytes()
    with pytest.raises(InputError, match="Did you mean vbench"):
        export(s.batch_dir, "vbnch")


def test_phygenbench_export_refuses_other_sources(tmp_path):
    from phyt2v.views.export import export

    src, cfg, ref, _ = make(tmp_path)
    s = Batch(src, cfg, out=tmp_path / "out", limit=1, refiner=ref).run()
    with pytest.raises(InputError, match="not phygenbench"):
        export(s.batch_dir, "phygenbench")
    res = export(s.batch_dir, "videophy-eval", which="first")
    line = batchdir.read_results(s.batch_dir)[src.items[0].id]
    video = (s.batch_dir / line["rounds"][0]["video"]).resolve()
    assert video.is_file()
    assert res.path.read_text().splitlines() == ["videopath,caption", f"{video},{PROMPTS[0]}"]


def test_prompt_locked_by_another_process_is_skipped_and_revisited(tmp_path):
    import os
    import subprocess
    import sys

    from phyt2v.batch import run_id_for

    src, cfg, ref, parts = make(tmp_path)
    b = Batch(src, cfg, out=tmp_path / "out", refiner=ref)
    first = b.dir / "runs" / run_id_for(src.items[0])
    root = Path(__file__).resolve().parents[1]
    code = ("import sys, time; from pathlib import Path; from phyt2v.store.locks import FolderLock; "
            "FolderLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(1.5)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(first)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(root)})
    assert holder.stdout.readline().strip() == "locked"
    order = []
    b.on_event = lambda kind, data: order.append(data["item"].index) if kind == "prompt_end" else None
    s = b.run()
    holder.wait(30)
    assert order == [1, 2, 3, 0]  # prompt 0 waited for the other process, then was done here
    assert s.finished == 4 and s.merged and len(lines(s.batch_dir / "results.jsonl")) == 4


def test_prompts_another_process_finished_meanwhile_are_not_appended_again(tmp_path, monkeypatch):
    src, cfg, ref, parts = make(tmp_path)
    late = Batch(src, cfg, out=tmp_path / "out", refiner=ref)
    Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()  # another process does every prompt
    n_gen = len(parts["generator"].calls)
    results = late.dir / "results.jsonl"
    before = results.read_text()
    monkeypatch.setattr(late, "done_ids", lambda: set())  # as read before the other process wrote its lines
    s = late.run()
    assert s.by_others == 4 and s.finished == 0 and len(parts["generator"].calls) == n_gen
    assert results.read_text() == before


def test_prompt_refused_for_length_fails_its_line_at_check_prompt_without_a_run_folder(tmp_path):
    long = " ".join(["word"] * 60)  # the fake generator reads at most 40 tokens
    src, cfg, ref, parts = make(tmp_path, prompts=[PROMPTS[0], long])
    s = Batch(src, cfg, out=tmp_path / "out", refiner=ref).run()
    assert s.finished == 1 and len(s.failed) == 1
    bad = s.failed[0]
    assert bad["error"]["step"] == "check prompt" and bad["error"]["kind"] == "InputError"
    assert "60 tokens" in bad["error"]["message"] and not (s.batch_dir / bad["run_dir"]).exists()
