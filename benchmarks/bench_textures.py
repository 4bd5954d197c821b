"""Texture benchmark: seams, statistics distance to each family's exemplars (GAN vs Perlin with matched colours),
diversity, stride-frequency peaks, and generation speed; and (--packs) pack write time per format and DDS size
against PNG.

    python benchmarks/bench_textures.py              # tables + benchmarks/results/textures-<device>.json
    python benchmarks/bench_textures.py --smoke      # few samples, tiny sizes: checks the script, writes nothing
    python benchmarks/bench_textures.py --packs      # pack formats only -> results/texture-packs-<device>.json

Statistics and stride peaks: srkit/pipelines/texture_realism.py says how they are taken (--samples textures of 64 px
against as many crops of the family's exemplars, normalised by the distance between families; --peak-samples
textures of 256 px, and each exemplar whole).
Seam scores are given against all interior lines (as defined) and against the lines of the generator's grid.
Quilting (from scikit-image's 512 px brick) is timed and its seams scored beside the GAN and noise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table, time_call, write_results  # noqa: E402

from srkit.models.generators import FAMILIES  # noqa: E402
from srkit.pipelines import texture_realism as quality  # noqa: E402
from srkit.pipelines.textures import PackOptions, write_pack  # noqa: E402
from srkit.synth import measures, noise  # noqa: E402
from srkit.texture_generator import TextureGenerator  # noqa: E402
from srkit.train.exemplar_sources import resolve  # noqa: E402

CLOSER_BAR = 1.5  # issue 20: Perlin's distance over the GAN's, per family
PEAK_BAR = 6.0  # issue 20: every stride-frequency peak of every family
QUILT_EXEMPLAR = "$SKIMAGE_DATA/brick.png"  # 512 px: quilting's slow case (its FFTs are exemplar-sized)
UPSCALER = "realesr-animevideov3"  # x4, no output resize: keeps power-of-two sizes and wraps
PACK_CASES = (  # (label, PackOptions fields); the first is the baseline of the size column
    ("png", {}),
    ("png + mips", dict(mipmaps=True)),
    ("dds bc7", dict(format="dds")),
    ("dds bc7 + mips", dict(format="dds", mipmaps=True)),
    ("dds bc1 + mips", dict(format="dds", compression="bc1", mipmaps=True)),
    ("dds none + mips", dict(format="dds", compression="none", mipmaps=True)),
    ("png pbr + mips", dict(pbr=True, mipmaps=True)),
    ("dds pbr + mips", dict(format="dds", pbr=True, mipmaps=True)),
)


def peak_rows(count: int) -> list[dict]:
    """Stride-frequency peaks per family: of `count` 256 px textures, and of each of its exemplars whole."""
    rows = []
    for family in FAMILIES:
        installed = quality.has_training_data(family.name)
        exemplars = quality.exemplar_peaks(quality.training_data(family.name)) if installed else {}
        rows.append(
            {
                "family": family.name,
                "count": count,
                "gan": quality.family_peaks(family.name, count),
                "exemplars": exemplars,
            }
        )
    return rows


def print_peaks(rows: list[dict]) -> None:
    """The GAN's peak at each stride frequency, and the range over the family's exemplars."""
    frequencies = measures.STRIDE_FREQUENCIES
    print(f"\n{'stride peak':<12} {'source':<22} " + " ".join(f"{'f=1/' + str(round(1 / f)):>12}" for f in frequencies))
    for row in rows:
        verdict = "meets" if max(row["gan"].values()) <= PEAK_BAR else "misses"
        print(
            f"{row['family']:<12} {'GAN, ' + str(row['count']) + ' x 256 px':<22} "
            + " ".join(f"{row['gan'][f]:>12.1f}" for f in frequencies)
            + f"   ({verdict} the <= {PEAK_BAR:g} bar)"
        )
        if row["exemplars"]:
            cells = [
                f"{min(p[f] for p in row['exemplars'].values()):.1f}-{max(p[f] for p in row['exemplars'].values()):.1f}"
                for f in frequencies
            ]
            label = f"exemplars ({len(row['exemplars'])}, whole)"
            print(f"{row['family']:<12} {label:<22} " + " ".join(f"{c:>12}" for c in cells))


def seam_rows(sources: dict[str, TextureGenerator], size: int, count: int) -> list[dict]:
    """Per-texture maximum and pooled seam score of `count` textures of `size` from every source, against all
    interior lines and against the generator's grid lines."""
    rows = []
    for name, generator in sources.items():
        images = [generator.generate(size, seed) for seed in range(count)]
        for period in sorted({1, generator.seam_period(size)}):
            scores = [measures.seam_score(image, period) for image in images]
            rows.append(
                {
                    "source": name,
                    "size": size,
                    "count": count,
                    "period": period,
                    "max": max(scores),
                    "mean": float(np.mean(scores)),
                    "pooled": measures.pooled_seam_score(images, period),
                }
            )
    return rows


def speed_rows(
    sources: dict[str, TextureGenerator], sizes: tuple[int, ...], device: torch.device, reps: int
) -> list[Row]:
    """Textures per second of each source at each size (median of `reps` after one warm-up)."""
    rows = []
    for size in sizes:
        for name, generator in sources.items():
            if size < generator.min_size:
                continue
            timing = time_call(partial(generator.generate, size, 0), device, warmup=1, reps=reps)
            rows.append(Row(f"{size}x{size}", name, timing, note=f"{1000.0 / timing.median_ms:.2f} textures/s"))
    return rows


def pack_rows(count: int, size: int, reps: int) -> list[Row]:
    """Wall time of writing a pack of `count` stone-coloured Perlin textures of `size` per format (generation
    included: the first row times generation alone), and the bytes of its maps (manifest, preview left out)."""
    generator = TextureGenerator(method="perlin", colormap="stone", device="cpu")
    case = f"pack of {count} x {size}x{size}"
    rows = [
        Row(
            case,
            "generate only",
            time_call(
                lambda: [generator.generate(size, s) for s in range(count)], torch.device("cpu"), warmup=0, reps=reps
            ),
        )
    ]
    baseline = None
    with tempfile.TemporaryDirectory() as tmp:
        for label, fields in PACK_CASES:
            pack = Path(tmp) / label.replace(" ", "_").replace("+", "")
            options = PackOptions(count=count, size=size, overwrite=True, **fields)
            with contextlib.redirect_stderr(io.StringIO()):  # the per-pack summary line
                timing = time_call(
                    partial(write_pack, generator, pack, options), torch.device("cpu"), warmup=0, reps=reps
                )
            maps = sum(p.stat().st_size for p in pack.iterdir() if p.name not in ("manifest.json", "preview.png"))
            baseline = baseline or maps
            rows.append(
                Row(
                    case,
                    label,
                    timing,
                    note=f"{maps / 1e6:.2f} MB of maps, {maps / baseline:.2f}x png",
                    extra=dict(map_bytes=maps),
                )
            )
    return rows


def print_statistics(stats: list[dict]) -> None:
    """Raw distances (colour, spectrum, gram), the normalised mean, and diversity, per family and source."""
    print(f"\n{'family':<8} {'source':<11} {'colour':>8} {'spectrum':>9} {'gram':>8} {'distance':>9} {'diversity':>10}")
    for entry in stats:
        if "note" in entry:
            print(f"{entry['family']:<8} {entry['note']}")
            continue
        labels = {"floor": "exemplars", "gan": "GAN", "perlin": f"Perlin f{entry['perlin_frequency']}"}
        for source, label in labels.items():
            d, overall = entry["distances"][source], entry["overall"][source]
            div = entry["diversity"]["exemplars" if source == "floor" else source]
            print(
                f"{entry['family']:<8} {label:<11} {d['colour']:>8.4f} {d['spectrum']:>9.4f} {d['gram']:>8.4f} "
                f"{overall if overall is not None else float('nan'):>9.3f} {div:>10.4f}"
            )
        if entry["overall"]["gan"] is not None:
            ratio = entry["overall"]["perlin"] / entry["overall"]["gan"]
            print(
                f"{entry['family']:<8} GAN {ratio:.2f}x closer to the exemplars than Perlin "
                f"({'meets' if ratio >= CLOSER_BAR else 'misses'} the {CLOSER_BAR}x bar)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256, help="textures per statistic (256)")
    parser.add_argument("--peak-samples", type=int, default=16, help="256 px textures per stride peak (16)")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per speed case (3)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny run to check the script; writes nothing")
    parser.add_argument("--packs", action="store_true", help="only pack write time per format and DDS size vs PNG")
    parser.add_argument("--pack-size", type=int, default=512, help="texture side for --packs (512)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.packs:
        count, size = (2, 64) if args.smoke else (8, args.pack_size)
        rows = pack_rows(count, size, 1 if args.smoke else args.reps)
        print_table("Texture pack writing on cpu (one call = the whole pack)", rows)
        if not args.smoke:
            config = dict(count=count, size=size, source="perlin/stone", torch_threads=torch.get_num_threads())
            print(f"results: {write_results('texture-packs', torch.device('cpu'), rows, config)}")
        return 0
    count, sizes, seam_size = (4, (64,), 64) if args.smoke else (args.samples, (256, 1024), 256)
    start = time.perf_counter()
    stats = quality.family_statistics(count, device)
    print_statistics(stats)
    peaks = peak_rows(2 if args.smoke else args.peak_samples)
    print_peaks(peaks)

    sources = {m: TextureGenerator(method=m, colormap="stone", device=device) for m in noise.METHODS}
    sources |= {f"gan {f.name}": TextureGenerator(family=f.name, device=device) for f in FAMILIES}
    sources["quilt brick"] = TextureGenerator(exemplar=resolve(QUILT_EXEMPLAR), device=device)
    seams = seam_rows(sources, seam_size, 4 if args.smoke else 16)
    upscaled = {f"gan stone + {UPSCALER}": TextureGenerator(family="stone", device=device, upscale=UPSCALER)}
    seams += seam_rows(upscaled, 4 * seam_size, 2 if args.smoke else 4)
    print(f"\n{'seam score':<40} {'size':>5} {'n':>3} {'grid':>4} {'max':>6} {'mean':>6} {'pooled':>7}")
    for s in seams:
        print(
            f"{s['source']:<40} {s['size']:>5} {s['count']:>3} {s['period']:>4} {s['max']:>6.3f} {s['mean']:>6.3f} "
            f"{s['pooled']:>7.3f}"
        )

    speed_sources = {m: sources[m] for m in noise.METHODS} | {"gan stone": sources["gan stone"]} | upscaled
    speed_sources["quilt brick"] = sources["quilt brick"]
    rows = speed_rows(speed_sources, sizes, device, 1 if args.smoke else args.reps)
    print_table(f"Texture generation on {device.type} (one texture per call)", rows)
    print(f"\nbenchmark took {time.perf_counter() - start:.0f} s")
    if not args.smoke:
        config = dict(
            samples=count,
            stats_size=quality.STATS_SIZE,
            seam_size=seam_size,
            sizes=sizes,
            upscaler=UPSCALER,
            torch_threads=torch.get_num_threads(),
            statistics=stats,
            stride_peaks=[
                dict(
                    row,
                    gan={str(f): v for f, v in row["gan"].items()},
                    exemplars={name: {str(f): v for f, v in p.items()} for name, p in row["exemplars"].items()},
                )
                for row in peaks
            ],
            seams=seams,
        )
        print(f"results: {write_results('textures', device, rows, config)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
