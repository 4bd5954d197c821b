"""srkit upscale on a generated photo tree, end to end through the CLI: formats, metadata, errors, resume."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import srkit
from srkit.cli import main
from srkit.io import images
from srkit.io.images import read_picture

from ..engine._models import install_user_model, small_model

SCALE = 3
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _noise(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


def make_tree(root: Path) -> dict[str, Path]:
    """Every kind of input the issue names; returns them by role."""
    (root / "nested" / "deeper").mkdir(parents=True)
    files = {}

    def add(role: str, rel: str) -> Path:
        files[role] = root / rel
        return files[role]

    Image.fromarray(_noise((9, 11, 4), seed=1), "RGBA").save(add("rgba", "rgba.png"))
    cv2.imwrite(str(add("png16", "nested/deep colour.png")), _noise((8, 10, 3), np.uint16, seed=2))
    Image.fromarray(_noise((7, 12), seed=3), "L").save(add("gray", "nested/gray.png"))
    Image.fromarray(_noise((6, 9, 3), seed=4)).convert("P", palette=Image.ADAPTIVE, colors=16).save(
        add("palette", "nested/deeper/palette.png")
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    exif[0x010F] = "srkit-test-camera"
    Image.fromarray(_noise((8, 13, 3), seed=5)).save(
        add("jpeg", "nested/rotated.jpg"), exif=exif.tobytes(), icc_profile=ICC, quality=95
    )
    Image.fromarray(_noise((10, 7, 3), seed=6)).save(add("webp", "photo.webp"), quality=90)
    Image.fromarray(_noise((5, 8, 3), seed=7)).save(add("tiff", "nested/scan.tif"))
    Image.fromarray(_noise((6, 6, 3), seed=8)).save(add("bmp", "old.bmp"))
    good_jpeg = add("jpeg_named", "nested/été à la plage.jpg")
    Image.fromarray(_noise((6, 10, 3), seed=9)).save(good_jpeg, quality=90)
    add("truncated", "nested/cut.jpg").write_bytes(good_jpeg.read_bytes()[:120])
    add("empty", "empty.png").write_bytes(b"")
    add("text", "nested/notes.txt").write_text("not a picture")
    return files


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """The generated tree, a tiny compact x3 model imported as 'tiny', and the reference kernels."""
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SRKIT_KERNELS", "reference")
    install_user_model(tmp_path, "tiny", small_model("compact-x3", seed=31)[0])
    files = make_tree(tmp_path / "in")
    digests = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in files.values()}
    yield tmp_path, files
    after = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in files.values()}
    assert after == digests, "an input file was changed"


def _run(*argv: str) -> int:
    return main(["upscale", *argv, "-m", "tiny"])


def test_a_whole_tree_keeps_structure_formats_depth_and_metadata(tree, capsys):
    root, files = tree
    out = root / "out"
    assert _run(str(root / "in"), "-o", str(out)) == 1  # two broken files
    err = capsys.readouterr().err
    assert "cut.jpg: cannot read image" in err and "empty.png: is empty (0 bytes)" in err
    assert "skipped" in err and "notes.txt: not an image or video file" in err
    assert "done 9, skipped 1, failed 2" in err

    def output(role):
        return out / files[role].relative_to(root / "in")

    rgba = Image.open(output("rgba"))
    assert rgba.mode == "RGBA" and rgba.size == (11 * SCALE, 9 * SCALE)
    deep = cv2.imread(str(output("png16")), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16 and deep.shape == (8 * SCALE, 10 * SCALE, 3)
    assert Image.open(output("gray")).mode == "L"
    palette = Image.open(output("palette"))
    assert palette.mode == "RGB" and palette.size == (9 * SCALE, 6 * SCALE)
    rotated = Image.open(output("jpeg"))
    assert rotated.size == (8 * SCALE, 13 * SCALE), "EXIF orientation was not applied"
    assert rotated.getexif().get(0x0112) == 1 and rotated.getexif().get(0x010F) == "srkit-test-camera"
    assert rotated.info.get("icc_profile") == ICC
    assert Image.open(output("webp")).format == "WEBP"
    assert Image.open(output("tiff")).size == (8 * SCALE, 5 * SCALE)
    assert Image.open(output("bmp")).format == "BMP"
    assert output("jpeg_named").exists()
    assert not output("truncated").exists() and not output("empty").exists() and not output("text").exists()
    assert not [p for p in out.rglob("*") if ".partial~" in p.name], "a temporary file was left behind"


def test_pixels_equal_the_model_on_the_oriented_image(tree):
    """The upscaled JPEG is the model applied to the EXIF-rotated pixels, not to the stored ones."""
    root, files = tree
    target = root / "rotated-x3.png"
    assert _run(str(files["jpeg"]), "-o", str(target)) == 0
    picture = read_picture(files["jpeg"])
    module, _ = small_model("compact-x3", seed=31)
    x = torch.from_numpy(picture.pixels.astype(np.float32).transpose(2, 0, 1) / 255)[None]
    with torch.no_grad():
        expected = np.floor(module(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255 + 0.5)
    got = np.asarray(Image.open(target)).astype(np.int64)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1


def test_sixteen_bit_gray_stays_sixteen_bit(tree):
    root, _ = tree
    source = root / "g16.png"
    Image.fromarray(_noise((6, 7), np.uint16, seed=12)).save(source)
    assert _run(str(source), "-o", str(root / "g16-x3.png")) == 0
    assert Image.open(root / "g16-x3.png").mode == "I;16"


def _ffmpeg_ya16(path: Path, width: int, height: int) -> np.ndarray:
    """A gray+alpha image decoded by the FFmpeg CLI as 16-bit (H, W, 2)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "ya16be", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return np.frombuffer(raw, ">u2").reshape(height, width, 2).astype(np.int64)


def test_sixteen_bit_gray_and_alpha_stays_sixteen_bit_gray_and_alpha(tree):
    root, _ = tree
    ya = _noise((6, 7, 2), np.uint16, seed=13)
    source = root / "ga16.png"  # written by FFmpeg: Pillow cannot write 16-bit gray+alpha
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "ya16be",
            "-s",
            "7x6",
            "-i",
            "-",
            "-frames:v",
            "1",
            str(source),
        ],
        input=ya.astype(">u2").tobytes(),
        check=True,
        timeout=60,
    )
    assert np.array_equal(_ffmpeg_ya16(source, 7, 6), ya)
    assert _run(str(source), "-o", str(root / "ga16-x3.png")) == 0
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=pix_fmt", "-of", "csv=p=0", str(root / "ga16-x3.png")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "ya16be"  # gray+alpha, 16 bits: not RGBA colour
    got = _ffmpeg_ya16(root / "ga16-x3.png", 7 * SCALE, 6 * SCALE)
    # expected: the model on the gray repeated into RGB, then ITU-R 601 luma; alpha upscaled on its own
    upscaled = srkit.Upscaler("tiny", device="cpu").upscale(np.repeat(ya[..., :1], 3, axis=2))
    luma = upscaled.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(got[..., 0] - luma).max() <= 1.0
    alpha = srkit.Upscaler("tiny", device="cpu").upscale(ya[..., 1])
    assert np.array_equal(got[..., 1], alpha.astype(np.int64))


@pytest.mark.parametrize("name", ["camera.jpg", "camera.png", "camera.webp"])
def test_exif_image_size_tags_say_the_output_size(tree, name):
    root, _ = tree
    exif = Image.Exif()
    exif[0x010F] = "srkit-test-camera"
    exif[0x0100], exif[0x0101] = 9, 6  # IFD0 ImageWidth, ImageLength
    exif.get_ifd(0x8769).update({0xA002: 9, 0xA003: 6})  # Exif IFD PixelXDimension, PixelYDimension
    source = root / name
    Image.fromarray(_noise((6, 9, 3), seed=14)).save(source, exif=exif.tobytes())
    target = root / f"x3-{name}"
    assert _run(str(source), "-o", str(target)) == 0
    with Image.open(target) as image:
        written = image.getexif()
        assert image.size == (27, 18)
    assert (written[0x0100], written[0x0101]) == (27, 18)
    assert written.get_ifd(0x8769)[0xA002] == 27 and written.get_ifd(0x8769)[0xA003] == 18
    assert written[0x010F] == "srkit-test-camera"


def test_skip_existing_resumes_and_the_default_refuses_to_overwrite(tree, capsys):
    root, files = tree
    out = root / "out"
    first = _run(str(files["rgba"]), str(files["bmp"]), "-o", str(out))
    assert first == 0
    (out / "old.bmp").unlink()  # as if the first run had been interrupted before this file
    before = (out / "rgba.png").stat().st_mtime_ns
    capsys.readouterr()
    assert _run(str(files["rgba"]), str(files["bmp"]), "-o", str(out), "--skip-existing") == 0
    assert "done 1, skipped 1, failed 0" in capsys.readouterr().err
    assert (out / "old.bmp").exists() and (out / "rgba.png").stat().st_mtime_ns == before
    assert _run(str(files["rgba"]), "-o", str(out)) == 1
    assert "exists; pass --overwrite or --skip-existing" in capsys.readouterr().err
    assert _run(str(files["rgba"]), "-o", str(out), "--overwrite") == 0


def test_format_suffix_glob_and_no_recursive(tree):
    root, files = tree
    out = root / "flat"
    assert _run(str(root / "in"), "-o", str(out), "--no-recursive", "--format", "png", "--suffix", "_x3") == 1
    assert sorted(p.name for p in out.iterdir()) == ["old_x3.png", "photo_x3.png", "rgba_x3.png"]
    globbed = root / "globbed"
    assert _run(str(root / "in" / "**" / "*.png"), "-o", str(globbed)) == 1  # empty.png fails
    assert {p.name for p in globbed.iterdir()} == {"rgba.png", "deep colour.png", "gray.png", "palette.png"}


def test_alpha_into_jpeg_is_refused_per_file(tree, capsys):
    root, files = tree
    assert _run(str(files["rgba"]), str(files["bmp"]), "-o", str(root / "jpg"), "--format", "jpg") == 1
    assert "alpha channel that JPEG cannot store" in capsys.readouterr().err
    assert sorted(p.name for p in (root / "jpg").iterdir()) == ["old.jpg"]


def test_outputs_that_would_overwrite_inputs_are_refused_before_any_work(tree, capsys):
    root, _ = tree
    assert _run(str(root / "in"), "-o", str(root / "in")) == 2
    assert "-o is this input itself" in capsys.readouterr().err
    assert _run(str(root / "in" / "rgba.png"), str(root / "in" / "nested"), "-o", str(root / "in" / "nested")) == 2
    assert (
        _run(str(root / "in" / "old.bmp"), str(root / "in" / "photo.webp"), "-o", str(root / "in"), "--format", "keep")
        == 2
    )
    assert "would overwrite the input" in capsys.readouterr().err


def test_output_directory_inside_the_input_is_not_read_back(tree):
    root, _ = tree
    inside = root / "in" / "upscaled"
    assert _run(str(root / "in" / "nested" / "deeper"), "-o", str(inside)) == 0
    assert _run(str(root / "in"), "-o", str(inside), "--skip-existing") == 1  # broken files only
    assert not (inside / "upscaled").exists(), "the output tree was walked as input"


def test_decompression_bomb_limit_and_scale_option(tree, capsys):
    root, files = tree
    assert _run(str(files["rgba"]), "-o", str(root / "small.png"), "--max-pixels", "50") == 1
    assert "over the decompression-bomb limit of 50 pixels" in capsys.readouterr().err
    assert _run(str(files["rgba"]), "-o", str(root / "x2.png"), "-s", "2") == 0
    assert Image.open(root / "x2.png").size == (22, 18)


def test_an_unwritable_output_place_is_a_per_file_error(tree, capsys):
    """A file standing where an output directory must be created (fails for root too, unlike chmod)."""
    root, files = tree
    out = root / "blocked"
    out.mkdir()
    (out / "deeper").write_text("in the way")
    assert _run(str(root / "in" / "nested"), str(files["gray"]), "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "palette.png" in err and "done 5, skipped 1, failed 2" in err  # palette (blocked) and cut.jpg
    assert (out / "deeper").read_text() == "in the way" and (out / "gray.png").exists()


def test_compare_writes_a_side_by_side_crop(tree):
    root, files = tree
    assert _run(str(files["webp"]), "-o", str(root / "cmp"), "--compare") == 0
    sheet = Image.open(root / "cmp" / "photo_compare.png")
    assert sheet.size == (2 * 21 + 4, 21)


def test_triton_path_under_the_interpreter_on_a_tiny_image(tree, monkeypatch):
    root, files = tree
    monkeypatch.setenv("SRKIT_KERNELS", "triton")
    assert _run(str(files["gray"]), "-o", str(root / "triton.png")) == 0
    monkeypatch.setenv("SRKIT_KERNELS", "reference")
    assert _run(str(files["gray"]), "-o", str(root / "reference.png")) == 0
    a = np.asarray(Image.open(root / "triton.png")).astype(int)
    b = np.asarray(Image.open(root / "reference.png")).astype(int)
    assert a.shape == (21, 36) and np.abs(a - b).max() <= 1


@pytest.mark.parametrize(
    "role,owner,name", [("rgba", images, "write_png"), ("jpeg", Image.Image, "save")], ids=["png-strips", "pillow"]
)
def test_an_interrupted_write_leaves_nothing_under_the_final_name(tree, monkeypatch, role, owner, name):
    """Ctrl-C while encoding: the partial bytes go to a temporary file, which is removed; no final file."""
    root, files = tree
    real_encode = getattr(owner, name)

    def encode_then_interrupt(*args, **kwargs):
        real_encode(*args, **kwargs)  # the bytes are on disk, but the write is not finished
        raise KeyboardInterrupt

    monkeypatch.setattr(owner, name, encode_then_interrupt)
    out = root / "interrupted"
    assert main(["upscale", str(files[role]), "-o", str(out), "-m", "tiny"]) == 130
    assert list(out.iterdir()) == [], "a partial or temporary file was left"
