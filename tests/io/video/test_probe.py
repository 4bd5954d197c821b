"""Probing (io/video/probe.py): what a real clip holds, and one-line refusals naming the file."""

from __future__ import annotations

import av
import numpy as np
import pytest

from srkit.io.video.errors import VideoError
from srkit.io.video.probe import probe

from ._clips import BUNNY


def test_probe_reads_the_real_clip():
    info = probe(BUNNY)
    assert (info.width, info.height, info.frames, info.average_rate) == (1280, 720, 132, 25)
    assert (info.codec, info.matrix, info.full_range, info.deep, info.rotation) == ("h264", "itu709", False, False, 0)


def test_refusals_name_the_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(VideoError, match="notes.mp4: cannot open"):
        probe(text)
    audio_only = tmp_path / "audio.mka"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoError, match="has no video stream"):
        probe(audio_only)
