"""The errors of video input and output, and the one place FFmpeg's and the OS's errors become a srkit line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import av
import av.error

from ...errors import SrkitError


class VideoError(SrkitError):
    """A video srkit cannot read or write (no video stream, unsupported codec, corrupt container)."""


class OutputPlanError(VideoError):
    """The output cannot be made as asked (codec, pixel format, container, streams); found before any work."""

    exit_code = 2


@contextlib.contextmanager
def ffmpeg_errors(context: str) -> Iterator[None]:
    """Within the block, an FFmpeg or OS error becomes a VideoError reading '`context`: the error' (srkit's own
    errors pass unchanged): a full disk or a broken stream is one line naming the files, never a traceback."""
    try:
        yield
    except (av.error.FFmpegError, OSError) as error:
        if isinstance(error, SrkitError):
            raise
        raise VideoError(f"{context}: {error}") from error
