"""ModelInfo: everything the engine and the CLI may know about a network, read from its weights alone."""

from __future__ import annotations

from dataclasses import dataclass

# Context beyond the receptive radius that default tile overlaps add, so neighbouring tiles are blended
# over a band of 2 x this many input pixels rather than switched at one line.
BLEND_PIXELS = 4
ALL_DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelInfo:
    """Descriptor of a loaded network (SR, or the texture generator: noise channels in, scale 2^stages);
    callers read this instead of poking into the module."""

    arch: str
    """Architecture id of the registry ('rrdb', 'compact', 'span', 'seednet', 'dcgan', or spandrel's id)."""
    scale: int
    """Output size / input size of the network itself."""
    in_channels: int
    """Image channels the network takes (3 for RGB)."""
    out_channels: int
    """Image channels it returns."""
    features: int
    """Width of the hidden feature maps."""
    blocks: int
    """Repeated units: convs for compact, RRDB blocks, SPAN attention blocks, high-resolution convs for seednet."""
    parameters: int
    """Number of weights."""
    variant: str = ""
    """What a user would call this flavour (key layout, unshuffle, activation), for `srkit models info`."""
    dtypes: tuple[str, ...] = ALL_DTYPES
    """Precisions the network is known to run accurately in."""
    multiple_of: int = 1
    """Input height and width must be multiples of this; the engine pads (reflect) and crops to it."""
    min_size: int = 1
    """Smallest input height and width the network accepts; the engine pads smaller inputs."""
    square: bool = False
    """The input must be square (padded to the longer side)."""
    receptive_radius: int = 0
    """Input pixels on each side that can influence one output pixel (the exact, theoretical reach)."""
    tile_overlap: int = 0
    """Overlap (input pixels) the tiler should use: the receptive radius, capped where it is huge (RRDB)."""
    fused: bool = True
    """True when srkit runs the network as its own fused kernel plan; False: the module runs eagerly."""
