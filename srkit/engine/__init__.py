"""Inference engine: fused plans on srkit.kernels, tiling, memory-aware tile sizes."""
