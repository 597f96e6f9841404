"""scripts/gpu_check_local.py rehearsed on CPU: --tiny runs one round per placement and writes its JSON;
the full-size builders it uses on the GPU construct the published architectures (on the meta device here)."""

from __future__ import annotations

import pytest
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_check_local  # noqa: E402

from phyt2v.runtime import paramcount  # noqa: E402


@pytest.mark.slow
def test_tiny_rehearsal_writes_one_round_per_placement(tmp_path):
    res = gpu_check_local.run("local-48gb", tiny=True, steps=2, out_dir=tmp_path)
    data = json.loads(Path(res["path"]).read_text())
    assert set(data["placements"]) == {"resident", "swap", "offload"}
    for name, row in data["placements"].items():
        assert row["round_seconds"] > 0 and row["peak_vram_bytes"] is None  # no GPU: no invented figure
    assert data["placements"]["swap"]["swaps"] >= 4  # llm, generator, captioner, scorer, llm
    assert data["versions"]["torch"]


def test_full_size_builders_make_the_published_architectures():
    from phyt2v.tiny import tiny_model_dir
    from phyt2v.vlm import runtime as vlm

    tok = vlm.tokenizer_of(vlm.load_processor(str(tiny_model_dir("vlm"))))
    model = gpu_check_local._gpu_vlm("Qwen/Qwen3-VL-8B-Instruct", "meta", tok)
    assert paramcount.count_parameters(model) == paramcount.PUBLISHED["Qwen/Qwen3-VL-8B-Instruct"]["model"]
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    pipe = gpu_check_local._gpu_pipeline(str(tiny_model_dir("cogvideox")), "meta")
    table = paramcount.PUBLISHED["THUDM/CogVideoX-5b"]
    assert paramcount.count_parameters(pipe.transformer) == table["transformer"]
    assert paramcount.count_parameters(pipe.text_encoder) == table["text_encoder"]
