"""FFmpeg's colour tags and the swscale flags that convert between the video's YUV and srkit's RGB.

FFmpeg AVColorSpace values map to the matrices PyAV's reformatter knows; each matrix has the primaries, transfer
and matrix tags the output stream is given.
"""

from __future__ import annotations

import av
import av.video.reformatter

MATRICES = {1: "itu709", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# The matching AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace tags for the output stream.
TAGS = {"itu709": (1, 1, 1), "itu601": (5, 6, 5), "smpte170m": (6, 6, 6), "smpte240m": (7, 7, 7), "bt2020": (9, 14, 9)}
RANGE_MPEG, RANGE_JPEG = 1, 2  # AVColorRange: limited (TV) and full (PC)
HDR_TRANSFERS = {16: "PQ", 18: "HLG"}  # AVColorTransferCharacteristic values of HDR video
HD_HEIGHT = 720  # untagged video this tall or taller is BT.709, smaller is BT.601
# swscale's flags (measured on a real photo against the exact BT.709 formulas): its default 4:2:0 -> RGB path
# interpolates chroma in a way that leaves RGB about 1-1.5 codes dark; accurate rounding with full chroma
# interpolation is within 0.02. 16-bit RGB is unbiased with the defaults (and wrong with FULL_CHR_H_INT).
# RGB -> YUV is within 0.06 by default and 0.01 with accurate rounding.
_FLAGS = av.video.reformatter.Interpolation
TO_RGB_8BIT = _FLAGS.BILINEAR | _FLAGS.ACCURATE_RND | _FLAGS.FULL_CHR_H_INT
TO_YUV = _FLAGS.BILINEAR | _FLAGS.ACCURATE_RND
