"""How a built-in texture family compares with what it learnt from (benchmarks/bench_textures.py and its CI check).

- Statistics distance (srkit/synth/measures.py) of STATS_SIZE textures to as many random crops of the exemplars the
  family was trained on (named in its weights' metadata), against Perlin noise coloured with the exemplars' own
  colours (palette from their luminance-sorted pixels) at the base frequency (2, 4 or 8 cells across) whose
  spectrum is closest, and against a second, independent set of crops (the floor). The three measures have
  different units, so each is divided by its mean distance between this family's exemplars and the other
  families' (how far apart texture families are on it); the statistics distance is the mean of the three.
- Stride-frequency peaks of PEAK_SIZE textures, and of each exemplar whole (its sides cut to multiples of 8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage
import torch

from ..catalog import FAMILIES
from ..models.weights import read_weights
from ..synth import measures, noise
from ..texture_generator import TextureGenerator
from ..train.exemplars import CropSampler, load_exemplars

STATS_SIZE = 64  # the training crop size
PEAK_SIZE = 256
PERLIN_FREQUENCIES = (2, 4, 8)


def _u8(image: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def family_weights(family: str, models: dict[str, str] | None = None) -> str:
    """The generator file of `family`: models[family] when given (a candidate from training), else the built-in."""
    return (models or {}).get(family) or str(next(f.path for f in FAMILIES if f.name == family))


def training_data(family: str, models: dict[str, str] | None = None) -> list[str]:
    """The exemplar files a family's generator was trained on (from its weights' metadata; $SKIMAGE_DATA there is
    the installed scikit-image's data folder)."""
    _, metadata = read_weights(family_weights(family, models))
    skimage_data = str(Path(skimage.__file__).parent / "data")
    return [path.replace("$SKIMAGE_DATA", skimage_data) for path in metadata["training"]["data"]]


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


def exemplar_peaks(paths: list[str]) -> dict[str, dict[float, float]]:
    """Stride-frequency peaks of each exemplar whole, its sides cut down to multiples of 8."""
    peaks = {}
    for exemplar in load_exemplars(paths):
        _, height, width = exemplar.pixels.shape
        image = _u8(exemplar.pixels[:, :height // 8 * 8, :width // 8 * 8].permute(1, 2, 0).numpy())
        peaks[exemplar.source.name] = measures.stride_peaks([image])
    return peaks


def family_generator(family: str, models: dict[str, str] | None, device: str | torch.device) -> TextureGenerator:
    """The texture source of a family: its candidate in `models`, else the built-in weights."""
    if (models or {}).get(family):
        return TextureGenerator(model=models[family], device=device)
    return TextureGenerator(family=family, device=device)


def family_peaks(family: str, count: int, device: str | torch.device = "cpu",
                 models: dict[str, str] | None = None) -> dict[float, float]:
    """Stride-frequency peaks of `count` PEAK_SIZE textures of a family (seeds 0..count-1)."""
    generator = family_generator(family, models, device)
    return measures.stride_peaks([generator.generate(PEAK_SIZE, seed) for seed in range(count)])


def family_statistics(count: int, device: str | torch.device = "cpu", models: dict[str, str] | None = None,
                      only: tuple[str, ...] | None = None) -> list[dict]:
    """Per built-in family (the `only` ones' entries, if given; the others still set the normalisation; a family
    in `models` is judged by that generator file instead of its built-in weights): distances of its textures, of matched Perlin noise and of the floor (raw and
    normalised), the normalised means (`overall`), and diversities (of up to 16 textures each)."""
    crops, entries = {}, []
    for family in FAMILIES:
        missing = [p for p in training_data(family.name, models) if not Path(p).is_file()]
        if missing:
            entries.append({"family": family.name, "note": f"exemplars not installed here ({missing[0]})"})
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
        distances = {source: measures.stats_distance(measures.texture_stats(images), reference)
                     for source, images in (("gan", gan), ("perlin", perlin), ("floor", again))}
        normalised = {source: {key: value / scale[key] for key, value in d.items()} if scale else None
                      for source, d in distances.items()}
        overall = {source: float(np.mean(list(n.values()))) if n else None for source, n in normalised.items()}
        entries.append({"family": name, "exemplars": [Path(p).name for p in training_data(name, models)],
                        "perlin_frequency": frequency, "scale": scale, "distances": distances,
                        "normalised": normalised, "overall": overall,
                        "diversity": {"gan": measures.diversity(gan[:16]), "perlin": measures.diversity(perlin[:16]),
                                      "exemplars": measures.diversity(crops[name][:16])}})
    return entries
