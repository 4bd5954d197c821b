"""The srkit command line end to end: info, models import/list, upscale with errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from srkit import __version__
from srkit.cli import main

from ..engine._models import small_model

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.png"


def test_version_and_module_entry_point():
    for command in (["srkit", "--version"], [sys.executable, "-m", "srkit", "--version"]):
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        assert result.stdout.strip() == f"srkit {__version__}"


def test_info_reports_versions_device_and_backend(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "srkit" in out and torch.__version__ in out and "kernel backend" in out and "reference" in out
    rows = dict(
        line.split(None, 1) if "  " not in line else [part.strip() for part in line.split("  ", 1)]
        for line in out.splitlines()
    )
    assert rows["ffmpeg (in av)"] == av.ffmpeg_version_info
    named = rows["video encoders"].split(" and ")[0].split(", ")
    assert "libx264" in named and all(av.Codec(name, "w").type == "video" for name in named)


def test_models_list_shows_builtins_and_user_models(home, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "realesr-animevideov3 " in out and "realesrgan-x4plus " in out
    tiny = next(line for line in out.splitlines() if line.startswith("tiny "))
    assert "compact" in tiny and " 3 " in tiny and "yes" in tiny


def test_import_refuses_to_replace_without_force(home, capsys):
    assert main(["models", "import", str(home / "tiny.pth"), "--name", "tiny"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["models", "import", str(home / "tiny.pth"), "--name", "tiny", "--force"]) == 0


def test_upscale_writes_the_image_and_leaves_the_input_alone(home, tmp_path, sha256):
    before = sha256(SAMPLE)
    out = tmp_path / "out" / "sample-x3.png"
    assert main(["upscale", str(SAMPLE), "-o", str(out), "-m", "tiny", "--tile", "32"]) == 0
    with Image.open(out) as image, Image.open(SAMPLE) as source:
        assert image.size == (source.width * 3, source.height * 3) and image.mode == "RGB"
    assert sha256(SAMPLE) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["sample-x3.png"], "a temporary file was left"


def test_bad_files_fail_one_by_one_and_the_run_goes_on(home, tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((6, 7, 3), 100, np.uint8)).save(good)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:40])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    out = tmp_path / "outdir"
    assert main(["upscale", str(truncated), str(good), str(empty), "-o", str(out), "-m", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "cut.png: cannot read image" in err and "empty.png: is empty (0 bytes)" in err
    assert "done 1, skipped 0, failed 2" in err
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]


def test_output_equal_to_input_is_refused_before_anything_runs(home, tmp_path, capsys, sha256):
    copy = tmp_path / "in.png"
    copy.write_bytes(SAMPLE.read_bytes())
    assert main(["upscale", str(copy), "-o", str(copy), "-m", "tiny"]) == 2
    assert "-o is this input itself" in capsys.readouterr().err
    assert sha256(copy) == sha256(SAMPLE)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--tile", "5"], "--tile"),
        (["--device", "cuda:7" if not torch.cuda.is_available() else "tpu"], "--device"),
        (["--dtype", "int4"], "--dtype"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(home, tmp_path, capsys, argv, needle):
    target = tmp_path / "y.png"
    with pytest.raises(SystemExit) as stop:
        main(["upscale", str(SAMPLE), "-o", str(target), *argv])
    assert stop.value.code == 2 and needle in capsys.readouterr().err
    assert not target.exists()


def test_unknown_model_exits_2_and_lists_the_available_ones(home, tmp_path, capsys):
    target = tmp_path / "y.png"
    assert main(["upscale", str(SAMPLE), "-o", str(target), "-m", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "no model or weights file named 'no-such-model'" in err and "tiny" in err
    assert not target.exists()


def test_building_the_parser_does_not_import_torch():
    """`srkit --version` and `--help` answer at once: option choices and defaults come from torch-free modules."""
    code = "import sys, srkit.cli as c; c.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_gray_model_upscales_a_colour_photo_plane_by_plane(tmp_path, capsys):
    """A one-channel model on an RGB photo runs R, G and B each as a gray image (the README's choice)."""
    module, _ = small_model("compact-gray-x2", seed=9)
    torch.save(module.state_dict(), tmp_path / "gray.pth")
    rgb = np.random.default_rng(9).integers(0, 256, (12, 15, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    assert (
        main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", str(tmp_path / "gray.pth")])
        == 0
    )
    with Image.open(tmp_path / "out.png") as image:
        assert image.mode == "RGB"
        out = np.asarray(image)
    with torch.no_grad():  # oracle: the PyTorch module on each plane alone, clamped and rounded half up
        planes = torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255)[:, None]
        expected = np.floor(module(planes).clamp(0, 1)[:, 0].permute(1, 2, 0).numpy() * 255 + 0.5)
    assert out.shape == (24, 30, 3) and np.abs(out.astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    "command",
    [
        ["upscale", "{image}", "-o", "{out}/up.png"],
        ["textures", "--exemplar", "{image}", "-o", "{out}", "-n", "1", "--size", "32"],
        ["textures", "convert", "{image}", "-o", "{out}"],
        ["train", "gan", "{image}", "-o", "{out}", "--steps", "1"],
        ["train", "sr", "{image}", "-o", "{out}", "--steps", "1", "--patch", "16"],
        ["eval", "{image}"],
    ],
    ids=lambda command: " ".join(word for word in command[:2] if not word.startswith("{")),
)
def test_every_command_that_reads_images_takes_the_max_pixels_its_bomb_error_names(tmp_path, capsys, command):
    """An image over the limit is a one-line error naming --max-pixels (upscale adds its summary line) and nothing
    is written; the command takes that option, and raising it lets the same image through the guard."""
    Image.fromarray(np.full((72, 72, 3), 120, np.uint8)).save(tmp_path / "image.png")
    argv = [word.format(image=tmp_path / "image.png", out=tmp_path / "out") for word in command]
    assert main([*argv, "--max-pixels", "5000"]) != 0
    error = capsys.readouterr().err.strip()
    assert "72x72 is over the decompression-bomb limit of 5000 pixels (raise it with --max-pixels" in error, error
    assert "Traceback" not in error and not (tmp_path / "out").exists() and not (tmp_path / "up.png").exists()
    main([*argv, "--max-pixels", "6000"])
    assert "decompression-bomb" not in capsys.readouterr().err
