"""The image format registry (srkit.io.formats) against Pillow, and QOI, the format added as one registry entry:
read as an input, written by `--format qoi`, pixels exact through Pillow's decoder, size limits in planning."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srkit.cli import main
from srkit.io import formats
from srkit.io.images import Picture, codes_8bit, read_picture, write_picture
from srkit.pipelines.batch_plan import PlanError, plan_jobs
from srkit.pipelines.types import BatchOptions
from srkit.request import UpscaleRequest


def _noise(shape: tuple[int, ...], seed: int, dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


def _pillow_pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_every_registered_format_is_one_pillow_reads_and_writes_under_its_own_extensions():
    Image.init()
    pillow_extensions = Image.registered_extensions()
    seen: set[str] = set()
    for fmt in formats.FORMATS:
        assert fmt.pillow in Image.OPEN and fmt.pillow in Image.SAVE, fmt.name
        assert fmt.animation is None or fmt.pillow in Image.SAVE_ALL, fmt.name
        assert all(pillow_extensions.get(ext) == fmt.pillow or ext == ".apng" for ext in fmt.extensions), fmt.name
        assert not seen & set(fmt.extensions), f"{fmt.name}: an extension registered twice"
        seen |= set(fmt.extensions)
        assert formats.named(fmt.name) is fmt and formats.for_pillow(fmt.pillow) is fmt
        assert all(formats.for_path(f"a/B{ext.upper()}") is fmt for ext in fmt.extensions)
    assert formats.IMAGE_EXTENSIONS == seen and formats.for_path("clip.mp4") is None


@pytest.mark.parametrize(
    "shape, dtype, mode",
    [
        ((9, 13, 3), np.uint8, "RGB"),
        ((9, 13, 4), np.uint8, "RGBA"),
        ((7, 5), np.uint8, "L"),
        ((7, 5, 4), np.uint8, "LA"),
        ((6, 11, 3), np.uint16, "RGB;16"),
        ((6, 11), np.uint16, "I;16"),
    ],
    ids=["rgb", "rgba", "gray", "gray-alpha", "rgb16", "gray16"],
)
def test_qoi_written_by_srkit_decodes_in_pillow_to_the_8_bit_rgb_or_rgba_pixels(tmp_path, shape, dtype, mode):
    pixels = _noise(shape, seed=sum(shape), dtype=dtype)
    target = tmp_path / "out.qoi"
    write_picture(pixels, target, Picture(pixels, "PNG", mode))
    expected = codes_8bit(pixels) if dtype == np.uint16 else pixels
    if mode == "LA":  # a gray+alpha source goes back to gray+alpha, which QOI holds as RGBA with gray repeated
        with Image.fromarray(expected, "RGBA") as rgba:
            expected = np.asarray(rgba.convert("LA").convert("RGBA"))
    elif expected.ndim == 2:
        expected = np.repeat(expected[..., None], 3, axis=2)
    assert target.read_bytes()[13] == 0  # the header's colour space: sRGB (with linear alpha), as photos are
    with Image.open(target) as image:
        assert image.format == "QOI"
        decoded = np.asarray(image)
    assert decoded.shape == expected.shape
    mismatches = np.argwhere(decoded != expected)
    assert not len(mismatches), f"{len(mismatches)} values differ, first at {mismatches[:3].tolist()}"


@pytest.mark.parametrize("channels", [3, 4])
def test_a_qoi_file_pillow_wrote_reads_back_exactly(tmp_path, channels):
    pixels = _noise((10, 7, channels), seed=channels)
    Image.fromarray(pixels).save(tmp_path / "in.qoi")
    picture = read_picture(tmp_path / "in.qoi")
    assert picture.format == "QOI" and picture.pixels.dtype == np.uint8
    assert np.array_equal(picture.pixels, pixels) and picture.has_alpha == (channels == 4)


def test_a_qoi_input_in_a_folder_upscales_and_format_qoi_writes_the_same_pixels_as_png(home, tmp_path):
    rgba = _noise((8, 9, 4), seed=5)
    (tmp_path / "folder").mkdir()
    Image.fromarray(rgba).save(tmp_path / "folder" / "in.qoi")
    Image.fromarray(rgba).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "folder"), "-o", str(tmp_path / "out"), "-m", "tiny"]) == 0
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "in.png"),
                "-o",
                str(tmp_path / "out"),
                "-m",
                "tiny",
                "--format",
                "qoi",
                "--suffix",
                "_from_png",
            ]
        )
        == 0
    )
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "-m", "tiny"]) == 0
    reference = _pillow_pixels(tmp_path / "out" / "in.png")
    assert reference.shape == (24, 27, 4)  # the tiny model is x3
    for name in ("in.qoi", "in_from_png.qoi"):
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == "QOI"
        assert np.array_equal(_pillow_pixels(tmp_path / "out" / name), reference), name


def test_format_qoi_is_offered_and_holds_an_output_over_the_webp_size_limit(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["upscale", "--help"])
    assert "qoi" in capsys.readouterr().out
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((1, 5462, 3), np.uint8)).save(wide)  # x3: 16386 wide, over WebP's 16383
    with pytest.raises(PlanError, match=r"WEBP limit of 16383 .* can hold it: png, jpg, tiff, bmp, qoi \("):
        plan_jobs([str(wide)], tmp_path / "out", BatchOptions(format="webp"), request=UpscaleRequest(output_scale=3.0))
    plan = plan_jobs(
        [str(wide)], tmp_path / "out", BatchOptions(format="qoi"), request=UpscaleRequest(output_scale=3.0)
    )
    assert [job.target.name for job in plan.jobs] == ["wide.qoi"]
    assert formats.holding(2**31, animated=False) == ["png", "tiff", "bmp", "qoi"]
    assert formats.holding(65536, animated=True) == ["png"]


def test_qoi_files_in_folders_are_texture_and_training_inputs(tmp_path):
    from srkit.train.data import find_photos

    rgb = _noise((16, 16, 3), seed=11)
    (tmp_path / "in").mkdir()
    Image.fromarray(rgb).save(tmp_path / "in" / "wall.qoi")
    (tmp_path / "in" / "notes.txt").write_text("not a picture")
    assert find_photos([tmp_path / "in"]) == [tmp_path / "in" / "wall.qoi"]
    assert main(["textures", "convert", str(tmp_path / "in"), "-o", str(tmp_path / "pack"), "--format", "png"]) == 0
    assert np.array_equal(_pillow_pixels(tmp_path / "pack" / "wall.png"), rgb)  # the map is the texture itself
