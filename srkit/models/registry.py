"""The ordered registry of architectures: detection tries them in order (an earlier entry wins where two
would match, so the strictest layouts come first and compact's loose rule last), loading reports one line."""

from __future__ import annotations

import torch.nn as nn

from ..errors import ModelFormatError
from . import compact, dcgan, dcgan_transposed, ncnn_arch, realcugan, rrdb, seednet, span, spandrel_models, waifu2x
from .arch import Arch, StateDict
from .info import ModelInfo
from .ncnn_graph import Graph

GRAPH_ARCHES: tuple[ncnn_arch.GraphArch, ...] = (realcugan.ARCH, waifu2x.ARCH, ncnn_arch.ARCH)
"""Architectures that run an ncnn graph as it is, in recognition order (the generic graph last)."""
SR_ARCHES: tuple[Arch, ...] = (rrdb.ARCH, span.ARCH, seednet.ARCH, compact.ARCH, *GRAPH_ARCHES, spandrel_models.ARCH)
"""Super-resolution architectures, in detection order (ncnn graphs are loaded by id; of the graph architectures
only RealCUGAN is also detected, from the key layout of its .pth files, ahead of spandrel)."""
GENERATOR_ARCHES: tuple[Arch, ...] = (dcgan.ARCH, dcgan_transposed.ARCH)
"""Texture generators: today's design and the earlier one its older families use."""
ARCHES: tuple[Arch, ...] = SR_ARCHES + GENERATOR_ARCHES
"""Everything srkit can lower, by id (texture generators are loaded by name, never detected as SR models)."""


def by_id(arch_id: str) -> Arch | None:
    """The architecture with this id ('spandrel:<its id>' is spandrel's), or None."""
    return next((arch for arch in ARCHES if arch.id == arch_id.partition(":")[0]), None)


def graph_arch(graph: Graph) -> ncnn_arch.GraphArch:
    """The first graph architecture that recognises `graph` (the generic one takes any)."""
    return next(arch for arch in GRAPH_ARCHES if arch.matches(graph))


def trainable_ids() -> tuple[str, ...]:
    """Ids `srkit train sr --arch` accepts."""
    return tuple(arch.id for arch in SR_ARCHES if arch.trainable)


def detect(state_dict: StateDict) -> Arch | None:
    """The first SR architecture whose key layout `state_dict` has, or None."""
    return next((arch for arch in SR_ARCHES if arch.detect(state_dict)), None)


def _unknown(state_dict: StateDict, source: str) -> ModelFormatError:
    """One line naming the closest known layout and the keys the file lacks for it."""
    share, layout, missing, arch = max(
        ((*arch.closest(state_dict), arch) for arch in SR_ARCHES if arch.layouts), key=lambda found: found[0]
    )
    sample = ", ".join(sorted(state_dict)[:3])
    others = "" if spandrel_models.import_spandrel() else f"; other architectures load with {spandrel_models.EXTRA}"
    return ModelFormatError(
        f"{source}: unknown architecture (keys begin {sample}); closest is {arch.name} "
        f"({layout.name} layout, {share:.0%} of its keys), which also needs "
        f"{', '.join(missing[:3])}{others}"
    )


def arch_for(state_dict: StateDict, metadata: dict, source: str = "weights") -> Arch:
    """The architecture srkit metadata names, else the one detected from the keys; one line naming the file if
    there is none."""
    if metadata.get("arch"):
        arch = by_id(metadata["arch"])
        if arch is None:
            raise ModelFormatError(
                f"{source}: architecture {metadata['arch']!r} in its metadata is not one srkit "
                "knows; upgrade srkit or re-import the original weights"
            )
        return arch
    arch = detect(state_dict)
    if arch is None:
        raise _unknown(state_dict, source)
    return arch


def load_state_dict(
    state_dict: StateDict, metadata: dict | None = None, source: str = "weights"
) -> tuple[nn.Module, ModelInfo]:
    """Detect the architecture (or take srkit metadata's), rebuild the module in eval mode and describe it."""
    metadata = metadata or {}
    return load_as(arch_for(state_dict, metadata, source), state_dict, metadata, source)


def load_as(arch: Arch, state_dict: StateDict, hints: dict, source: str) -> tuple[nn.Module, ModelInfo]:
    """`arch.load`, with weights whose shapes do not fit its network reported in one line naming the file."""
    try:
        return arch.load(state_dict, hints)
    except (RuntimeError, KeyError, ValueError, IndexError) as error:
        raise ModelFormatError(
            f"{source}: {arch.id} weights do not fit the network ({str(error).strip().splitlines()[0]})"
        ) from None
