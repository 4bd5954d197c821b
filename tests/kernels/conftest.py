"""Kernel tests compare fp32 results with fp32 oracles at fp32 tolerances: TF32 stays off for them (torch's
convolutions and srkit's fp32 MMAs both follow `torch.backends.cudnn.allow_tf32`, on by default on CUDA); a test of
the TF32 path turns it on itself."""

import pytest
import torch


@pytest.fixture(autouse=True)
def ieee_fp32(monkeypatch):
    """fp32 convolutions in full precision, on both sides of every comparison."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
