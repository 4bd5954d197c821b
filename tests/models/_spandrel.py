"""spandrel as the test oracle: imported through srkit's loader (an empty stand-in torchvision where the real one
is missing), skipped with the install command where spandrel itself is not installed (CI installs it)."""

from __future__ import annotations

import pytest
import torch

from srkit.models.spandrel_models import import_spandrel


def spandrel_or_skip():
    """The spandrel package, or a skip naming how to install it."""
    spandrel = import_spandrel()
    if spandrel is None:
        pytest.skip("spandrel (the model-format oracle) is not installed: pip install --no-deps spandrel einops")
    return spandrel


def randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """`module` with seeded random weights of the scale its own initialisation uses (biases non-zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * (0.1 if p.dim() == 1 else fan_in**-0.5))
    return module


def save_both(tmp_path, name: str, state: dict[str, torch.Tensor]):
    """The state dict as a plain .pth and as a plain .safetensors (the forms model databases ship)."""
    from safetensors.torch import save_file

    pth, safetensors = tmp_path / f"{name}.pth", tmp_path / f"{name}.safetensors"
    torch.save(state, pth)
    save_file({k: v.contiguous() for k, v in state.items()}, str(safetensors))
    return pth, safetensors
