"""The output policy (io/video/output.py): an impossible encoder is refused before any work, naming the
ones there are."""

from __future__ import annotations

import pytest

from srkit.io.video.errors import VideoError
from srkit.io.video.output import EncodeSettings, plan_output
from srkit.io.video.probe import probe

from ._clips import BUNNY


def test_an_encoder_this_build_lacks_is_refused_naming_the_ones_it_has(tmp_path):
    with pytest.raises(VideoError, match="encoder 'no_such_codec' is not in this PyAV build; available: .*libx264"):
        plan_output(tmp_path / "x.mp4", probe(BUNNY), EncodeSettings(codec="no_such_codec"))
