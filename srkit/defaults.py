"""Default choices shared by the command line and the Python API (importable without torch)."""

DEFAULT_MODEL = "srkit-photo-x4"
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold (1024 * 1024 * 1024 // 4 // 3)
DEFAULT_ONNX_OPSET = 17  # every op srkit exports exists there; TensorRT 8.6+, ONNX Runtime 1.12+ read it
# A video is cut at keyframes into pieces about this long, each a unit of work that a crash does not lose: long
# enough that the join and the encoder's restart cost nothing visible, short enough that a crash loses minutes.
DEFAULT_SEGMENT_SECONDS = 30.0
MAX_SEED = 2**32 - 1  # seeds are unsigned 32-bit, which every generator srkit seeds (numpy, torch) accepts
