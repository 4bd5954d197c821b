"""`srkit eval`: the JSON report's shape, and its numbers recomputed independently with scikit-image."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srkit.cli import main
from srkit.models.weights import write_safetensors
from srkit.train.degrade import bicubic_upscale_codes

from ..engine._models import small_model
from ._photos import smooth_photo, write_photos


def _y(rgb: np.ndarray, border: int) -> np.ndarray:
    return rgb2ycbcr(rgb)[border:-border, border:-border, 0]


def _skimage_scores(reference: np.ndarray, test: np.ndarray, border: int) -> tuple[float, float]:
    a, b = _y(reference, border), _y(test, border)
    return (
        peak_signal_noise_ratio(a, b, data_range=255),
        structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
    )


def _uint8(t: torch.Tensor) -> np.ndarray:
    return (t[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def test_eval_json_matches_scikit_image_on_the_same_inputs(tmp_path, capsys):
    photos = write_photos(tmp_path / "hr", [(67, 81), (90, 64)])
    module, _ = small_model("compact-x3")
    weights = tmp_path / "m.safetensors"
    write_safetensors(weights, module.state_dict(), {"arch": "compact", "scale": 3, "act": "prelu"})
    assert main(["eval", str(tmp_path / "hr"), "-m", str(weights), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"model", "scale", "images", "mean"} and report["scale"] == 3
    assert {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"} <= set(report["mean"])
    assert [image["file"] for image in report["images"]] == [p.name for p in photos]
    for path, image in zip(photos, report["images"]):
        hr = np.array(Image.open(path))
        hr = hr[: hr.shape[0] // 3 * 3, : hr.shape[1] // 3 * 3]
        assert (image["width"], image["height"]) == (hr.shape[1], hr.shape[0])
        hr_t = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255
        lr = (F.interpolate(hr_t, scale_factor=1 / 3, mode="bicubic", antialias=True) * 255).round().clamp(0, 255) / 255
        with torch.no_grad():
            model_out = _uint8(module(lr))
        bicubic_out = _uint8(F.interpolate(lr, scale_factor=3, mode="bicubic"))
        expected = _skimage_scores(hr, model_out, 3) + _skimage_scores(hr, bicubic_out, 3)
        got = (image["psnr"], image["ssim"], image["bicubic_psnr"], image["bicubic_ssim"])
        # The model goes through srkit's engine (fused plan, tiles) here and plain torch above: outputs can differ
        # by one 8-bit level at rare pixels, so PSNR/SSIM agree to a few thousandths, bicubic exactly.
        assert got[2:] == pytest.approx(expected[2:], abs=1e-9)
        assert got[:2] == pytest.approx(expected[:2], abs=3e-3)
    mean = report["mean"]
    assert mean["psnr"] == pytest.approx(np.mean([i["psnr"] for i in report["images"]]))
    assert mean["psnr_gain"] == pytest.approx(mean["psnr"] - mean["bicubic_psnr"])


@pytest.mark.parametrize("scale, height, width", [(2, 31, 26), (3, 41, 23), (3, 67, 45), (4, 17, 29), (3, 5, 7)])
def test_bicubic_baseline_made_in_bands_equals_the_whole_image(scale, height, width):
    # x3: upscaling bands cut out with a halo differs from the whole image at 50-150 of these samples (torch's
    # float32 source coordinates drift with the row number); the baseline's bands keep the whole image's rows.
    lr = torch.from_numpy(smooth_photo(height, width, scale)).permute(2, 0, 1)[None].float() / 255
    expected = _uint8(F.interpolate(lr, scale_factor=scale, mode="bicubic"))
    for rows in (1, 2, 7, height):
        assert np.array_equal(bicubic_upscale_codes(lr, scale, rows), expected)


def test_bicubic_baseline_refuses_batches_and_empty_bands():
    with pytest.raises(ValueError, match=r"one \(1, C, h, w\) image, got shape \(2, 3, 8, 8\)"):
        bicubic_upscale_codes(torch.zeros(2, 3, 8, 8), 2)
    with pytest.raises(ValueError, match="rows must be at least 1, got 0"):
        bicubic_upscale_codes(torch.zeros(1, 3, 8, 8), 2, rows=0)


def test_eval_table_and_errors(tmp_path, capsys):
    write_photos(tmp_path / "hr", [(40, 52)])
    module, _ = small_model("seednet-x2")
    weights = tmp_path / "s.safetensors"
    write_safetensors(weights, module.state_dict(), {"arch": "seednet", "scale": 2})
    assert main(["eval", str(tmp_path / "hr"), "-m", str(weights), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["photo", "size", "PSNR"] and lines[1].startswith("photo0.png")
    assert lines[-1].startswith("mean of 1")
    assert main(["eval", str(tmp_path / "none"), "-m", str(weights)]) != 0
    assert "no such file or directory" in capsys.readouterr().err
    write_photos(tmp_path / "small", [(20, 20)])
    assert main(["eval", str(tmp_path / "small"), "-m", str(weights)]) != 0
    assert "too small to evaluate" in capsys.readouterr().err


def _refuse_constant(name: str):
    raise ValueError(f"not strict JSON: {name}")


def test_eval_json_is_strict_json_when_a_score_is_infinite(tmp_path, capsys):
    # a flat photo: bicubic gives it back exactly, so its PSNR is infinite (and the gain undefined)
    (tmp_path / "hr").mkdir()
    Image.fromarray(np.full((48, 40, 3), 120, np.uint8)).save(tmp_path / "hr" / "flat.png")
    module, _ = small_model("seednet-x2")
    weights = tmp_path / "s.safetensors"
    write_safetensors(weights, module.state_dict(), {"arch": "seednet", "scale": 2})
    assert main(["eval", str(tmp_path / "hr"), "-m", str(weights), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out, parse_constant=_refuse_constant)
    image = report["images"][0]
    assert image["bicubic_psnr"] is None and image["bicubic_ssim"] == pytest.approx(1.0)
    assert report["mean"]["bicubic_psnr"] is None and report["mean"]["psnr_gain"] is None
    assert isinstance(image["psnr"], float) and image["psnr"] > 0


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_eval_names_a_fifo_or_device_for_what_it_is(tmp_path, capsys, special):
    if special == "fifo":
        special = str(tmp_path / "pipe.png")
        os.mkfifo(special)
    module, _ = small_model("seednet-x2")
    weights = tmp_path / "s.safetensors"
    write_safetensors(weights, module.state_dict(), {"arch": "seednet", "scale": 2})
    assert main(["eval", special, "-m", str(weights), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "not a regular file" in err and "no such file" not in err
