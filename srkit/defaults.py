"""Default choices shared by the command line and the Python API (importable without torch)."""

DEFAULT_MODEL = "realesr-animevideov3"
