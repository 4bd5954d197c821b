"""Default choices shared by the command line, the Python API and the VapourSynth filter, each defined here once
(importable without torch, so building the command-line parser stays cheap)."""

DEFAULT_MODEL = "srkit-photo-x4"
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold (1024 * 1024 * 1024 // 4 // 3)
DEFAULT_ONNX_OPSET = 17  # every op srkit exports exists there; TensorRT 8.6+, ONNX Runtime 1.12+ read it
# A video is cut at keyframes into pieces about this long, each a unit of work that a crash does not lose: long
# enough that the join and the encoder's restart cost nothing visible, short enough that a crash loses minutes.
DEFAULT_SEGMENT_SECONDS = 30.0
MAX_SEED = 2**32 - 1  # seeds are unsigned 32-bit, which every generator srkit seeds (numpy, torch) accepts

# The precisions a request may name: engine/plan.py maps the float ones to torch's; int8 (CPU only, opt-in) runs
# OpenVINO's NNCF-quantized network (engine/openvino_int8.py).
DTYPE_NAMES = ("fp16", "bf16", "fp32", "int8")
# The smallest tile --tile takes, and the floor of the automatic choice and of the out-of-memory retry: below it a
# tile is mostly overlap.
MIN_TILE = 32
# The smallest tile the Python API and the VapourSynth filter take when a caller names one (a small image cut into
# several tiles on purpose, as the tiler's tests do); the command line keeps to MIN_TILE.
SMALLEST_TILE = 8
CUDA_BATCH = 4  # tiles or video frames per model call on CUDA when none is given (a GPU needs several to fill)


def default_batch(device_type: str) -> int:
    """Tiles or frames per model call when the request names none: CUDA_BATCH on CUDA, one elsewhere (a CPU gains
    nothing from batching: its cores are busy with one tile)."""
    return CUDA_BATCH if device_type == "cuda" else 1
