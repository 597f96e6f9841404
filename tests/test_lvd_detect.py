"""LVD's stage 2 (``phyt2v metrics lvd``): LVD's detection post-processing on hand-made detections, and the whole
path through a tiny random-weight OWL-ViT (saved and loaded back) on a real mp4 in a batch folder."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from phyt2v.batch import folder as batchdir
from phyt2v.batch.lvd import lvd_items
from phyt2v.cli.app import app
from phyt2v.errors import BackendError
from phyt2v.schemas import Keyframe, Layout
from phyt2v.views import lvd_detect as D
from phyt2v.views import lvd_predicates as P

CAR, DOG = "a photo of a car", "a photo of a dog"


def test_class_aware_nms_and_one_box_per_class():
    boxes = np.array([[0.0, 0.0, 0.5, 0.5],     # 0: car .9
                      [0.05, 0.05, 0.55, 0.55],  # 1: car .8, overlaps 0 (IoU .68): dropped
                      [0.6, 0.6, 0.9, 0.9],      # 2: car .7, apart: kept
                      [0.0, 0.0, 0.5, 0.5],      # 3: dog .5, on car 0 but another label: kept
                      [0.45, 0.0, 0.95, 0.5]])   # 4: car .75, IoU with 0 is .053 (< .1): kept
    scores = np.array([0.9, 0.8, 0.7, 0.5, 0.75])
    labels = np.array([0, 0, 0, 1, 0])
    assert D.class_aware_nms(boxes, scores, labels) == [0, 4, 2, 3]
    assert D.best_per_label([0, 4, 2, 3], scores, labels) == [0, 3]
    objs = D.frame_objects(boxes, scores, labels, [CAR, DOG], one_box_per_class=False, size=(48, 64))
    assert [(o.id, o.name) for o in objs] == [(0, CAR), (1, CAR), (2, CAR), (100, DOG)]
    assert objs[1].box == pytest.approx([29 / 64, 0.0, 61 / 64, 24 / 48])  # rounded to whole pixels
    one = D.frame_objects(boxes, scores, labels, [CAR, DOG], one_box_per_class=True, size=(48, 64))
    assert [o.id for o in one] == [0, 100]


def test_frame_indices_are_lvds():
    assert D.frame_indices(49) == [0, 10, 19, 29, 38, 48]
    assert D.frame_indices(9) == [0, 2, 3, 5, 6, 8]


def test_detections_feed_the_same_predicates():
    meta = lvd_items()[350][1]  # a bird moving from the left of a car to its right
    queries = meta["queries"]

    def frames(bird_xs):
        out = []
        for k, x in enumerate(bird_xs):
            boxes = np.array([[x, 0.1, x + 0.1, 0.2], [0.45, 0.6, 0.55, 0.7]])
            objs = D.frame_objects(boxes, np.array([0.3, 0.4]), np.array([0, 1]), queries, True, (256, 256))
            out.append(Keyframe(t=k / 2, objects=objs))
        return Layout(keyframes=out)

    assert P.check(frames([0.05, 0.2, 0.35, 0.5, 0.65, 0.8]), meta)
    assert not P.check(frames([0.8, 0.65, 0.5, 0.35, 0.2, 0.05]), meta)


@pytest.fixture(scope="module")
def tiny_owlvit(tmp_path_factory):
    from phyt2v.tiny.owlvit import build_tiny_owlvit

    return build_tiny_owlvit(tmp_path_factory.mktemp("owlvit") / "tiny")


@pytest.mark.slow
def test_tiny_owlvit_detects_on_a_real_frame(tiny_owlvit, sample_videos):
    from phyt2v.store.video_io import read_frames

    det = D.Detector(str(tiny_owlvit), "cpu")
    frames, _ = read_frames(sample_videos[0])
    boxes, scores, labels = det.detect(frames[0], [CAR, DOG])
    assert boxes.shape == (len(scores), 4) and len(labels) == len(scores) > 0
    assert (scores >= D.SCORE_THRESHOLD).all() and (scores <= 1).all() and set(labels) <= {0, 1}


def make_batch(root, video, indices):
    items = lvd_items()
    root.mkdir(parents=True)
    (root / batchdir.BATCH_FILE).write_text(json.dumps({"source": {"name": "lvd", "kind": "lvd"}}))
    lines = []
    for n, i in enumerate(indices):
        run = root / batchdir.RUNS_DIR / f"{i:04d}" / "round-1"
        run.mkdir(parents=True)
        shutil.copy(video, run / "video.mp4")
        rnd = {"index": 1, "prompt": items[i][0], "sa": 0.5, "pc": 0.5, "score": 0.5,
               "video": f"{batchdir.RUNS_DIR}/{i:04d}/round-1/video.mp4"}
        lines.append({"id": f"{i:04d}", "index": i, "prompt": items[i][0], "meta": items[i][1],
                      "status": "finished", "best_round": 1, "rounds": [rnd], "finished": f"2026-01-01T00:00:{n:02d}"})
    lines.append({"id": "0999", "index": 499, "prompt": items[499][0], "meta": items[499][1], "status": "finished",
                  "best_round": 1, "rounds": [{"index": 1, "score": 0.5, "video": "runs/gone.mp4"}],
                  "finished": "2026-01-01T00:01:00"})
    (root / batchdir.RESULTS_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


@pytest.mark.slow
def test_metrics_lvd_through_the_tiny_owlvit(sample_videos, tmp_path, monkeypatch):
    """``--detector tiny``: the tiny OWL-ViT built once into phyt2v's cache (tiny_model_dir) and loaded from it."""
    batch = make_batch(tmp_path / "batch", sample_videos[0], [0, 100, 200, 300, 400])
    calls = []
    real = D.detected_layout
    monkeypatch.setattr(D, "detected_layout", lambda det, video, meta: calls.append(video) or real(det, video, meta))
    res = CliRunner().invoke(app, ["metrics", "lvd", str(batch), "--detector", "tiny", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "lvd" and data["detector"] == "tiny" and data["settings"] == {"score_threshold": 0.1, "nms_threshold": 0.1, "frames": 6}
    assert {t: s["total"] for t, s in data["tasks"].items()} == {"numeracy": 1, "attribution": 1, "visibility": 1,
                                                                 "dynamic_spatial": 1, "sequential": 2}
    assert data["overall"]["total"] == 6 and data["without_video"] == 1
    assert len(calls) == 5 and all(c.name == "video.mp4" for c in calls)


def test_a_detector_that_is_not_there_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="hf download google/owlvit-base-patch32"):
        D.Detector(D.DETECTOR)
    with pytest.raises(BackendError, match="not an OWL-ViT folder"):
        D.Detector(str(tmp_path))
