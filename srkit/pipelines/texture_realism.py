"""How real textures look next to their exemplars (benchmarks/bench_textures.py and the family tests).

- Realism (srkit/synth/realism.py: LBP histograms, a statistic no training optimises) of REALISM_CROP crops of
  REALISM_SIZE textures made by a source (a GAN family, quilting, Perlin noise), against crops of held-out
  exemplar halves: each exemplar's top half is what quilting samples, its bottom half is held out; 0 is the
  top half's own crops, 1 is Perlin noise with the exemplars' colours. (The GAN families saw the whole of their
  exemplars in training, which can only help them here.)
- Statistics distance (srkit/synth/measures.py) of STATS_SIZE textures to as many random crops of the exemplars the
  family was trained on (named in its weights' metadata), against Perlin noise coloured with the exemplars' own
  colours (palette from their luminance-sorted pixels) at the base frequency (2, 4 or 8 cells across) whose
  spectrum is closest, and against a second, independent set of crops (the floor). The three measures have
  different units, so each is divided by its mean distance between this family's exemplars and the other
  families' (how far apart texture families are on it); the statistics distance is the mean of the three.
- Stride-frequency peaks of PEAK_SIZE textures, and of each exemplar whole (its sides cut to multiples of 8).
- Realism per exemplar (`exemplar_entries`): a family of several exemplars judged against each alone, its textures
  of that material (if it has materials) or all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..catalog import FAMILIES
from ..errors import SrkitError
from ..models.weights import read_metadata
from ..synth import measures, noise, quilt, realism
from ..texture_generator import TextureGenerator
from ..train.exemplar_sources import locate
from ..train.exemplars import CropSampler, load_exemplars, read_exemplar

STATS_SIZE = 64  # the training crop size
PEAK_SIZE = 256
PERLIN_FREQUENCIES = (2, 4, 8)
PERLIN_OCTAVES = (4, 6, 8)  # the realism ceiling's Perlin: from smooth to grain at the pixel
REALISM_SIZE = 256  # side of the textures the realism crops are cut from
REALISM_CROP = 64  # side of each crop (the training crop size)
CROPS_PER_TEXTURE = 4


def _u8(image: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def family_weights(family: str, models: dict[str, str] | None = None) -> str:
    """The generator file of `family`: models[family] when given (a candidate from training), else the built-in."""
    return (models or {}).get(family) or str(next(f.path for f in FAMILIES if f.name == family))


def training_data(family: str, models: dict[str, str] | None = None) -> list[str]:
    """The exemplar files a family's generator was trained on, as its weights' metadata names them, on this machine
    (`exemplar_sources.locate`: SrkitError names the package to install where a registry exemplar is missing)."""
    return [str(locate(path)) for path in read_metadata(family_weights(family, models))["training"]["data"]]


def has_training_data(family: str, models: dict[str, str] | None = None) -> bool:
    """Whether every exemplar file a family was trained on is on this machine."""
    try:
        return all(Path(path).is_file() for path in training_data(family, models))
    except SrkitError:
        return False


def exemplar_crops(paths: list[str], count: int, seed: int) -> list[np.ndarray]:
    """`count` random STATS_SIZE crops (uint8 HWC) of the exemplars, as training samples them."""
    sampler = CropSampler(load_exemplars(paths), STATS_SIZE, torch.Generator().manual_seed(seed))
    return [_u8(crop.permute(1, 2, 0).numpy()) for crop in sampler.batch(count)]


def perlin_matched(crops: list[np.ndarray], reference: measures.TextureStats, count: int) -> tuple[list, int]:
    """Perlin textures with the exemplars' colours, at the base frequency whose spectrum is closest."""
    palette = noise.palette_from_image(np.concatenate([c.reshape(-1, 3) for c in crops]) / 255.0)
    candidates = {
        frequency: [_u8(noise.noise_texture("perlin", STATS_SIZE, seed, palette, frequency)) for seed in range(count)]
        for frequency in PERLIN_FREQUENCIES
    }
    spectrum = {
        frequency: measures.stats_distance(measures.texture_stats(images), reference)["spectrum"]
        for frequency, images in candidates.items()
    }
    frequency = min(spectrum, key=lambda key: spectrum[key])
    return candidates[frequency], frequency


def exemplar_peaks(paths: list[str]) -> dict[str, dict[float, float]]:
    """Stride-frequency peaks of each exemplar whole, its sides cut down to multiples of 8."""
    peaks = {}
    for exemplar in load_exemplars(paths):
        _, height, width = exemplar.pixels.shape
        image = _u8(exemplar.pixels[:, : height // 8 * 8, : width // 8 * 8].permute(1, 2, 0).numpy())
        peaks[exemplar.source.name] = measures.stride_peaks([image])
    return peaks


def family_generator(family: str, models: dict[str, str] | None, device: str | torch.device) -> TextureGenerator:
    """The texture source of a family: its candidate in `models`, else the built-in weights."""
    candidate = (models or {}).get(family)
    if candidate:
        return TextureGenerator(model=candidate, device=device)
    return TextureGenerator(family=family, device=device)


def family_peaks(
    family: str, count: int, device: str | torch.device = "cpu", models: dict[str, str] | None = None
) -> dict[float, float]:
    """Stride-frequency peaks of `count` PEAK_SIZE textures of a family (seeds 0..count-1)."""
    generator = family_generator(family, models, device)
    return measures.stride_peaks([generator.generate(PEAK_SIZE, seed) for seed in range(count)])


def family_statistics(
    count: int,
    device: str | torch.device = "cpu",
    models: dict[str, str] | None = None,
    only: tuple[str, ...] | None = None,
) -> list[dict]:
    """Per built-in family (the `only` ones' entries, if given; the others still set the normalisation; a family
    in `models` is judged by that generator file instead of its built-in weights): distances of its textures, of
    matched Perlin noise and of the floor (raw and normalised), the normalised means (`overall`), and diversities
    (of up to 16 textures each; the exemplars' over all `count` crops, a steadier reference for the bar)."""
    crops, entries = {}, []
    for family in FAMILIES:
        if not has_training_data(family.name, models):
            entries.append({"family": family.name, "note": "exemplars not installed here"})
        else:
            crops[family.name] = exemplar_crops(training_data(family.name, models), count, 0)
    references = {name: measures.texture_stats(images) for name, images in crops.items()}
    for name, reference in references.items():
        if only and name not in only:
            continue
        others = [measures.stats_distance(references[other], reference) for other in references if other != name]
        scale = {key: float(np.mean([d[key] for d in others])) for key in others[0]} if others else None
        generator = family_generator(name, models, device)
        gan = [generator.generate(STATS_SIZE, seed) for seed in range(count)]
        perlin, frequency = perlin_matched(crops[name], reference, count)
        again = exemplar_crops(training_data(name, models), count, 1)
        distances = {
            source: measures.stats_distance(measures.texture_stats(images), reference)
            for source, images in (("gan", gan), ("perlin", perlin), ("floor", again))
        }
        normalised = {
            source: {key: value / scale[key] for key, value in d.items()} if scale else None
            for source, d in distances.items()
        }
        overall = {source: float(np.mean(list(n.values()))) if n else None for source, n in normalised.items()}
        entries.append(
            {
                "family": name,
                "exemplars": [Path(p).name for p in training_data(name, models)],
                "perlin_frequency": frequency,
                "scale": scale,
                "distances": distances,
                "normalised": normalised,
                "overall": overall,
                "diversity": {
                    "gan": measures.diversity(gan[:16]),
                    "perlin": measures.diversity(perlin[:16]),
                    "exemplars": measures.diversity(crops[name]),  # all crops: 16 vary by +-0.01 per draw
                },
            }
        )
    return entries


Source = Callable[[int, int], np.ndarray]  # (size, seed) -> (size, size, 3) uint8 texture


def _random_crops(images: list[np.ndarray], per_image: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`per_image` random REALISM_CROP crops of each image (inside its borders)."""
    crops = []
    for image in images:
        for _ in range(per_image):
            y, x = (int(rng.integers(side - REALISM_CROP + 1)) for side in image.shape[:2])
            crops.append(image[y : y + REALISM_CROP, x : x + REALISM_CROP])
    return crops


def _exemplar_pixels(path: str) -> np.ndarray:
    """An exemplar as uint8 RGB; a pattern (which tiles) repeated to at least 2 x 1 crops, so both halves hold a
    crop (for a pattern under 2 crops tall, the held-out half repeats the sampled one)."""
    pixels, tileable = read_exemplar(Path(path))
    if tileable:
        height, width = pixels.shape[:2]
        pixels = np.tile(pixels, (-(-2 * REALISM_CROP // height), -(-REALISM_CROP // width), 1))
    return pixels


def exemplar_halves(paths: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(top halves, bottom halves) of the exemplars as uint8 RGB: the sampled part and the held-out part."""
    pixels = [_exemplar_pixels(path) for path in paths]
    return [p[: p.shape[0] // 2] for p in pixels], [p[p.shape[0] // 2 :] for p in pixels]


def quilt_source(exemplars: list[np.ndarray]) -> Source:
    """Quilting from the exemplars: texture `seed` quilts exemplar seed mod n."""
    return lambda size, seed: quilt.quilt(exemplars[seed % len(exemplars)], size, size, seed)


def perlin_source(exemplars: list[np.ndarray], frequency: float, octaves: int) -> Source:
    """Perlin noise coloured with the exemplars' colours (palette of their luminance-sorted pixels)."""
    palette = noise.palette_from_image(np.concatenate([e.reshape(-1, 3) for e in exemplars]) / 255.0)
    return lambda size, seed: noise.noise_texture("perlin", size, seed, palette, frequency, octaves, np.uint8)


def realism_entry(paths: list[str], sources: dict[str, Source], count: int, seed: int = 0) -> dict:
    """LBP distances and realism of each source's `count` textures (REALISM_SIZE, seeds 0..count-1, cropped
    CROPS_PER_TEXTURE times each; `count` rounded up to a multiple of the exemplars, so quilting, which takes
    exemplar seed mod n, draws on each equally) to crops of the exemplars' held-out halves.

    The floor (0) is crops of the sampled halves (as many from each as the reference takes from each held-out
    half); the ceiling (1) is the Perlin noise with the exemplars' colours that comes closest, over
    PERLIN_FREQUENCIES x PERLIN_OCTAVES (noise's best attempt, so the scale is as demanding as it can be made)."""
    rng = np.random.default_rng(seed)
    sampled, held_out = exemplar_halves(paths)
    count = -(-count // len(paths)) * len(paths)
    crops_each = count * CROPS_PER_TEXTURE // len(paths)
    reference = realism.lbp_histograms(_random_crops(held_out, crops_each, rng))

    def distance(crops: list[np.ndarray]) -> float:
        return realism.lbp_distance(realism.lbp_histograms(crops), reference)

    def made(make: Source) -> list[np.ndarray]:
        return _random_crops([make(REALISM_SIZE, index) for index in range(count)], CROPS_PER_TEXTURE, rng)

    perlin = {(f, o): distance(made(perlin_source(sampled, f, o))) for f in PERLIN_FREQUENCIES for o in PERLIN_OCTAVES}
    frequency, octaves = min(perlin, key=lambda key: perlin[key])
    distances = {"exemplar": distance(_random_crops(sampled, crops_each, rng)), "perlin": perlin[frequency, octaves]}
    distances |= {name: distance(made(make)) for name, make in sources.items()}
    floor, ceiling = distances["exemplar"], distances["perlin"]
    return {
        "exemplars": [Path(p).name for p in paths],
        "count": count,
        "perlin": dict(frequency=frequency, octaves=octaves),
        "distance": distances,
        "realism": {name: realism.realism(d, floor, ceiling) for name, d in distances.items()},
    }


def exemplar_entries(paths: list[str], made: Callable[[int], Source], count: int, seed: int = 0) -> list[dict]:
    """`realism_entry` of each exemplar alone: quilting from it (`quilt`) and `made(m)`'s textures (`gan`) for the
    m-th exemplar (a generator with materials: its material m; one without: all its textures, the same for every
    exemplar). Pooled over several exemplars, a patchwork of them all matches a pool of them all; alone, each
    texture must look like one."""
    entries = []
    for index, path in enumerate(paths):
        sources = {"quilt": quilt_source(exemplar_halves([path])[0]), "gan": made(index)}
        entries.append(realism_entry([path], sources, count, seed))
    return entries
