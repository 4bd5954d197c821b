"""The ncnn runtime as a CPU executor (the runtime Upscayl and video2x use). It is fed the model's own
`.param`/`.bin` when the model came from one that holds exactly the network srkit loaded (no output resize
inside, e.g. realesr-animevideov3 x4, Real-ESRGAN x4plus), else the files srkit's exporter writes
(`models/ncnn_export.py`) into `<srkit cache>/ncnn/`, keyed by a hash of the weights."""

from __future__ import annotations

import importlib
import importlib.util
import threading
from pathlib import Path

import numpy as np
import torch

from ..models.compact import CompactSR
from ..models.ncnn_export import export_ncnn, exportable
from ..models.ncnn_graph import read_param
from ..models.rrdb import RRDBNet
from ..models.zoo import LoadedModel
from .cpu_support import cache_folder, finish, threads, weights_key
from .plan import Plan

FORMAT = 1  # bumped when what an exported file means changes
ORIGINAL_NETWORKS = (CompactSR, RRDBNet)  # imported from ncnn graphs that are exactly these networks


def _original(model: LoadedModel) -> Path | None:
    """The model's own .param when ncnn can run it as srkit runs the module, else None."""
    source = Path(model.source)
    if (
        source.suffix == ".param"
        and not model.output_resize
        and isinstance(model.module, ORIGINAL_NETWORKS)
        and source.with_suffix(".bin").is_file()
    ):
        return source
    return None


def unavailable_reason(model: LoadedModel) -> str | None:
    """Why ncnn cannot run `model` here, or None."""
    if importlib.util.find_spec("ncnn") is None:
        return "the ncnn package is not installed (pip install 'srkit[cpu]')"
    return None if _original(model) else exportable(model.module)


def model_files(model: LoadedModel) -> Path:
    """The .param ncnn runs for `model` (its .bin beside it): the original, or srkit's export, written once."""
    original = _original(model)
    if original is not None:
        return original
    param = cache_folder() / "ncnn" / f"{weights_key(model.module, str(FORMAT))}.param"
    if not param.is_file():
        param.parent.mkdir(parents=True, exist_ok=True)
        export_ncnn(model.module, param, overwrite=True)
    return param


class NcnnPlan:
    """A Plan's network run by the ncnn runtime in fp32, one image of the batch at a time."""

    def __init__(self, plan: Plan, model: LoadedModel, dtype: torch.dtype | None) -> None:
        ncnn = importlib.import_module("ncnn")  # a compiled module whose names no type checker sees

        self.reference = plan
        self.info, self.device, self.dtype = plan.info, plan.device, plan.dtype
        self.name = "ncnn fp32"
        self.param = model_files(model)
        graph = read_param(self.param)
        self.input, self.output = graph.input, graph.output
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads()
        if self.net.load_param(str(self.param)) or self.net.load_model(str(self.param.with_suffix(".bin"))):
            raise RuntimeError(f"the ncnn runtime could not load {self.param}")
        self._mat = ncnn.Mat
        self.lock = threading.Lock()

    def _one(self, chw: np.ndarray):
        """ncnn's output Mat for one CHW float32 image (the input array and Mat stay alive until it is made)."""
        mat = self._mat(chw)
        extractor = self.net.create_extractor()
        extractor.input(self.input, mat)
        status, out = extractor.extract(self.output)
        if status:
            raise RuntimeError(f"the ncnn runtime failed on {self.param} (status {status})")
        return out

    def run(
        self, x: torch.Tensor, clamp: tuple[float, float] | None = None, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The network's output for x (N, C, H, W) in [0, 1]; clamped and converted as Plan.run does."""
        pixels = x.detach().to("cpu", torch.float32).contiguous().numpy()
        with self.lock:
            mats = [self._one(np.ascontiguousarray(image)) for image in pixels]
            views = [torch.from_numpy(np.asarray(mat)) for mat in mats]  # ncnn's buffers, alive with `mats`
            # finish makes a tensor of its own (packed straight from ncnn's buffer): the Mats may go after it
            return finish(views[0][None] if len(views) == 1 else torch.stack(views), clamp, out_dtype)

    def activation_bytes_per_pixel(self) -> float:
        """As the PyTorch plan's (fp32 activations, as ncnn's)."""
        return self.reference.activation_bytes_per_pixel()
