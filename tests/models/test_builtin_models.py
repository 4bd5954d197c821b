"""srkit's own built-in SR models: shipped, loadable, honest about their data, and better than bicubic on a
held-out photo (a quick check; the full held-out measurement is benchmarks/bench_fidelity.py)."""

from __future__ import annotations

import pytest
import skimage.data
from PIL import Image

from srkit.cli import main
from srkit.defaults import DEFAULT_MODEL
from srkit.models.weights import read_weights
from srkit.models.zoo import PACKAGED, load_model
from srkit.pipelines.evaluate import evaluate
from srkit.upscaler import Upscaler

SIZE_LIMIT = 3_000_000  # bytes, the bound for each built-in model


@pytest.mark.parametrize("packaged", PACKAGED, ids=lambda m: m.name)
def test_builtin_model_loads_is_small_and_names_its_held_out_photos(packaged):
    loaded = load_model(packaged.name)
    assert (loaded.info.arch, loaded.out_scale) == (packaged.arch, packaged.scale)
    assert packaged.path.stat().st_size < SIZE_LIMIT
    _, metadata = read_weights(packaged.path)
    training = metadata["training"]
    assert {"coffee.png", "astronaut.png"} <= set(training["held_out"])
    assert not set(training["held_out"]) & set(training["train_photos"])
    assert training["steps_done"] == training["steps"] and training["command"].startswith("srkit train sr")


def test_default_model_is_the_builtin_x4():
    assert DEFAULT_MODEL == "srkit-photo-x4"


@pytest.mark.parametrize("name", ["srkit-photo-x2", "srkit-photo-x4"])
def test_builtin_photo_models_beat_bicubic_on_a_held_out_photo_crop(tmp_path, name):
    crop = skimage.data.coffee()[40:280, 300:540]  # held out: never trained on (see the metadata test above)
    Image.fromarray(crop).save(tmp_path / "coffee-crop.png")
    report = evaluate([str(tmp_path / "coffee-crop.png")], Upscaler(name, device="cpu"), None)
    mean = report["mean"]
    assert mean["psnr"] > mean["bicubic_psnr"] + 0.3, mean
    assert mean["ssim"] > mean["bicubic_ssim"], mean


def test_models_list_shows_the_builtin_srkit_models(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for packaged in PACKAGED:
        line = next(row for row in out.splitlines() if row.startswith(packaged.name + " "))
        assert packaged.arch in line and "yes" in line
