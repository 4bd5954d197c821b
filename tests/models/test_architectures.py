"""Architectures: many configurations round-trip through save -> detect -> load with their hyper-parameters."""

from __future__ import annotations

import pytest
import torch

from srkit.errors import ModelFormatError
from srkit.models import compact, detect_arch, load_state_dict, rrdb, seednet
from srkit.models.weights import read_weights, write_safetensors

COMPACT_CONFIGS = [
    dict(features=16, num_conv=2, scale=2, act="prelu"),
    dict(features=24, num_conv=5, scale=3, act="prelu"),
    dict(features=8, num_conv=1, scale=4, act="prelu"),
    dict(features=12, num_conv=3, scale=1, act="prelu"),
]
RRDB_CONFIGS = [
    dict(features=16, num_block=2, growth=8, scale=4),
    dict(features=12, num_block=1, growth=4, scale=2),
    dict(features=8, num_block=3, growth=8, scale=1),
]


def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return module


@pytest.mark.parametrize("config", COMPACT_CONFIGS, ids=str)
def test_compact_round_trip_recovers_hyper_parameters(config):
    module = _randomised(compact.CompactSR(**config), 0)
    assert detect_arch(module.state_dict()) == "compact"
    loaded, info = load_state_dict(module.state_dict())
    assert (info.arch, info.net_scale, info.features, info.blocks) == (
        "compact",
        config["scale"],
        config["features"],
        config["num_conv"],
    )
    assert info.receptive_radius == config["num_conv"] + 2
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), module(x))


@pytest.mark.parametrize("config", RRDB_CONFIGS, ids=str)
def test_rrdb_round_trip_recovers_hyper_parameters(config):
    module = _randomised(rrdb.RRDBNet(**config), 1)
    assert detect_arch(module.state_dict()) == "rrdb"
    loaded, info = load_state_dict(module.state_dict())
    assert (info.net_scale, info.features, info.blocks, loaded.growth) == (
        config["scale"],
        config["features"],
        config["num_block"],
        config["growth"],
    )
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        y = loaded(x)
        assert torch.equal(y, module(x))
    assert y.shape == (1, 3, 8 * config["scale"], 12 * config["scale"])


def test_seednet_needs_its_scale_from_metadata(tmp_path):
    module = _randomised(seednet.SeedNet(features=8, num_conv=2, scale=3), 2)
    assert detect_arch(module.state_dict()) == "seednet"
    with pytest.raises(ModelFormatError, match="scale"):
        load_state_dict(module.state_dict())
    path = write_safetensors(tmp_path / "s.safetensors", module.state_dict(), {"arch": "seednet", "scale": 3})
    loaded, info = load_state_dict(*read_weights(path))
    x = torch.rand(2, 3, 5, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), module(x))
    assert info.net_scale == 3 and loaded(x).shape == (2, 3, 15, 18)


def test_seednet_output_is_bilinear_upsample_plus_residual():
    """With the tail zeroed, seednet returns exactly the align_corners=True bilinear upsampling."""
    module = seednet.SeedNet(features=8, num_conv=1, scale=2)
    with torch.no_grad():
        module.tail.weight.zero_()
        module.tail.bias.zero_()
        x = torch.rand(1, 3, 6, 5)
        expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        assert torch.allclose(module(x), expected, atol=1e-6)


def test_unknown_keys_are_refused_with_the_source_named():
    with pytest.raises(ModelFormatError, match="mystery.pth: unknown architecture"):
        load_state_dict({"encoder.weight": torch.zeros(3, 3)}, source="mystery.pth")


def test_wrong_shapes_for_the_detected_arch_are_refused():
    state = compact.CompactSR(features=8, num_conv=2, scale=2).state_dict()
    state["body.2.weight"] = torch.zeros(8, 5, 3, 3)
    with pytest.raises(ModelFormatError, match="do not fit"):
        load_state_dict(state, source="broken.pth")


def test_metadata_naming_rrdb_for_weights_in_no_rrdb_layout_is_refused_with_the_source_named():
    """A file whose srkit metadata says rrdb while its keys are in none of RRDB's layouts: one line naming the
    file and the key that is missing, not a traceback."""
    state = compact.CompactSR(features=8, num_conv=2, scale=2).state_dict()
    with pytest.raises(ModelFormatError, match=r"relabelled\.safetensors: rrdb weights do not fit .*conv_first"):
        load_state_dict(state, {"arch": "rrdb"}, source="relabelled.safetensors")
