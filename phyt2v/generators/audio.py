"""An audio track (LTX-2's) muxed into a round's mp4 as AAC, with the ffmpeg imageio ships
(``imageio_ffmpeg.get_ffmpeg_exe()``); the video stream is copied, not re-encoded. The waveform is fitted to the
video's length first (cut, or padded with silence), so the container's duration stays the frames' and readers
that check it (``store.video_io.read_frames``) see a whole video. ``probe_audio`` reads the stream back."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError

BITRATE = "192k"


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM, ``samples`` as (n, channels) floats in [-1, 1]."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())


def mux_audio(video: str | Path, samples: Any, rate: int, seconds: float) -> dict[str, Any]:
    """Replace ``video`` (atomically) by a copy with ``samples`` ((n,) or (n, channels), floats in [-1, 1] at
    ``rate`` Hz) as an AAC stream ``seconds`` long; returns what the round records about it."""
    video = Path(video)
    data = np.asarray(samples, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data
    n = max(1, int(round(seconds * rate)))
    data = data[:n] if len(data) >= n else np.concatenate([data, np.zeros((n - len(data), data.shape[1]), np.float32)])
    fd, tmp_name = tempfile.mkstemp(prefix=".audio-", suffix=".mp4", dir=video.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    wav = tmp.with_suffix(".wav")
    try:
        _write_wav(wav, data, rate)
        cmd = [_ffmpeg(), "-y", "-v", "error", "-i", str(video), "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0",
               "-c:v", "copy", "-c:a", "aac", "-b:a", BITRATE, "-movflags", "+faststart", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise BackendError(f"could not mux the audio into {video}: ffmpeg says "
                               f"{(done.stderr.strip().splitlines() or ['nothing'])[-1]}")
        os.replace(tmp, video)
    finally:
        tmp.unlink(missing_ok=True)
        wav.unlink(missing_ok=True)
    return {"codec": "aac", "sample_rate": int(rate), "channels": int(data.shape[1]), "seconds": round(n / rate, 4)}


def probe_audio(path: str | Path) -> dict[str, Any] | None:
    """The first audio stream of a media file as ffmpeg reports it (codec, sample rate, channel layout), or None."""
    done = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60)
    m = re.search(r"Stream #\S+: Audio: (\w+)[^,]*, (\d+) Hz, ([\w.()]+)", done.stderr)
    if m is None:
        return None
    return {"codec": m.group(1), "sample_rate": int(m.group(2)), "layout": m.group(3)}
