"""What srkit runs on: package versions, PyAV's FFmpeg and encoders, compute devices and the kernel backend
(for `srkit info`)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import av
import torch

from . import __version__, kernels
from .engine import cpu_backend
from .io.video.output import available_encoders

# Distribution names whose versions matter when reporting a problem.
DEPENDENCIES = ("torch", "triton", "numpy", "av", "pillow", "opencv-python-headless", "tqdm", "safetensors", "openvino")

# Video encoders worth naming first in `srkit info` (any other one the build carries works with --codec too).
NOTABLE_ENCODERS = (
    "libx264",
    "libx265",
    "libsvtav1",
    "libvpx-vp9",
    "ffv1",
    "prores_ks",
    "h264_nvenc",
    "hevc_nvenc",
    "av1_nvenc",
)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def default_device() -> torch.device:
    """The device srkit uses when none is given: the first CUDA GPU, else the CPU."""
    return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")


def devices() -> list[str]:
    """One line per compute device srkit can use."""
    lines = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        lines.append(
            f"cuda:{index} {props.name}, {props.total_memory / 2**30:.1f} GiB, "
            f"compute capability {props.major}.{props.minor}"
        )
    lines.append(
        f"cpu {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"{torch.get_num_threads()} torch threads"
    )
    return lines


def encoders() -> str:
    """The video encoders of PyAV's FFmpeg build: the notable ones by name, then how many others."""
    found = available_encoders()
    named = [name for name in NOTABLE_ENCODERS if name in found]
    return (
        f"{', '.join(named)} and {len(found) - len(named)} more "
        "(--codec takes any; *_nvenc, *_qsv, *_amf need that hardware)"
    )


def report() -> list[tuple[str, str]]:
    """(label, value) rows describing this installation."""
    device = default_device()
    rows = [("srkit", __version__), ("python", sys.version.split()[0]), ("platform", platform.platform())]
    rows += [(name, _version(name)) for name in DEPENDENCIES]
    rows.append(("ffmpeg (in av)", av.ffmpeg_version_info))
    rows.append(("video encoders", encoders()))
    rows.append(("torch cuda", torch.version.cuda or "none (CPU build)"))
    rows += [("device", line) for line in devices()]
    rows.append(("default device", str(device)))
    rows.append(("kernel backend", kernels.describe_backend(device)))
    rows.append(("cpu backend", cpu_backend.describe()))
    return rows
