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


@pytest.fixture(scope="session")
def truncated_video(tmp_path_factory) -> Path:
    """A real mp4 from ../shared/videos with its index moved to the front (so it still opens),
    cut to 60% of its bytes: a download or a write that stopped part-way."""
    import subprocess

    import imageio_ffmpeg

    vids = sorted((SHARED / "videos").glob("An_apple*.mp4")) if SHARED.is_dir() else []
    if not vids:
        pytest.skip("no sample videos in ../shared/videos")
    d = tmp_path_factory.mktemp("truncated")
    whole = d / "whole.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(vids[0]), "-c", "copy",
                    "-movflags", "+faststart", str(whole)], check=True)
    data = whole.read_bytes()
    cut = d / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    return cut


@pytest.fixture(scope="session")
def tiny_owl(tmp_path_factory) -> Path:
    """One tiny random-weight mPLUG-Owl-Video checkpoint (safetensors) for the whole session;
    tests only read it (copy it before changing anything)."""
    pytest.importorskip("torch")
    from phyt2v.scorers.mplug_owl.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("owl") / "tiny")
