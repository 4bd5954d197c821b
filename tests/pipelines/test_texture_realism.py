"""How real textures look (srkit/pipelines/texture_realism.py): the shipped families against issue 20's bars
(benchmarks/bench_textures.py measures the same with more samples: no stride-frequency peak above 6, at least
1.5x closer to their exemplars than Perlin noise with matched colours on the statistics distance, diversity no
lower than the transposed-convolution families had or, for a family retrained on other exemplars, than those
have); each material of a family with materials in its own exemplar's colours; the realism scale's ends,
quilting near 0; and measuring without scikit-image on the runtime path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from srkit.catalog import FAMILIES
from srkit.pipelines import texture_realism as quality
from srkit.synth import measures

PEAK_BAR = 6.0  # real exemplars read 0.1-6.1 (issue 20)
CLOSER_BAR = 1.5  # Perlin's distance over the family's
# Diversity of the transposed-convolution families (benchmarks/results/textures-cpu.json before issue 20, 256
# textures of 64 px each): the retrained families must not be less varied, unless their exemplars are. A family
# retrained on exemplars that vary less than that (grass: three green OpenArena grasses, not one grey photo) cannot
# vary more than its data without inventing; it is held to DATA_SHARE of its exemplars' crops' diversity, the share
# being that reference's spread: draws of 128 crops of grass's three read 0.104-0.121 (crop seeds 0-2), as each
# crop's exemplar is drawn at random. A collapsed generator falls far below (benchmarks/NOTES.md, eighth session).
EARLIER_DIVERSITY = {"wood": 0.0796, "stone": 0.1771, "fabric": 0.106, "grass": 0.1617}
DATA_SHARE = 0.85
MATERIAL_FAMILIES = ("stone", "wood", "grass")  # trained with --materials, one per exemplar
SAMPLES = 128  # textures per statistic (the benchmark takes 256)
PEAK_SAMPLES = 8  # 256 px textures per stride peak (the benchmark takes 16)


@pytest.fixture(scope="module")
def statistics() -> dict[str, dict]:
    missing = [f.name for f in FAMILIES if not quality.has_training_data(f.name)]
    if missing:
        packages = "Debian gimp-data, openarena-081-textures; scikit-image"
        pytest.skip(f"exemplars of {', '.join(missing)} not installed ({packages})")
    return {entry["family"]: entry for entry in quality.family_statistics(SAMPLES)}


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_no_stride_frequency_peak_stands_out(family):
    peaks = quality.family_peaks(family, PEAK_SAMPLES)
    assert set(peaks) == set(measures.STRIDE_FREQUENCIES)
    assert max(peaks.values()) <= PEAK_BAR, f"{family}: {peaks}"


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_family_is_much_closer_to_its_exemplars_than_matched_perlin_and_as_varied_as_before(statistics, family):
    entry = statistics[family]
    gan, perlin = entry["overall"]["gan"], entry["overall"]["perlin"]
    assert perlin >= CLOSER_BAR * gan, f"{family}: distance {gan:.3f}, Perlin {perlin:.3f} ({perlin / gan:.2f}x)"
    data = entry["diversity"]["exemplars"]
    bar = EARLIER_DIVERSITY[family] if data >= EARLIER_DIVERSITY[family] else DATA_SHARE * data
    assert entry["diversity"]["gan"] >= bar, f"{family}: {entry['diversity']}"


def test_quilting_scores_near_the_exemplar_and_noise_near_1(tmp_path):
    path = tmp_path / "brick.png"
    Image.fromarray(skimage.data.brick()).save(path)
    sampled, _ = quality.exemplar_halves([str(path)])
    shuffled = np.random.default_rng(0).permuted(sampled[0].reshape(-1, 3), axis=0).reshape(sampled[0].shape)
    entry = quality.realism_entry(
        [str(path)], {"quilt": quality.quilt_source(sampled), "shuffled": lambda size, seed: shuffled}, 4
    )
    scores = entry["realism"]
    assert scores["exemplar"] == 0.0 and scores["perlin"] == 1.0
    assert scores["quilt"] <= 0.2, entry
    assert scores["shuffled"] > 1.0, entry  # the exemplar's own pixels without their structure: worse than noise


@pytest.mark.parametrize("family", MATERIAL_FAMILIES)
def test_each_material_has_the_colours_of_its_own_exemplar(family):
    """A family trained with --materials on several exemplars: every material's textures are, in mean colour,
    nearest to the exemplar of that material, not a blend of all of them."""
    if not quality.has_training_data(family):
        pytest.skip(f"{family}'s exemplars not installed (Debian gimp-data, openarena-081-textures; scikit-image)")
    from srkit.texture_generator import TextureGenerator
    from srkit.train.exemplars import read_exemplar

    paths = quality.training_data(family)
    colours = np.array([read_exemplar(Path(path))[0].reshape(-1, 3).mean(0) for path in paths])
    assert len(TextureGenerator(family, device="cpu").materials) == len(paths) >= 2
    for material in range(len(paths)):
        generator = TextureGenerator(family, device="cpu", material=material)
        mean = np.mean([generator.generate(128, seed).reshape(-1, 3).mean(0) for seed in range(4)], 0)
        distances = np.linalg.norm(colours - mean, axis=1)
        assert np.argmin(distances) == material, (material, distances.round(1))


def test_each_exemplar_alone_sees_through_a_patchwork_that_the_pool_accepts(tmp_path):
    """Textures that alternate between two exemplars pass on the pooled scale; judged against each exemplar
    alone, only the textures of that exemplar's own material do."""
    paths = []
    for name in ("brick", "gravel"):
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(getattr(skimage.data, name)()).save(paths[-1])
    sampled, _ = quality.exemplar_halves(paths)

    def own(index: int) -> quality.Source:
        return lambda size, seed: sampled[index][:size, :size]

    def patchwork(size: int, seed: int) -> np.ndarray:
        return sampled[seed % 2][:size, :size]

    pooled = quality.realism_entry(paths, {"patchwork": patchwork}, 4)["realism"]["patchwork"]
    each = [e["realism"] for e in quality.exemplar_entries(paths, lambda index: patchwork, 4)]
    matched = [e["realism"] for e in quality.exemplar_entries(paths, own, 4)]
    swapped = [e["realism"] for e in quality.exemplar_entries(paths, lambda index: own(1 - index), 4)]
    assert pooled <= 0.2 and min(r["gan"] for r in each) > 0.3, (pooled, each)
    assert max(r["gan"] for r in matched) <= 0.2 and min(r["gan"] for r in swapped) > 0.5, (matched, swapped)
    assert all(r["quilt"] <= 0.2 for r in matched)  # quilting from each exemplar alone


def test_measuring_textures_does_not_import_scikit_image():
    code = (
        "import sys; import srkit.pipelines.texture_realism, srkit.texture_generator; "
        "sys.exit('skimage' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
