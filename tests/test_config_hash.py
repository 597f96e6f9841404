"""What names a run: the config's identity (hashed) vs how it runs (recorded per invocation, not hashed);
folders named by the earlier, whole-config hash are still found and resumed."""

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v import Refiner, load_config
from phyt2v.batch import Batch
from phyt2v.batch import folder as batchdir
from phyt2v.batch.sources import load_source
from phyt2v.config import Config
from phyt2v.errors import BackendError
from phyt2v.store.record import RunRecord

PROMPT = "a rubber ball is dropped onto a wooden floor"

RUNTIME_KNOBS = ["llm.max_retries=7", "llm.timeout_s=5", "llm.backoff_s=0.1", "llm.n_ctx=2048", "llm.device=cuda:0",
                 "generator.device=cuda:1", "generator.offload=sequential", "generator.vae_tiling=false",
                 "captioner.device=cuda:2", "scorer.device=cuda:3", "scorer.batch_size=4",
                 "generator.options.vram_margin_gb=2", "generator.compile=true", "generator.attention_backend=flash",
                 "out=elsewhere", "note=hi"]


@pytest.mark.parametrize("knob", RUNTIME_KNOBS)
def test_runtime_knobs_leave_the_hash_unchanged_and_are_recorded(knob):
    base, changed = load_config("smoke"), load_config("smoke", overrides=[knob])
    assert changed.hash() == base.hash()
    assert changed.runtime() != base.runtime()  # recorded per invocation instead


@pytest.mark.parametrize("knob", ["generator.steps=3", "loop.seed=1", "llm.temperature=0.5", "llm.model=x",
                                  "generator.options.negative_prompt=blur", "scorer.num_frames=5",
                                  "loop.max_rounds=3", "generator.dtype=float32"])
def test_result_knobs_change_the_hash(knob):
    assert load_config("smoke", overrides=[knob]).hash() != load_config("smoke").hash()


def test_every_field_is_hashed_or_runtime_exactly_once():
    cfg = Config()
    ident, run = cfg.identity(), cfg.runtime()
    for section, fields in cfg.effective().items():
        if isinstance(fields, dict):
            for k in fields:
                assert (k in ident[section]) != (k in run.get(section, {})) or k == "options", (section, k)
        else:
            assert (section in ident) != (section in run), section


def test_legacy_hash_is_the_earlier_whole_config_hash():
    # values computed by the code before runtime knobs left the hash (commit 2ffe71c): folders on disk carry them
    assert load_config("smoke").legacy_hash() == "37dbbe1d07"
    assert load_config("smoke", overrides=["llm.max_retries=5"]).legacy_hash() != "37dbbe1d07"


def test_compile_and_attention_backend_left_the_hash_without_renaming_folders():
    # values computed before generator.compile / attention_backend became runtime: every folder made since the
    # v2 hash with them at their defaults carries these names, and keeps them
    assert load_config("smoke").hash() == "48c294db6c"
    assert load_config("smoke", overrides=["generator.compile=true", "generator.attention_backend=sage"]).hash() == \
        "48c294db6c"
    # a folder of the whole-config (legacy) hash predates both fields: a rerun with them on still finds it
    assert load_config("smoke", overrides=["generator.compile=true"]).legacy_hash() == "37dbbe1d07"


def test_a_run_folder_made_with_compile_on_before_it_was_runtime_is_resumed(tmp_path):
    cfg = load_config(loop={"max_rounds": 2, "min_rounds": 2}, generator={"compile": True}, out=str(tmp_path))
    ref = Refiner(cfg, **parts([(0.2, 0.2)]))
    with pytest.raises(BackendError):  # the scorer runs out in round 2: round 1 is on disk
        ref.refine(PROMPT)
    before = tmp_path / ref.run_id(PROMPT, "0dee1d42db")  # this config's hash when compile was hashed
    ref.run_dir(PROMPT).rename(before)
    second = parts([(0.3, 0.3)])
    res = Refiner(load_config(loop={"max_rounds": 2, "min_rounds": 2}, out=str(tmp_path)), **second).refine(PROMPT)
    assert res.run_dir == before and res.record.status == "finished"
    assert second["generator"].calls == [] and len(res.rounds) == 2  # round 1 was not rendered again


def parts(scores):
    return dict(llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(), scorer=FakeScorer(scores))


def test_run_folder_named_by_the_legacy_hash_is_resumed(tmp_path):
    cfg = load_config(loop={"max_rounds": 2, "min_rounds": 2}, out=str(tmp_path))
    first = parts([(0.2, 0.2)])
    ref = Refiner(cfg, **first)
    with pytest.raises(BackendError):  # the scorer runs out in round 2: round 1 is on disk
        ref.refine(PROMPT)
    legacy = tmp_path / ref.run_id(PROMPT, cfg.legacy_hash())
    ref.run_dir(PROMPT).rename(legacy)  # as an older phyt2v named it
    warnings = []
    second = parts([(0.3, 0.3)])  # other runtime knobs than the legacy name was made with: found by its config
    ref2 = Refiner(load_config(loop={"max_rounds": 2, "min_rounds": 2}, llm={"max_retries": 9}, out=str(tmp_path)),
                   on_event=lambda e: warnings.append(e.data.get("message", "")) if e.kind == "warning" else None,
                   **second)
    res = ref2.refine(PROMPT)
    assert res.run_dir == legacy and res.record.status == "finished"
    assert second["generator"].calls == [] and len(res.rounds) == 2  # only round 2's score was left
    assert any("earlier config hash" in w for w in warnings)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [legacy.name]
    rec = RunRecord.model_validate_json((legacy / "run.json").read_text())
    assert [i["runtime"]["llm"]["max_retries"] for i in rec.invocations] == [3, 9]


def test_batch_folder_named_by_the_legacy_hash_is_resumed(tmp_path):
    src_file = tmp_path / "p.txt"
    src_file.write_text(PROMPT + "\n")
    src, cfg = load_source(str(src_file)), load_config(loop={"max_rounds": 1})
    p = parts([(0.2, 0.2)])
    b = Batch(src, cfg, out=tmp_path / "out", refiner=Refiner(cfg, **p))
    b.run()
    from phyt2v.batch import batch_key

    legacy = b.dir.with_name(b.dir.name.replace(batch_key(src, cfg.hash()), batch_key(src, cfg.legacy_hash())))
    b.dir.rename(legacy)
    again = Batch(src, cfg, out=tmp_path / "out", refiner=Refiner(cfg, **parts([])))  # by the legacy name
    s = again.run()
    assert again.dir == legacy and s.already_done == 1 and s.finished == 0
    cfg2 = load_config(loop={"max_rounds": 1}, generator={"offload": "model"})  # by its batch.json
    s = Batch(src, cfg2, out=tmp_path / "out", refiner=Refiner(cfg2, **parts([]))).run()
    assert s.batch_dir == legacy and s.already_done == 1
    assert [i["runtime"]["generator"]["offload"] for i in batchdir.read_batch(legacy)["invocations"]] == \
        ["auto", "auto", "model"]
