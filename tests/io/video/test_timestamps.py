"""Timestamp repair (io/video/timestamps.py): decoded frames relabelled with increasing presentation times."""

from __future__ import annotations

import av
import numpy as np
import pytest

from srkit.io.video.timestamps import Retimer


@pytest.mark.parametrize(
    "labels,expected",
    [
        ([0, 2, 1, 3, 5, 4], [0, 1, 2, 3, 4, 5]),  # decode-order labels (pts == dts files): sorted
        ([0, 1, 1, 2, 6], [0, 1, 2, 3, 6]),  # a duplicate moves one frame on, and the next one with it
        ([10, 11, 3, 12], [3, 10, 11, 12]),  # a backward jump within the window is sorted in
        ([0, None, 2, 3], [0, 1, 2, 3]),  # a missing timestamp follows the highest seen
        ([0, 40, 50, 130], [0, 40, 50, 130]),  # sane VFR stays as it is
    ],
)
def test_retiming_gives_increasing_presentation_times(labels, expected):
    retimer = Retimer(step=1)
    frames = []
    for label in labels:
        frame = av.VideoFrame(16, 16, "yuv420p")
        frame.pts = label
        frames += retimer.push(frame)
    frames += retimer.flush()
    assert [f.pts for f in frames] == expected
    assert [f.duration for f in frames[:-1]] == list(np.diff(expected))
    assert retimer.repaired == sum(a != b for a, b in zip(labels, expected))
