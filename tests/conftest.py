import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED} (benchmark files and sample videos live there)")
    return SHARED


@pytest.fixture
def sample_videos(shared_dir) -> list[Path]:
    vids = sorted((shared_dir / "videos").glob("*.mp4"))
    if not vids:
        pytest.skip("no sample videos in ../shared/videos")
    return vids
