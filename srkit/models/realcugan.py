"""RealCUGAN (the UNet pair with squeeze-excitation of bilibili's Real-CUGAN, se and pro, x2/x3/x4): recognised
from its ncnn graph and fed as realcugan-ncnn-vulkan feeds it: values in [0, 1] RGB, the tile replicated by the
border the network crops (18/14/19 pixels at x2/x3/x4), its sides aligned to 2 (x2, x4) or 4 (x3), and at x4 the
network's output added to the nearest-upsampled input. The squeeze-excitation averages over the whole tile, so
tiles see slightly different statistics than the whole image (the upstream tools' "sync gap" pass shares them)."""

from __future__ import annotations

from .ncnn_arch import Feed, GraphArch
from .ncnn_graph import Graph


def has_squeeze_excitation(graph: Graph, gate: str) -> bool:
    """True if a global average pooling feeds two InnerProducts, the second with a sigmoid, whose result scales a
    map through a `gate` layer (BinaryOp for RealCUGAN, Scale for waifu2x's cunet)."""
    tops = {layer.tops[0]: layer for layer in graph.layers}
    for layer in graph.layers:
        if layer.type != gate or len(layer.bottoms) != 2:
            continue
        fc2 = tops.get(layer.bottoms[1])
        fc1 = tops.get(fc2.bottoms[0]) if fc2 is not None and fc2.type == "InnerProduct" else None
        pool = tops.get(fc1.bottoms[0]) if fc1 is not None and fc1.type == "InnerProduct" else None
        if (pool is not None and pool.type == "Pooling" and pool["global_pooling"] and pool["pooling_type"] == 1
                and fc2["activation_type"] == 4):
            return True
    return False


class RealCuganArch(GraphArch):
    """RealCUGAN se / pro at x2, x3, x4 from its ncnn files (any denoise level)."""

    id = "realcugan"
    name = "RealCUGAN (UNet with squeeze-excitation)"
    fused = True

    def matches(self, graph):
        return (has_squeeze_excitation(graph, "BinaryOp")
                and any(layer.type == "Deconvolution" for layer in graph.layers))

    def feed(self, graph, probed):
        return Feed(probed.scale, probed.border, 2 if probed.scale in (2, 4) else 4, residual=probed.scale == 4)

    def variant(self, graph, feed):
        return f"x{feed.scale} UNet{'s' if feed.scale > 1 else ''} with squeeze-excitation, border {feed.border}"


ARCH = RealCuganArch()
