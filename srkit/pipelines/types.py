"""The types the pipelines share (a leaf: it imports no pipeline): a planned job, a run's summary, the batch and
write options, and where units of work run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import SrkitError
from ..io.video.output import OutputPlan
from ..io.video.probe import VideoInfo

PHOTO, ANIMATION, VIDEO = "photo", "animated image", "video"


@dataclass(frozen=True)
class Job:
    """One input, what kind of input it is, and the path its upscaled copy goes to."""

    source: Path
    target: Path
    kind: str = PHOTO
    info: VideoInfo | None = field(default=None, compare=False)
    """A video's probe, made once while planning and handed to the video pipeline."""
    output: OutputPlan | None = field(default=None, compare=False)
    """A video's output plan (codec, container, streams), made once while planning and handed on likewise."""


@dataclass(frozen=True)
class WriteOptions:
    """How each input is read and its output written, whatever its kind (photo, animation, video)."""

    quality: int = 95
    """JPEG / WebP quality."""
    compare: bool = False
    """Also write a before/after crop beside each photo."""
    overwrite: bool = False
    """Replace an output that exists (else an existing output is an error, or skipped: BatchOptions)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Refuse images with more pixels (decompression-bomb guard)."""


@dataclass(frozen=True)
class BatchOptions:
    """Which files a batch takes and what their outputs are called, and how each is written."""

    format: str = "keep"
    """Output image format (keep: the input's); it names the output's extension."""
    suffix: str = ""
    """Added to each output file name before the extension."""
    skip_existing: bool = False
    """Leave outputs that exist (resume a run)."""
    recursive: bool = True
    """Descend into sub-folders of folder inputs."""
    write: WriteOptions = WriteOptions()


@dataclass
class Summary:
    """What a run did, file by file."""

    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    retried: list[tuple[Path, str]] = field(default_factory=list)
    """Photos whose worker was lost and that went to another one, with why (pipelines.scaleout)."""
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """The command's exit status: 1 when a file failed, else 0."""
        return 1 if self.failed else 0


class ScaleOutError(SrkitError):
    """--workers / --devices / --backend options that cannot work here: one line, like a bad option."""

    exit_code = 2


@dataclass(frozen=True)
class ScaleOut:
    """Where units run: 'local' (this process when workers == 1, else worker processes) or 'ray'."""

    backend: str = "local"
    workers: int = 1
    """Ray only: 0 means one actor per GPU of the cluster on CUDA, else one actor."""
    devices: tuple[str, ...] = ()
    """One worker per device where given (cuda:0, cuda:1, ...); empty: the request's device for every worker."""
    ray_address: str | None = None

    @property
    def parallel(self) -> bool:
        """Whether units leave this process (worker processes or Ray), so they must pickle."""
        return self.backend != "local" or self.workers > 1


LOCAL = ScaleOut()  # units run in this process
