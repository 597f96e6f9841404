"""Read and write mp4 files with imageio + imageio-ffmpeg (a static ffmpeg ships in the wheel)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import VideoError, first_line


@dataclass
class VideoInfo:
    num_frames: int
    fps: float
    width: int
    height: int


def _reader(path: Path, size: tuple[int, int] | None = None):
    import imageio.v2 as iio

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"video is empty (0 bytes): {path}")
    try:
        if size is None:
            return iio.get_reader(str(path), format="ffmpeg")
        return iio.get_reader(str(path), format="ffmpeg", size=size, pixelformat="rgb24")
    except Exception as e:  # imageio raises several types for corrupt input
        raise VideoError(f"cannot open video {path}: {first_line(e)}") from None


_SHARED: dict[tuple, tuple[list[np.ndarray], float]] = {}
_SHARED_DEPTH = [0]
_SHARED_LOCK = threading.RLock()


@contextmanager
def shared_reads() -> Iterator[None]:
    """Within this block each video file is decoded once per ``size``: several scorers of one video (an ensemble)
    share the frames. Keyed by path, size, and the file's size and modification time; forgotten when the
    outermost block ends. The frames returned are shared: read them, never change them in place."""
    with _SHARED_LOCK:
        _SHARED_DEPTH[0] += 1
    try:
        yield
    finally:
        with _SHARED_LOCK:
            _SHARED_DEPTH[0] -= 1
            if not _SHARED_DEPTH[0]:
                _SHARED.clear()


def read_frames(path: str | Path, size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], float]:
    """All frames as HxWx3 uint8 RGB arrays (grayscale is expanded), and the fps. ``size`` (w, h)
    has ffmpeg scale every frame to exactly that size, aspect ratio not kept. Inside ``shared_reads()`` a
    second read of the same file and size returns the first read's frames.

    A decode error part-way, or clearly fewer frames than the container's duration and frame rate
    promise (a truncated file still opens when its index is at the front), is a ``VideoError``."""
    path = Path(path)
    if not _SHARED_DEPTH[0]:
        return _decode(path, size)
    try:
        st = path.stat()
        key = (str(path.resolve()), size, st.st_size, st.st_mtime_ns)
    except OSError:
        return _decode(path, size)  # missing: the decoder says so
    with _SHARED_LOCK:
        hit = _SHARED.get(key)
    if hit is None:
        hit = _decode(path, size)
        with _SHARED_LOCK:
            if _SHARED_DEPTH[0]:
                _SHARED[key] = hit
    return hit


def _decode(path: Path, size: tuple[int, int] | None) -> tuple[list[np.ndarray], float]:
    reader = _reader(path, size)
    frames: list[np.ndarray] = []
    try:
        meta = reader.get_meta_data()
        fps = float(meta.get("fps") or 0.0)
        for fr in reader:
            fr = np.asarray(fr)
            if fr.ndim == 2:
                fr = np.stack([fr] * 3, axis=-1)
            elif fr.shape[-1] == 4:
                fr = fr[..., :3]
            elif fr.shape[-1] == 1:
                fr = np.repeat(fr, 3, axis=-1)
            frames.append(np.ascontiguousarray(fr.astype(np.uint8)))
    except VideoError:
        raise
    except Exception as e:
        what = f"after {len(frames)} frames" if frames else "at the first frame"
        raise VideoError(f"video is truncated or corrupt: decoding failed {what} "
                         f"({type(e).__name__}: {first_line(e)}): {path}; regenerate or re-encode it") from None
    finally:
        reader.close()
    if not frames:
        raise VideoError(f"video has no frames: {path}")
    check_complete(path, len(frames), fps, float(meta.get("duration") or 0.0))
    return frames, fps


def expected_frames(fps: float, duration: float) -> int | None:
    """The frame count the container's duration and frame rate promise, when it states both."""
    if not (fps > 0 and duration > 0) or duration == float("inf"):
        return None
    return round(fps * duration)


def check_complete(path: Path, decoded: int, fps: float, duration: float) -> None:
    """A short read (a cut-off file) is an error; a frame or two of rounding, or 10%, is not."""
    want = expected_frames(fps, duration)
    if want is not None and want - decoded > max(2, 0.1 * want):
        raise VideoError(f"video is truncated or corrupt: {decoded} of the {want} frames its container "
                         f"declares ({duration:g} s at {fps:g} fps) could be decoded: {path}; "
                         "regenerate or re-encode it")


def probe(path: str | Path) -> VideoInfo:
    frames, fps = read_frames(path)
    h, w = frames[0].shape[:2]
    return VideoInfo(num_frames=len(frames), fps=fps, width=w, height=h)


def uniform_indices(n: int, k: int) -> list[int]:
    """``k`` frame indices spread evenly over ``n`` frames (centre of each segment)."""
    if n <= 0:
        raise VideoError("cannot sample frames from a video with no frames")
    if k <= 0:
        raise ValueError("k must be positive")
    seg = n / k
    return [min(n - 1, int(seg * i + seg / 2)) for i in range(k)]


def sample_frames(path: str | Path, k: int) -> list[np.ndarray]:
    frames, _ = read_frames(path)
    return [frames[i] for i in uniform_indices(len(frames), k)]


def frames_at(path: str | Path, fractions: Sequence[float]) -> list[np.ndarray]:
    """The frames at these fractions of the video's length (0: the first frame, 1: the last), nearest frame each."""
    frames, _ = read_frames(path)
    last = len(frames) - 1
    return [frames[min(last, max(0, round(float(x) * last)))] for x in fractions]


def write_video(frames: Sequence, path: str | Path, fps: int) -> Path:
    """Write frames (PIL images, HxWx3 uint8 arrays, or float arrays in [0, 1]) to an mp4."""
    import imageio.v2 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = []
    for fr in frames:
        a = np.asarray(fr)
        if a.dtype != np.uint8:
            a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        arrays.append(a[..., :3])
    if not arrays:
        raise VideoError(f"no frames to write to {path}")
    tmp = path.with_name(path.stem + ".partial.mp4")
    # macro_block_size=1 keeps tiny sizes (16x16) exact; yuv420p needs even sizes, so pad odd ones.
    h, w = arrays[0].shape[:2]
    if h % 2 or w % 2:
        arrays = [np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") for a in arrays]
    with iio.get_writer(str(tmp), format="ffmpeg", fps=fps, codec="libx264", quality=8,
                        macro_block_size=1, pixelformat="yuv420p") as w_:
        for a in arrays:
            w_.append_data(a)
    tmp.replace(path)
    return path


def video_problem(path: Path) -> str | None:
    """Why a generated mp4 cannot be used (missing, empty, not an mp4, cut short), or None. Walks the
    top-level boxes only (no decoding): a file cut mid-write has a box running past its end."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    types, pos = [], 0
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                return "cut short"
            n, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if n == 1 and len(head) == 16:
                n = int.from_bytes(head[8:16], "big")
            elif n == 0:
                n = size - pos
            if n < 8 or pos + n > size:
                return "cut short"
            types.append(kind)
            pos += n
    if not types or types[0] != b"ftyp" or b"moov" not in types:
        return "not a complete mp4 (no header)"
    return None
