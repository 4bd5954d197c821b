"""VapourSynth benchmark: fps of srkit.vapoursynth.upscale vs vs-mlrt (ONNX Runtime; OpenVINO where installed).

    python benchmarks/bench_vapoursynth.py                      # table + benchmarks/results/vapoursynth-<device>.json
    python benchmarks/bench_vapoursynth.py --frames 8 --reps 3 --size 320x180 --model realesr-animevideov3

Every filter upscales the same clip (a smooth random RGBS clip, seeded) with the same model: srkit runs its own
plan and blended tiler; vs-mlrt runs srkit's ONNX export of that model (`srkit.models.export.export_onnx`) with
the same tile size and overlap. The runs of the implementations are interleaved (rep 1 of each, then rep 2 of
each, ...), so load from other processes falls on all of them alike, and each rep pulls frames of its own (none
from the core's cache); fps is frames / wall time of pulling them through the core with its default thread
count. Each row also gives the PSNR of its frame 0 against srkit's on the CPU (OpenVINO may pick a lower
inference precision on CPUs with bf16 support). Needs the VapourSynth wheels (Python >= 3.12) and
vapoursynth-mlrt-ort; vapoursynth-mlrt-ov adds the OpenVINO row. Where a GPU is present, CUDA rows too (srkit
on cuda, ort with provider CUDA).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, Timing, print_table, write_results  # noqa: E402

import srkit.vapoursynth as svs  # noqa: E402
from srkit.engine.runner import tile_overlap  # noqa: E402
from srkit.models.export import export_onnx  # noqa: E402
from srkit.models.zoo import load_model  # noqa: E402

core = vs.core


def source_clip(width: int, height: int, frames: int) -> vs.VideoNode:
    """A seeded clip of smooth random RGB frames (random walks along rows), as RGBS."""
    rng = np.random.default_rng(0)
    images = [
        np.clip(np.cumsum(rng.normal(0, 0.04, (height, width, 3)), axis=1) + 0.5, 0, 1).astype(np.float32)
        for _ in range(frames)
    ]
    blank = core.std.BlankClip(width=width, height=height, length=frames, format=vs.RGBS)

    def fill(n, f):
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), images[n][..., p])
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def filters(clip: vs.VideoNode, model: str, onnx: Path, tile: int, overlap: int, cuda: bool) -> dict:
    """Implementation name -> the upscaled clip."""
    made = {
        "srkit cpu": svs.upscale(clip, model, tile=tile, overlap=overlap, device="cpu", reuse_frames=0),
        "vs-mlrt ort cpu": core.ort.Model(
            clip, network_path=str(onnx), provider="CPU", tilesize=[tile, tile], overlap=[overlap, overlap]
        ),
    }
    if hasattr(core, "ov"):
        made["vs-mlrt ov cpu"] = core.ov.Model(
            clip, network_path=str(onnx), device="CPU", tilesize=[tile, tile], overlap=[overlap, overlap]
        )
    if cuda:
        made["srkit cuda"] = svs.upscale(clip, model, tile=tile, overlap=overlap, device="cuda", reuse_frames=0)
        made["vs-mlrt ort cuda"] = core.ort.Model(
            clip, network_path=str(onnx), provider="CUDA", tilesize=[tile, tile], overlap=[overlap, overlap]
        )
    return made


def planes(frame: vs.VideoFrame) -> np.ndarray:
    """A frame's planes as one (H, W, C) array."""
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)], axis=2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of unit-range images (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


def pull(clip: vs.VideoNode, first: int, count: int) -> float:
    """Seconds to request frames first .. first+count-1 through the core (in parallel, as vspipe does); each
    repetition pulls frames of its own, so none comes from the core's frame cache."""
    start = time.perf_counter()
    for _ in clip[first : first + count].frames():
        pass
    return time.perf_counter() - start


def measure(model: str, clip: vs.VideoNode, frames: int, reps: int, tile: int, cuda: bool) -> list[Row]:
    """One row per implementation for `model` on `clip`, repetitions interleaved across implementations."""
    overlap = tile_overlap(load_model(model))
    with tempfile.TemporaryDirectory() as folder:
        onnx = export_onnx(load_model(model), Path(folder) / "model.onnx")
        made = filters(clip, model, onnx, tile, overlap, cuda)
        for node in made.values():  # warm-up (frames of block 0): model load, session creation, first shapes
            pull(node, 0, frames)
        seconds: dict[str, list[float]] = {name: [] for name in made}
        for rep in range(1, reps + 1):
            for name, node in made.items():
                seconds[name].append(pull(node, rep * frames, frames))
        reference = planes(made["srkit cpu"].get_frame(0))
        agreement = {name: psnr(np.clip(planes(node.get_frame(0)), 0, 1), reference) for name, node in made.items()}
    case = f"{model} {clip.width}x{clip.height} x{frames} frames, tile {tile}"
    rows = []
    for name, times in seconds.items():
        per_frame = sorted(1000 * t / frames for t in times)
        timing = Timing(statistics.median(per_frame), per_frame[0], per_frame[-1], len(times))
        fps = 1000 / timing.median_ms
        rows.append(
            Row(
                case,
                name,
                timing,
                note=f"{fps:.2f} fps, {agreement[name]:.1f} dB vs srkit cpu",
                extra={"fps": fps, "overlap": overlap, "psnr_vs_srkit_cpu_db": agreement[name]},
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["srkit-photo-x2", "realesr-animevideov3"])
    parser.add_argument("--size", default="320x180", help="clip WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tile", type=int, default=128, help="tile size in input pixels, for every filter")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    cuda = torch.cuda.is_available()
    clip = source_clip(width, height, args.frames * (args.reps + 1))
    rows = [row for model in args.model for row in measure(model, clip, args.frames, args.reps, args.tile, cuda)]
    print_table(f"VapourSynth filters, {core.num_threads} core threads (ms per frame; p20-p80 is min-max here)", rows)
    device = torch.device("cuda" if cuda else "cpu")
    config = dict(
        models=args.model,
        size=[width, height],
        frames=args.frames,
        reps=args.reps,
        tile=args.tile,
        core_threads=core.num_threads,
        vapoursynth=core.core_version.release_major,
    )
    print(write_results("vapoursynth", device, rows, config))


if __name__ == "__main__":
    main()
