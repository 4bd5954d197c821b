"""Texture benchmark: seams, statistics distance to each family's exemplars (GAN vs Perlin with matched colours),
diversity, and generation speed; and (--packs) pack write time per format and DDS size against PNG.

    python benchmarks/bench_textures.py              # tables + benchmarks/results/textures-<device>.json
    python benchmarks/bench_textures.py --smoke      # few samples, tiny sizes: checks the script, writes nothing
    python benchmarks/bench_textures.py --packs      # pack formats only -> results/texture-packs-<device>.json

Statistics (srkit/synth/measures.py) compare --samples textures of 64 px (the training crop size) with as many
random 64 px crops of the exemplars the family was trained on (read from its weights' metadata); a second,
independent set of crops gives the floor (what the measure reads for the exemplars themselves). The baseline is
Perlin noise coloured with the exemplars' own colours (palette from their luminance-sorted pixels), its base
frequency (2, 4 or 8 cells across) chosen per family for the closest spectrum. The three measures have
different units, so each is divided by its mean distance between this family's exemplars and the other
families' (how far apart texture families are on it); the statistics distance is the mean of the three.
Seam scores are given against all interior lines (as defined) and against the lines of the generator's grid.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table, time_call, write_results  # noqa: E402

from srkit.models.generators import FAMILIES  # noqa: E402
from srkit.pipelines.textures import PackOptions, write_pack  # noqa: E402
from srkit.models.weights import read_weights  # noqa: E402
from srkit.synth import measures, noise  # noqa: E402
from srkit.texture_generator import TextureGenerator  # noqa: E402
from srkit.train.exemplars import CropSampler, load_exemplars  # noqa: E402

STATS_SIZE = 64
PERLIN_FREQUENCIES = (2, 4, 8)
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


def _u8(image: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def exemplar_crops(paths: list[str], count: int, seed: int) -> list[np.ndarray]:
    """`count` random STATS_SIZE crops (uint8 HWC) of the exemplars, as training samples them."""
    sampler = CropSampler(load_exemplars(paths), STATS_SIZE, torch.Generator().manual_seed(seed))
    return [_u8(crop.permute(1, 2, 0).numpy()) for crop in sampler.batch(count)]


def perlin_matched(crops: list[np.ndarray], reference: measures.TextureStats, count: int) -> tuple[list, int]:
    """Perlin textures with the exemplars' colours, at the base frequency whose spectrum is closest."""
    palette = noise.palette_from_image(np.concatenate([c.reshape(-1, 3) for c in crops]) / 255.0)
    best = None
    for frequency in PERLIN_FREQUENCIES:
        images = [_u8(noise.noise_texture("perlin", STATS_SIZE, seed, palette, frequency)) for seed in range(count)]
        spectrum = measures.stats_distance(measures.texture_stats(images), reference)["spectrum"]
        if best is None or spectrum < best[0]:
            best = (spectrum, images, frequency)
    return best[1], best[2]


def training_data(family: str) -> list[str]:
    """The exemplar files a built-in family was trained on (from its weights' metadata; $SKIMAGE_DATA there is
    the installed scikit-image's data folder)."""
    _, metadata = read_weights(next(f.path for f in FAMILIES if f.name == family))
    skimage_data = str(Path(skimage.__file__).parent / "data")
    return [path.replace("$SKIMAGE_DATA", skimage_data) for path in metadata["training"]["data"]]


def family_statistics(count: int) -> list[dict]:
    """Per family: normalised distances of GAN and matched Perlin samples (and the floor), and diversities."""
    crops, entries = {}, []
    for family in FAMILIES:
        missing = [p for p in training_data(family.name) if not Path(p).is_file()]
        if missing:
            entries.append({"family": family.name, "note": f"exemplars not installed here ({missing[0]})"})
        else:
            crops[family.name] = exemplar_crops(training_data(family.name), count, 0)
    references = {name: measures.texture_stats(images) for name, images in crops.items()}
    for name, reference in references.items():
        others = [measures.stats_distance(references[other], reference) for other in references if other != name]
        scale = {key: float(np.mean([d[key] for d in others])) for key in others[0]} if others else None
        generator = TextureGenerator(family=name, device="cpu")
        gan = [generator.generate(STATS_SIZE, seed) for seed in range(count)]
        perlin, frequency = perlin_matched(crops[name], reference, count)
        again = exemplar_crops(training_data(name), count, 1)
        distances = {source: measures.stats_distance(measures.texture_stats(images), reference)
                     for source, images in (("gan", gan), ("perlin", perlin), ("floor", again))}
        normalised = {source: {key: value / scale[key] for key, value in d.items()} if scale else None
                      for source, d in distances.items()}
        overall = {source: float(np.mean(list(n.values()))) if n else None for source, n in normalised.items()}
        entries.append({"family": name, "exemplars": [Path(p).name for p in training_data(name)],
                        "perlin_frequency": frequency, "scale": scale, "distances": distances,
                        "normalised": normalised, "overall": overall,
                        "diversity": {"gan": measures.diversity(gan[:16]), "perlin": measures.diversity(perlin[:16]),
                                      "exemplars": measures.diversity(crops[name][:16])}})
    return entries


def seam_rows(sources: dict[str, TextureGenerator], size: int, count: int) -> list[dict]:
    """Per-texture maximum and pooled seam score of `count` textures of `size` from every source, against all
    interior lines and against the generator's grid lines."""
    rows = []
    for name, generator in sources.items():
        images = [generator.generate(size, seed) for seed in range(count)]
        for period in sorted({1, generator.seam_period(size)}):
            scores = [measures.seam_score(image, period) for image in images]
            rows.append({"source": name, "size": size, "count": count, "period": period, "max": max(scores),
                         "mean": float(np.mean(scores)), "pooled": measures.pooled_seam_score(images, period)})
    return rows


def speed_rows(sources: dict[str, TextureGenerator], sizes: tuple[int, ...], device: torch.device,
               reps: int) -> list[Row]:
    """Textures per second of each source at each size (median of `reps` after one warm-up)."""
    rows = []
    for size in sizes:
        for name, generator in sources.items():
            if size < generator.min_size:
                continue
            timing = time_call(lambda: generator.generate(size, 0), device, warmup=1, reps=reps)
            rows.append(Row(f"{size}x{size}", name, timing, note=f"{1000.0 / timing.median_ms:.2f} textures/s"))
    return rows


def pack_rows(count: int, size: int, reps: int) -> list[Row]:
    """Wall time of writing a pack of `count` stone-coloured Perlin textures of `size` per format (generation
    included: the first row times generation alone), and the bytes of its maps (manifest, preview left out)."""
    generator = TextureGenerator(method="perlin", colormap="stone", device="cpu")
    case = f"pack of {count} x {size}x{size}"
    rows = [Row(case, "generate only", time_call(lambda: [generator.generate(size, s) for s in range(count)],
                                                  torch.device("cpu"), warmup=0, reps=reps))]
    baseline = None
    with tempfile.TemporaryDirectory() as tmp:
        for label, fields in PACK_CASES:
            pack = Path(tmp) / label.replace(" ", "_").replace("+", "")
            options = PackOptions(count=count, size=size, overwrite=True, **fields)
            with contextlib.redirect_stderr(io.StringIO()):  # the per-pack summary line
                timing = time_call(lambda: write_pack(generator, pack, options), torch.device("cpu"), warmup=0,
                                   reps=reps)
            maps = sum(p.stat().st_size for p in pack.iterdir() if p.name not in ("manifest.json", "preview.png"))
            baseline = baseline or maps
            rows.append(Row(case, label, timing, note=f"{maps / 1e6:.2f} MB of maps, {maps / baseline:.2f}x png",
                            extra=dict(map_bytes=maps)))
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
            print(f"{entry['family']:<8} {label:<11} {d['colour']:>8.4f} {d['spectrum']:>9.4f} {d['gram']:>8.4f} "
                  f"{overall if overall is not None else float('nan'):>9.3f} {div:>10.4f}")
        if entry["overall"]["gan"] is not None:
            closer = "GAN" if entry["overall"]["gan"] < entry["overall"]["perlin"] else "Perlin"
            print(f"{entry['family']:<8} {closer} closer to the exemplars")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256, help="textures per statistic (256)")
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
    stats = family_statistics(count)
    print_statistics(stats)

    sources = {m: TextureGenerator(method=m, colormap="stone", device=device) for m in noise.METHODS}
    sources |= {f"gan {f.name}": TextureGenerator(family=f.name, device=device) for f in FAMILIES}
    seams = seam_rows(sources, seam_size, 4 if args.smoke else 16)
    upscaled = {f"gan stone + {UPSCALER}": TextureGenerator(family="stone", device=device, upscale=UPSCALER)}
    seams += seam_rows(upscaled, 4 * seam_size, 2 if args.smoke else 4)
    print(f"\n{'seam score':<40} {'size':>5} {'n':>3} {'grid':>4} {'max':>6} {'mean':>6} {'pooled':>7}")
    for s in seams:
        print(f"{s['source']:<40} {s['size']:>5} {s['count']:>3} {s['period']:>4} {s['max']:>6.3f} {s['mean']:>6.3f} "
              f"{s['pooled']:>7.3f}")

    speed_sources = {m: sources[m] for m in noise.METHODS} | {"gan stone": sources["gan stone"]} | upscaled
    rows = speed_rows(speed_sources, sizes, device, 1 if args.smoke else args.reps)
    print_table(f"Texture generation on {device.type} (one texture per call)", rows)
    print(f"\nbenchmark took {time.perf_counter() - start:.0f} s")
    if not args.smoke:
        config = dict(samples=count, stats_size=STATS_SIZE, seam_size=seam_size, sizes=sizes, upscaler=UPSCALER,
                      torch_threads=torch.get_num_threads(), statistics=stats, seams=seams)
        print(f"results: {write_results('textures', device, rows, config)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
