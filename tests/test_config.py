import pytest

from phyt2v.config import Config, load_config, preset_names
from phyt2v.errors import BackendNotFound, ConfigError


def test_presets_load_and_paper_defaults():
    assert {"smoke", "cogvideox-5b", "cogvideox-2b", "cogvideox1.5-5b"} <= set(preset_names())
    assert load_config("cogvideox1.5-5b").generator.num_frames % 16 == 1
    c = load_config("cogvideox-5b")
    g = c.generator
    assert (g.model, g.num_frames, g.steps, g.guidance, g.fps, g.height, g.width, g.scheduler, g.dynamic_cfg) == (
        "THUDM/CogVideoX-5b", 49, 50, 6.0, 8, 480, 720, "dpm", True)
    assert c.loop.max_rounds == 4 and c.loop.sa_weight == c.loop.pc_weight == 0.5
    assert load_config("smoke").generator.model == "tiny"


def test_unknown_preset_suggests_nearest():
    with pytest.raises(BackendNotFound, match="Did you mean smoke"):
        load_config("smok")


def test_overrides_and_bad_values_name_the_key():
    c = load_config("smoke", overrides=["loop.max_rounds=3", "generator.steps=5", "llm.base_url=http://x/v1"])
    assert (c.loop.max_rounds, c.generator.steps, c.llm.base_url) == (3, 5, "http://x/v1")
    with pytest.raises(ConfigError, match=r"'loop.max_rounds'.*greater than or equal to 1.*got 0"):
        load_config("smoke", overrides=["loop.max_rounds=0"])
    with pytest.raises(ConfigError, match="unknown key 'generator.stepz'"):
        load_config("smoke", overrides=["generator.stepz=5"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config("smoke", overrides=["loop.max_rounds"])
    with pytest.raises(ConfigError, match="min_rounds"):
        load_config(overrides=["loop.min_rounds=5", "loop.max_rounds=2"])


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(file=bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(file=lst)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(file=binary)
    ok = tmp_path / "ok.yaml"
    ok.write_text("loop:\n  max_rounds: 2\n")
    assert load_config(file=ok).loop.max_rounds == 2


def test_hash_is_stable_and_ignores_output_folder():
    a, b = load_config("smoke"), load_config("smoke", out="elsewhere")
    assert a.hash() == b.hash() and len(a.hash()) == 10
    assert load_config("smoke", overrides=["loop.seed=1"]).hash() != a.hash()


def test_effective_config_holds_no_secret(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-abc123")
    c = load_config("cogvideox-5b")
    assert "SECRET" not in Config.model_dump_json(c)
    assert c.llm.api_key_env == "OPENAI_API_KEY"
