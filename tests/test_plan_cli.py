"""``phyt2v plan PROMPT``: the real command, its LLM a real OpenAI client against a scripted loopback server (the
embedded SmolLM2 run is in test_plan_step.py); the JSON printed, the table, the SVG picture written."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from llm_servers import FaultyServer, ok

from phyt2v.loop.layouts import parse_lvd_text
from phyt2v.views.layout_svg import layout_svg

PROMPT = "a red ball is thrown from left to right and bounces"
RULES = json.dumps({"objects": ["red ball", "ground"], "rules": ["gravity pulls the ball down"],
                    "expected_outcome": "the ball flies right, falls and bounces"})
BALL = [[10, 150, 50, 190], [90, 180, 130, 220], [170, 270, 210, 310], [250, 420, 290, 460], [330, 320, 370, 360],
        [410, 360, 450, 400]]  # corners in pixels of the 512 canvas
LAYOUT = json.dumps({"reasoning": "thrown right, it falls and bounces", "background": "garden",
                     "objects": [{"name": "red ball", "boxes": BALL}]})
SVG = "{http://www.w3.org/2000/svg}"


def plan(*args, script, tmp_path):
    with FaultyServer(script) as srv:
        p = subprocess.run([sys.executable, "-m", "phyt2v", "plan", PROMPT, "--preset", "smoke",
                            "--set", "llm.backend=openai", "--set", f"llm.base_url={srv.base_url}",
                            "--set", "llm.model=test", "--set", f"out={tmp_path}", *args],
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OPENAI_API_KEY": "sk-test"})
    return p, srv


@pytest.mark.slow
def test_plan_json(tmp_path):
    picture = tmp_path / "pics" / "ball.svg"
    p, srv = plan("--json", "--out", str(picture), script=[ok(RULES), ok(LAYOUT)], tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    data = json.loads(p.stdout)
    assert data == {"keyframes": [{"t": k / 2, "objects": [{"id": 0, "name": "red ball", "box": [
        round(v / 512, 4) for v in box]}]} for k, box in enumerate(BALL)], "background": "garden",
        "reasoning": "thrown right, it falls and bounces"}
    assert srv.count == 2
    layout_request = srv.requests[1]["json"]
    assert "Plan exactly 6 frames" in layout_request["messages"][-1]["content"]
    assert f"picture: {picture}" in p.stderr
    root = ET.parse(picture).getroot()
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert [t for t in texts if t.startswith("t = ")] == ["t = 0 s", "t = 0.5 s", "t = 1 s", "t = 1.5 s", "t = 2 s",
                                                          "t = 2.5 s"]
    assert texts.count("0: red ball") == 6 and "background: garden" in texts and PROMPT in texts


@pytest.mark.slow
def test_plan_prints_a_table_and_writes_the_default_picture(tmp_path):
    p, _ = plan(script=[ok(RULES), ok(LAYOUT)], tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "boxes [x0 y0 x1 y1]" in p.stdout
    assert "0: red ball" in p.stdout and "0.02 0.29 0.10 0.37" in p.stdout and "garden" in p.stdout
    assert (tmp_path / "plans" / "a-red-ball-is-thrown-from-left-to-right-and-bounces.svg").is_file()


@pytest.mark.slow
def test_an_unusable_layout_is_a_clear_error(tmp_path):
    bad = json.dumps({"reasoning": "", "background": "", "objects": [{"name": "tennis racket", "boxes": BALL}]})
    p, srv = plan("--json", script=[ok(RULES), ok(bad), ok(bad)], tmp_path=tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr and srv.count == 3
    assert "unusable after a re-ask" in p.stderr and "tennis racket" in p.stderr
    assert p.stdout == ""


def test_svg_boxes_follow_the_frame_shape():
    lay = parse_lvd_text("\n".join(f"Frame {k}: [{{'id': 0, 'name': 'car', 'box': [256, 0, 256, 256]}}]"
                                   for k in range(1, 7)) + "\nBackground keyword: road")
    root = ET.fromstring(layout_svg(lay, title="a <car> & road", aspect=16 / 9, panel_width=160))
    panels = [r for r in root.iter(f"{SVG}rect") if r.get("stroke") == "#999"]
    assert len(panels) == 6 and {r.get("height") for r in panels} == {"90"}
    boxes = [r for r in root.iter(f"{SVG}rect") if r.get("fill-opacity")]
    assert (boxes[0].get("x"), boxes[0].get("y"), boxes[0].get("width"), boxes[0].get("height")) == (
        "80.0", "0.0", "80.0", "45.0")
    assert "a <car> & road" in [t.text for t in root.iter(f"{SVG}text")]


def test_an_empty_prompt_is_refused_before_the_llm_loads(tmp_path, capsys, monkeypatch):
    from phyt2v import registry
    from phyt2v.cli.app import main

    monkeypatch.setattr(registry, "build", lambda *a, **k: pytest.fail("the LLM was loaded"))
    with pytest.raises(SystemExit) as e:
        main(["plan", "   ", "--preset", "smoke", "--out", str(tmp_path / "x.svg")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "the prompt is empty" in err and 'phyt2v plan "a rubber ball' in err
    assert not (tmp_path / "x.svg").exists()
