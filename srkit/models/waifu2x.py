"""waifu2x's two network families from their ncnn files: cunet (UNets with squeeze-excitation, x1 and x2) and
upconv_7 (seven 3x3 convolutions then a 4x4 stride-2 deconvolution, anime and photo, x2), fed as
waifu2x-ncnn-vulkan feeds them: values in [0, 1] RGB, the tile replicated by the border the network crops (28 for
cunet x1, 18 for cunet x2, 7 for upconv_7) and its sides aligned to 2 (x2) or 4 (x1)."""

from __future__ import annotations

from .ncnn_arch import Feed, GraphArch
from .ncnn_graph import Graph
from .realcugan import has_squeeze_excitation


def is_upconv7(graph: Graph) -> bool:
    """Convolutions only, then one stride-2 Deconvolution last."""
    layers = [layer for layer in graph.layers if layer.type != "Input"]
    return (
        len(layers) >= 2
        and all(layer.type == "Convolution" for layer in layers[:-1])
        and layers[-1].type == "Deconvolution"
        and layers[-1]["stride_w"] == 2
    )


class Waifu2xArch(GraphArch):
    """waifu2x cunet (x1, x2) and upconv_7 (x2), any denoise level."""

    id = "waifu2x"
    name = "waifu2x (cunet, upconv_7)"
    fused = True

    def matches(self, graph):
        return has_squeeze_excitation(graph, "Scale") or is_upconv7(graph)

    def feed(self, graph, probed):
        return Feed(probed.scale, probed.border, 2 if probed.scale == 2 else 4)

    def variant(self, graph, feed):
        family = "upconv_7" if is_upconv7(graph) else "cunet"
        return f"{family} x{feed.scale}, border {feed.border}"


ARCH = Waifu2xArch()
