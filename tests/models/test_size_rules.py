"""Size rules: the padded size, the one padding (against torch's reflect-then-replicate), the crop, the words."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srkit.models.size_rules import SizeRules, source_index


def _oracle_pad(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """torch's own padding: reflect as far as the image allows (one pixel less than its side), then replicate."""
    h, w = x.shape[2:]
    reflect_h, reflect_w = min(height - h, h - 1), min(width - w, w - 1)
    x = F.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
    return F.pad(x, (0, width - w - reflect_w, 0, height - h - reflect_h), mode="replicate")


@pytest.mark.parametrize(
    "rules,size,padded",
    [
        (SizeRules(), (7, 9), (7, 9)),
        (SizeRules(multiple_of=2), (7, 9), (8, 10)),
        (SizeRules(multiple_of=4, min_size=20), (7, 9), (20, 20)),
        (SizeRules(min_size=16), (30, 5), (30, 16)),
        (SizeRules(multiple_of=8, square=True), (13, 30), (32, 32)),
        (SizeRules(square=True), (1, 3), (3, 3)),
    ],
)
def test_pad_reaches_the_padded_size_as_torch_pads(rules, size, padded):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    assert rules.padded_size(*size) == padded
    got = rules.pad(x)
    assert got.shape[2:] == padded
    assert torch.equal(got, _oracle_pad(x, *padded))  # far past the image too: reflected, then the edge repeated
    assert torch.equal(rules.crop(got, *size, 1, packed=False), x)


def test_a_batch_meeting_the_rules_is_not_copied():
    x = torch.rand(1, 3, 8, 12)
    assert SizeRules(multiple_of=4).pad(x) is x


def test_crop_takes_the_scaled_input_area_of_floats_and_of_packed_codes():
    floats = torch.rand(1, 3, 16, 20)
    codes = torch.zeros(1, 16, 20, 3, dtype=torch.uint8)
    assert SizeRules().crop(floats, 7, 9, 2, packed=False).shape == (1, 3, 14, 18)
    assert SizeRules().crop(codes, 7, 9, 2, packed=True).shape == (1, 14, 18, 3)


def test_source_index_wraps_or_reflects_past_the_image():
    assert source_index(-2, 7, 5, 5, wrap=True).tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert source_index(3, 12, 5, 12).tolist() == [3, 4, 3, 2, 1, 0, 0, 0, 0]
    assert source_index(0, 3, 1, 3).tolist() == [0, 0, 0]


def test_rules_in_words_and_rules_no_size_meets_are_refused():
    assert SizeRules().describe() == "any"
    assert SizeRules(2, 20, True).describe() == "multiple of 2, at least 20 px, square"
    with pytest.raises(ValueError, match="multiple_of >= 1"):
        SizeRules(multiple_of=0)
