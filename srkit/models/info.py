"""ModelInfo: everything the engine and the CLI may know about a network, read from its weights alone."""

from __future__ import annotations

from dataclasses import dataclass, field

# Context beyond the receptive radius that default tile overlaps add, so neighbouring tiles are blended
# over a band of 2 x this many input pixels rather than switched at one line.
BLEND_PIXELS = 4


@dataclass(frozen=True)
class ModelInfo:
    """Descriptor of a loaded network (SR, or the texture generator: noise channels in, scale 2^stages);
    callers read this instead of poking into the module."""

    arch: str
    """Architecture id: 'compact', 'rrdb', 'seednet' or 'dcgan'."""
    scale: int
    """Output size / input size of the network itself."""
    in_channels: int
    """Image channels the network takes (3 for RGB)."""
    out_channels: int
    """Image channels it returns."""
    features: int
    """Width of the hidden feature maps."""
    depth: int
    """num_conv for compact, num_block for rrdb, high-resolution conv count for seednet."""
    params: dict = field(default_factory=dict)
    """Constructor keyword arguments that rebuild the module (`build_module(info)`)."""
    receptive_radius: int = 0
    """Input pixels on each side that can influence one output pixel (the exact, theoretical reach)."""
    tile_overlap: int = 0
    """Overlap (input pixels) the tiler should use: the receptive radius, capped where it is huge (RRDB)."""
    supports_half: bool = True
    """Whether fp16/bf16 inference is known to be accurate for this network."""
