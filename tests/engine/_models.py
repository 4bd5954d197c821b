"""Small randomly initialised SR networks of every architecture, for engine tests."""

from __future__ import annotations

from pathlib import Path

import torch

from srkit.models import compact, load_state_dict, rrdb, seednet, span

SMALL = {
    "compact-x3": lambda: compact.CompactSR(features=16, num_conv=3, scale=3),
    "compact-x4": lambda: compact.CompactSR(features=12, num_conv=2, scale=4),
    "compact-gray-x2": lambda: compact.CompactSR(in_channels=1, out_channels=1, features=8, num_conv=2, scale=2),
    "rrdb-x4": lambda: rrdb.RRDBNet(features=16, num_block=2, growth=8, scale=4),
    "rrdb-x2": lambda: rrdb.RRDBNet(features=12, num_block=1, growth=8, scale=2),
    "rrdb-x1": lambda: rrdb.RRDBNet(features=8, num_block=1, growth=4, scale=1),  # x4 unshuffle, two x2 steps
    "seednet-x2": lambda: seednet.SeedNet(features=8, num_conv=2, scale=2),
    "span-x4": lambda: span.SPAN(features=8, scale=4, norm=False),  # x255 input scaling is tested with spandrel
}


def small_model(name: str, seed: int = 0):
    """(module, info) with seeded random weights large enough that every layer matters."""
    module = SMALL[name]()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() == 1 else 1.0) / max(1, p[0].numel()) ** 0.5)
    scale = {"scale": module.scale} if isinstance(module, seednet.SeedNet) else {}
    return load_state_dict(module.state_dict(), {"arch": name.split("-")[0], **scale})


def nearest_x2(batch: torch.Tensor) -> torch.Tensor:
    """A 'network' x2 whose output depends on nothing but its pixel (receptive radius 0): exact, fast."""
    return batch.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def install_user_model(folder: Path, name: str, module: torch.nn.Module) -> None:
    """Save `module` as a Real-ESRGAN-style .pth in `folder` and import it as user model `name` via the CLI
    (SRKIT_HOME must already point at a test directory)."""
    from srkit.cli import main

    source = folder / f"{name}.pth"
    torch.save({"params_ema": module.state_dict()}, source)
    assert main(["models", "import", str(source), "--name", name]) == 0


def install_tiny_and_nearest(folder: Path, seed: int) -> None:
    """'tiny' (random compact x3) and 'nearest' (compact x4 whose residual is zero: plain nearest upscaling)."""
    install_user_model(folder, "tiny", small_model("compact-x3", seed=seed)[0])
    nearest, _ = small_model("compact-x4", seed=seed + 1)
    with torch.no_grad():
        nearest.body[-1].weight.zero_()
        nearest.body[-1].bias.zero_()
    install_user_model(folder, "nearest", nearest)
