"""ModelInfo: everything the engine and the CLI may know about a network, read from its weights alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from .size_rules import SizeRules

ALL_DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelInfo:
    """Descriptor of a loaded network (SR, or the texture generator: noise channels in, scale 2^stages);
    callers read this instead of poking into the module."""

    arch: str
    """Architecture id of the registry ('rrdb', 'compact', 'span', 'seednet', 'dcgan', or spandrel's id)."""
    net_scale: int
    """Output size / input size of the network itself (an output resize after it is the loaded model's)."""
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
    size_rules: SizeRules = field(default_factory=SizeRules)
    """Input sizes the network accepts; the engine pads to them and crops back (SizeRules.pad, .crop)."""
    receptive_radius: int = 0
    """Input pixels on each side that can influence one output pixel (the exact, theoretical reach)."""
    fused: bool = True
    """True when srkit runs the network as its own fused kernel plan; False: the module runs eagerly."""
