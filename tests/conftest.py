"""Test set-up: Triton runs in its CPU interpreter, which must be switched on before srkit is imported."""

import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Skip `gpu`-marked tests on machines without CUDA, with the reason."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def use_backend(monkeypatch):
    """Select the kernel backend for srkit.kernels ops: use_backend('triton') or use_backend('reference')."""

    def select(name: str) -> None:
        monkeypatch.setenv("SRKIT_KERNELS", name)

    return select


@pytest.fixture
def poison_allocations():
    """While the test runs, torch.empty fills new tensors with NaN (integers: their largest value), so an output
    element a kernel never writes shows up instead of holding leftover memory that may happen to be right."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.utils.deterministic.fill_uninitialized_memory = fill
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
