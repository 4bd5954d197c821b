"""Every architecture and key layout srkit fuses, against spandrel (the loader chaiNNer uses) as the oracle:
spandrel's own network with random weights is saved as .pth and .safetensors, loaded by srkit, and srkit's
fused plan (reference kernels and Triton's interpreter) must give spandrel's module output on odd-sized
random images; the descriptor (scale, channels, features, blocks) must agree with spandrel's."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.cli import main
from srkit.engine.plan import build_plan
from srkit.errors import ModelFormatError
from srkit.models.weights import write_safetensors
from srkit.models.zoo import load_model

from ._spandrel import randomised, save_both, spandrel_or_skip

# fp32 everywhere; a relative bound because random weights give outputs far outside [0, 1].
RELATIVE_TOLERANCE = 2e-5
# SPAN scales its input by 255 and random weights amplify further: spandrel's own fp32 run is 8e-5 of the
# peak away from its float64 run, srkit's plan 4e-5; both are checked against the float64 run.
SPAN_TOLERANCE = 1e-4


def _assert_matches(
    got: torch.Tensor, expected: torch.Tensor, what: str, tolerance: float = RELATIVE_TOLERANCE
) -> None:
    assert got.shape == expected.shape, what
    error = (got.double() - expected.double()).abs().max().item()
    bound = tolerance * max(1.0, expected.abs().max().item())
    assert error <= bound, f"{what}: max error {error:.3g} > {bound:.3g}"


def _image(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


# ESRGAN ------------------------------------------------------------------------------------------------------


def _original_to_basicsr(state: dict, bsrgan: bool) -> dict:
    """spandrel's module keys (original ESRGAN layout) renamed to basicsr's, or BSRGAN's (RRDB_trunk...)."""
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))}
    tail = sorted(
        {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.weight$", k)) and m.group(1) != "0"}
    )
    up, hr, last = ("upconv", "HRconv", "conv_last") if bsrgan else ("conv_up", "conv_hr", "conv_last")
    names = {0: "conv_first", **{k: f"{up}{i + 1}" for i, k in enumerate(tail[:-2])}, tail[-2]: hr, tail[-1]: last}
    renamed = {}
    for key, value in state.items():
        if m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(\w+)$", key):
            n, r, c, kind = m.groups()
            key = f"RRDB_trunk.{n}.RDB{r}.conv{c}.{kind}" if bsrgan else f"body.{n}.rdb{r}.conv{c}.{kind}"
        elif m := re.match(r"model\.1\.sub\.(\d+)\.(\w+)$", key):
            assert int(m.group(1)) == max(blocks) + 1
            key = f"{'trunk_conv' if bsrgan else 'conv_body'}.{m.group(2)}"
        elif m := re.match(r"model\.(\d+)\.(\w+)$", key):
            key = f"{names[int(m.group(1))]}.{m.group(2)}"
        renamed[key] = value
    return renamed


ESRGAN_CASES = {
    "original-x4": (dict(num_filters=16, num_blocks=2, scale=4), "original", 4),
    "original-x2": (dict(num_filters=8, num_blocks=1, scale=2), "original", 2),
    "original-x1": (dict(num_filters=8, num_blocks=1, scale=1), "original", 1),
    "original-x8": (dict(num_filters=8, num_blocks=1, scale=8), "original", 8),
    "esrgan-plus-x4": (dict(num_filters=8, num_blocks=1, scale=4, plus=True), "original", 4),
    "basicsr-x4": (dict(num_filters=12, num_blocks=2, scale=4), "basicsr", 4),
    "basicsr-x2-unshuffle": (dict(in_nc=12, num_filters=8, num_blocks=1, scale=4, shuffle_factor=2), "basicsr", 2),
    "basicsr-x1-unshuffle": (dict(in_nc=48, num_filters=8, num_blocks=1, scale=4, shuffle_factor=4), "basicsr", 1),
    "bsrgan-x4": (dict(num_filters=8, num_blocks=1, scale=4), "bsrgan", 4),
}


# The layouts differ only in key names, read before lowering; Triton runs the plan shapes that differ: ESRGAN+
# residual paths, unshuffling, no upsampling (the interpreter takes ~10 s per RRDB case).
TRITON_ESRGAN = ("esrgan-plus-x4", "basicsr-x2-unshuffle", "original-x1")
ESRGAN_RUNS = [(case, "reference") for case in ESRGAN_CASES] + [(case, "triton") for case in TRITON_ESRGAN]


@pytest.fixture(scope="module")
def esrgan_files(tmp_path_factory):
    """case -> (spandrel descriptor, .pth, .safetensors) for one ESRGAN configuration and key layout."""
    made = {}

    def files(case: str):
        if case not in made:
            spandrel = spandrel_or_skip()
            from spandrel.architectures.ESRGAN import ESRGAN

            config, layout, scale = ESRGAN_CASES[case]
            state = randomised(ESRGAN(**config), seed=len(case)).state_dict()
            if layout != "original":
                state = _original_to_basicsr(state, bsrgan=layout == "bsrgan")
            descriptor = spandrel.ModelLoader().load_from_state_dict(state)  # spandrel reads the renamed layout
            assert descriptor.architecture.id == "ESRGAN" and descriptor.scale == scale
            made[case] = (descriptor, *save_both(tmp_path_factory.mktemp("esrgan"), case, state))
        return made[case]

    return files


@pytest.mark.parametrize("case,backend", ESRGAN_RUNS)
def test_esrgan_layouts_match_spandrel(esrgan_files, use_backend, case, backend):
    descriptor, pth, safetensors = esrgan_files(case)
    config = ESRGAN_CASES[case][0]
    x = _image(13, 11, seed=1)  # odd sides: unshuffling models pad and crop
    with torch.no_grad():
        expected = descriptor.model.eval()(x)
    use_backend(backend)
    for path in (pth, safetensors) if backend == "reference" else (pth,):  # the interpreter is slow: one file
        model = load_model(path)
        info = model.info
        assert (info.arch, info.net_scale, info.in_channels, info.features, info.blocks) == (
            "rrdb",
            descriptor.scale,
            descriptor.input_channels,
            config["num_filters"],
            config["num_blocks"],
        )
        assert info.size_rules.multiple_of == config.get("shuffle_factor", 1) and info.fused
        _assert_matches(
            build_plan(model, "cpu", torch.float32).run(x), expected, f"{case} from {path.suffix} on {backend}"
        )


@pytest.mark.parametrize("case", list(ESRGAN_CASES))
def test_every_esrgan_layout_upscales_by_file_path(esrgan_files, tmp_path, case):
    """`srkit upscale -m FILE` with each layout: the PNG written equals spandrel's output in 8-bit codes."""
    descriptor, pth, _ = esrgan_files(case)
    pixels = np.random.default_rng(2).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    assert (
        main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", str(pth), "--device", "cpu"])
        == 0
    )
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = np.floor(descriptor.model.eval()(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255 + 0.5)
    got = np.asarray(Image.open(tmp_path / "out.png"))
    assert got.shape == expected.shape and np.abs(got.astype(int) - expected.astype(int)).max() <= 1, case


# Compact -----------------------------------------------------------------------------------------------------

COMPACT_CASES = {
    "compact-x4": dict(num_feat=16, num_conv=4, upscale=4),
    "ultracompact-x2": dict(num_feat=64, num_conv=8, upscale=2),
    "superultracompact-x4": dict(num_feat=24, num_conv=8, upscale=4),
    "compact-x1": dict(num_feat=8, num_conv=2, upscale=1),
}


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("case", list(COMPACT_CASES))
def test_compact_family_matches_spandrel(tmp_path, use_backend, backend, case):
    spandrel = spandrel_or_skip()
    from spandrel.architectures.Compact import Compact

    config = COMPACT_CASES[case]
    state = randomised(Compact(**config), seed=3).state_dict()
    descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    x = _image(9, 14, seed=4)
    with torch.no_grad():
        expected = descriptor.model.eval()(x)
    use_backend(backend)
    for path in save_both(tmp_path, case, state)[: 2 if backend == "reference" else 1]:
        model = load_model(path)
        assert (model.info.arch, model.info.net_scale, model.info.features, model.info.blocks) == (
            "compact",
            descriptor.scale,
            config["num_feat"],
            config["num_conv"],
        )
        _assert_matches(build_plan(model, "cpu", torch.float32).run(x), expected, f"{case} {path.suffix} {backend}")


@pytest.mark.parametrize("act", ["relu", "leakyrelu"])
def test_compact_without_prelu_matches_spandrel_module(tmp_path, act):
    """ReLU / LeakyReLU cuts hold no activation weights: a plain file reads as LeakyReLU (Real-ESRGAN's other
    choice), srkit's own file records the activation."""
    spandrel_or_skip()
    from spandrel.architectures.Compact import Compact

    network = randomised(Compact(num_feat=12, num_conv=3, upscale=2, act_type=act), seed=5).eval()
    x = _image(7, 10, seed=6)
    with torch.no_grad():
        expected = network(x)
    path = tmp_path / "m.pth"
    torch.save(network.state_dict(), path)
    if act == "relu":
        path = write_safetensors(tmp_path / "m.safetensors", network.state_dict(), {"arch": "compact", "act": "relu"})
    model = load_model(path)
    assert model.info.variant == ("relu" if act == "relu" else "leaky_relu")
    _assert_matches(build_plan(model, "cpu", torch.float32).run(x), expected, act)


# SPAN --------------------------------------------------------------------------------------------------------

SPAN_CASES = {
    "span-x4": dict(feature_channels=16, upscale=4, norm=True),
    "span-x2-no-norm": dict(feature_channels=8, upscale=2, norm=False),
    "span-x3": dict(feature_channels=12, upscale=3, norm=True),
}


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("case", list(SPAN_CASES))
def test_span_matches_spandrel(tmp_path, use_backend, backend, case):
    """The stored eval_conv weights are random (the network was never put in eval mode): srkit must refold
    the branches itself, as spandrel does on every eval forward."""
    spandrel = spandrel_or_skip()
    from spandrel.architectures.SPAN import SPAN

    config = SPAN_CASES[case]
    state = randomised(SPAN(num_in_ch=3, num_out_ch=3, **config), seed=7).state_dict()
    assert ("no_norm" in state) == (not config["norm"])
    descriptor = spandrel.ModelLoader().load_from_state_dict(dict(state))
    x = _image(11, 8, seed=8)
    with torch.no_grad():
        expected = descriptor.model.eval().double()(x.double())
    use_backend(backend)
    for path in save_both(tmp_path, case, state)[: 2 if backend == "reference" else 1]:
        model = load_model(path)
        assert (model.info.arch, model.info.net_scale, model.info.features) == (
            "span",
            descriptor.scale,
            config["feature_channels"],
        )
        _assert_matches(
            build_plan(model, "cpu", torch.float32).run(x), expected, f"{case} {path.suffix} {backend}", SPAN_TOLERANCE
        )


# Everything else spandrel knows, and files nobody knows -----------------------------------------------------


def _safmn_file(tmp_path):
    from spandrel.architectures.SAFMN import SAFMN

    path = tmp_path / "safmn.pth"
    torch.save(randomised(SAFMN(dim=8, n_blocks=1, upscaling_factor=2), seed=9).state_dict(), path)
    return path


def test_other_architectures_run_unfused_through_spandrel_with_its_size_rules(tmp_path):
    import srkit

    spandrel = spandrel_or_skip()
    path = _safmn_file(tmp_path)
    model = load_model(path)
    assert (model.info.arch, model.info.fused, model.info.size_rules.multiple_of, model.out_scale) == (
        "spandrel:SAFMN",
        False,
        8,
        2,
    )
    image = np.random.default_rng(10).random((13, 11, 3), dtype=np.float32)
    got = srkit.Upscaler(model, device="cpu", tile=64).upscale(image)
    descriptor = spandrel.ModelLoader().load_from_file(path)
    expected = descriptor(torch.from_numpy(image).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-5
    assert main(["models", "info", str(path)]) == 0


def test_other_architectures_without_the_extra_name_it(tmp_path, monkeypatch):
    spandrel_or_skip()
    from srkit.models import spandrel_models

    path = _safmn_file(tmp_path)
    monkeypatch.setattr(spandrel_models, "import_spandrel", lambda: None)
    with pytest.raises(ModelFormatError, match=r"safmn\.pth: unknown architecture .*srkit\[spandrel\]"):
        load_model(path)


def test_an_unknown_file_names_the_closest_architecture_and_its_missing_keys(tmp_path, monkeypatch):
    spandrel = spandrel_or_skip()
    from spandrel.architectures.ESRGAN import ESRGAN

    state = ESRGAN(num_filters=8, num_blocks=1, scale=4).state_dict()
    del state["model.1.sub.0.RDB1.conv1.0.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(spandrel.UnsupportedModelError):
        spandrel.ModelLoader().load_from_state_dict(state)
    with pytest.raises(
        ModelFormatError,
        match=r"broken\.pth: unknown architecture.*closest is ESRGAN.*"
        r"original ESRGAN layout.*model\.1\.sub\.0\.RDB1\.conv1\.0\.weight",
    ):
        load_model(tmp_path / "broken.pth")


@pytest.mark.parametrize("kind", ["span.safetensors", "compact.pth", "safmn.pth"])
def test_span_compact_and_spandrel_files_upscale_by_file_path(tmp_path, kind):
    """`srkit upscale -m FILE` for the other families (SAFMN: unfused, through spandrel): 8-bit codes equal
    spandrel's own descriptor call (which pads to the size rules as srkit does)."""
    spandrel = spandrel_or_skip()
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.SAFMN import SAFMN
    from spandrel.architectures.SPAN import SPAN

    network = {
        "span": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2),
        "compact": lambda: Compact(num_feat=8, num_conv=2, upscale=3),
        "safmn": lambda: SAFMN(dim=8, n_blocks=1, upscaling_factor=2),
    }[kind.split(".")[0]]()
    state = randomised(network, seed=14).state_dict()
    pth, safetensors = save_both(tmp_path, kind.split(".")[0], state)
    path = safetensors if kind.endswith("safetensors") else pth
    pixels = np.random.default_rng(15).integers(0, 256, (11, 9, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    assert (
        main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", str(path), "--device", "cpu"])
        == 0
    )
    descriptor = spandrel.ModelLoader().load_from_state_dict(dict(state))
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]
    expected = np.floor(descriptor(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255 + 0.5)
    got = np.asarray(Image.open(tmp_path / "out.png"))
    assert got.shape == expected.shape and np.abs(got.astype(int) - expected.astype(int)).max() <= 1, kind
