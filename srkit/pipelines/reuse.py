"""Held frames in video: a decoded frame equal to the last one the model ran on takes that frame's output.

Animation and screen recordings hold frames (each drawing shown for 2-3 frames, still scenes, pauses). A frame
is "held" when it equals the key frame, the last frame that went through the model: exactly by default, or
with every pixel within `threshold` 8-bit codes (scaled by 257 for 16-bit frames). Comparing with the key
frame rather than with the frame just before it keeps a slow fade from drifting away from the output it
reuses. Reuse is per frame: every frame is still written with its own timestamp, so the frame count, the
timing and the audio are untouched; with an exact match the output is the one the model would give again.
"""

from __future__ import annotations

import cv2
import numpy as np

CODE_SCALE = {np.dtype(np.uint8): 1, np.dtype(np.uint16): 257}  # one 8-bit code in each frame dtype


class HeldFrames:
    """Finds held frames in decode order and fills their outputs from the key frame's."""

    def __init__(self, threshold: int | None = 0) -> None:
        """`threshold`: largest allowed difference in 8-bit codes (0: exactly equal); None turns reuse off."""
        if threshold is not None and not 0 <= threshold <= 255:
            raise ValueError(f"the reuse threshold must be 0..255 (8-bit codes), got {threshold}")
        self.threshold = threshold
        self.key: np.ndarray | None = None
        self.key_output: np.ndarray | None = None
        self.reused = 0

    def _matches(self, frame: np.ndarray, key: np.ndarray, threshold: int) -> bool:
        if frame.shape != key.shape or frame.dtype != key.dtype:
            return False
        if threshold == 0:
            return np.array_equal(frame, key)
        limit = threshold * CODE_SCALE.get(frame.dtype, 1)
        return int(cv2.absdiff(frame, key).max()) <= limit

    def held(self, frames: list[np.ndarray]) -> list[bool]:
        """For each frame (in decode order, continuing the previous call), whether it repeats the key frame."""
        flags = []
        for frame in frames:
            repeat = (
                self.threshold is not None and self.key is not None and self._matches(frame, self.key, self.threshold)
            )
            if not repeat:
                self.key = frame
            flags.append(repeat)
        return flags

    def outputs(self, held: list[bool], computed: list[np.ndarray]) -> list[np.ndarray]:
        """One output per frame: the model's for new frames (in order, from `computed`), the key's for held ones."""
        fresh = iter(computed)
        result = []
        for repeat in held:
            if repeat:
                self.reused += 1
            else:
                self.key_output = next(fresh)
            result.append(self.key_output)
        return result
