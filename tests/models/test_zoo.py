"""Named real models: the imported Real-ESRGAN weights give sensible images, equal the PyTorch module,
and survive a round trip through a Real-ESRGAN-style .pth and srkit's own safetensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from safetensors.torch import save_file
from skimage.metrics import peak_signal_noise_ratio

import srkit
from srkit.cli import main
from srkit.models import compact
from srkit.models.weights import METADATA_KEY
from srkit.models.zoo import import_model, load_model


@pytest.fixture(scope="module")
def photo_pair():
    """A real photo (scikit-image's chelsea, cropped) and its antialiased bicubic x4 reduction."""
    hr = skimage.data.chelsea()[40:232, 80:336]  # 192 x 256
    lr = np.asarray(Image.fromarray(hr).resize((64, 48), Image.BICUBIC, reducing_gap=None))
    return hr, lr


@pytest.fixture(scope="module")
def animevideo():
    return load_model("realesr-animevideov3")


def _module_output(model, lr: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(lr.astype(np.float32).transpose(2, 0, 1) / 255)[None]
    with torch.no_grad():
        y = model.module(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.floor(y * 255 + 0.5).astype(np.uint8)


def test_animevideov3_gives_a_sensible_image_and_equals_the_module(animevideo, photo_pair):
    hr, lr = photo_pair
    assert (animevideo.info.arch, animevideo.out_scale, animevideo.info.features, animevideo.info.blocks) == (
        "compact",
        4,
        64,
        16,
    )
    out = srkit.Upscaler(animevideo, device="cpu", tile=32).upscale(lr)
    assert out.shape == hr.shape
    assert np.abs(out.astype(int) - _module_output(animevideo, lr).astype(int)).max() <= 1
    bicubic = np.asarray(Image.fromarray(lr).resize((256, 192), Image.BICUBIC))
    model_psnr = peak_signal_noise_ratio(hr, out)
    bicubic_psnr = peak_signal_noise_ratio(hr, bicubic)
    # A GAN model trades PSNR for sharpness; it must still be a faithful image of the scene.
    assert model_psnr > bicubic_psnr - 3.0, (model_psnr, bicubic_psnr)


def test_x2_variant_is_the_x4_network_then_a_downscale(photo_pair):
    model = load_model("realesr-animevideov3-x2")
    assert model.info.net_scale == 4 and model.output_resize == 0.5 and model.out_scale == 2
    _, lr = photo_pair
    assert srkit.Upscaler(model, device="cpu").upscale(lr).shape == (96, 128, 3)


def test_pth_and_safetensors_round_trips_give_the_same_image(animevideo, photo_pair, tmp_path, monkeypatch):
    _, lr = photo_pair
    lr = lr[:20, :24].copy()
    reference = srkit.Upscaler(animevideo, device="cpu").upscale(lr)
    pth = tmp_path / "realesr-animevideov3.pth"
    torch.save({"params": animevideo.module.state_dict()}, pth)
    assert np.array_equal(srkit.Upscaler(str(pth), device="cpu").upscale(lr), reference)
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    saved = import_model(pth, "anime-copy")
    assert saved.suffix == ".safetensors"
    assert np.array_equal(srkit.Upscaler("anime-copy", device="cpu").upscale(lr), reference)


def test_rrdb_x4plus_plan_equals_its_module(photo_pair):
    model = load_model("realesrgan-x4plus")
    assert (model.info.arch, model.info.blocks, model.out_scale) == ("rrdb", 23, 4)
    _, lr = photo_pair
    crop = lr[10:22, 20:36].copy()
    out = srkit.Upscaler(model, device="cpu", tile=64).upscale(crop)
    assert np.abs(out.astype(int) - _module_output(model, crop).astype(int)).max() <= 1


def test_models_list_names_a_broken_user_model_and_lists_the_rest(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "home" / "models"
    folder.mkdir(parents=True)
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    state = compact.CompactSR(features=8, num_conv=1, scale=2).state_dict()
    save_file(state, str(folder / "good.safetensors"), metadata={METADATA_KEY: json.dumps({"arch": "compact"})})
    save_file(state, str(folder / "listed.safetensors"), metadata={METADATA_KEY: "[1, 2]"})
    save_file(state, str(folder / "numbered.safetensors"), metadata={METADATA_KEY: '{"arch": 5}'})
    (folder / "dangling.safetensors").symlink_to(tmp_path / "moved-away.safetensors")
    assert main(["models", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "compact" in rows["good"] and rows["good"].endswith("yes")
    assert "no: " in rows["listed"] and "listed.safetensors: its srkit metadata is [1, 2]" in rows["listed"]
    assert "no: " in rows["numbered"] and "has arch 5, not a string" in rows["numbered"]
    assert "no: " in rows["dangling"] and "dangling.safetensors: no such file" in rows["dangling"]


def test_model_scale_of_a_named_model_needs_no_weights_and_equals_the_loaded_scale(monkeypatch):
    from srkit.models import zoo

    expected = {name: load_model(name).out_scale for name in ("srkit-photo-x2", "realesr-animevideov3-x3")}
    monkeypatch.setattr(zoo, "load_model", lambda name: pytest.fail(f"{name}: weights were read"))
    assert (
        {name: zoo.model_scale(name) for name in expected}
        == expected
        == {"srkit-photo-x2": 2, "realesr-animevideov3-x3": 3}
    )
