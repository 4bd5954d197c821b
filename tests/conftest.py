"""Test set-up: Triton runs in its CPU interpreter, which must be switched on before srkit is imported;
the CPU backend is srkit's own PyTorch kernels unless a test selects OpenVINO.

On a GPU machine the `gpu`-marked tests need compiled kernels (the interpreter's bf16 dot is wrong), so run
them apart with the interpreter off: `TRITON_INTERPRET=0 python -m pytest -m gpu`.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
# Tests of tiling, pipelines and models check srkit's own fp32 kernels; the CPU runtimes have their own tests
# (tests/engine/test_cpu_backend.py and test_<runtime>_backend.py), which select them.
os.environ.setdefault("SRKIT_CPU_BACKEND", "torch")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Skip `gpu`-marked tests without CUDA, or while Triton interprets, with the reason."""
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
    elif os.environ["TRITON_INTERPRET"].lower() in ("1", "true", "on", "yes"):
        skip = pytest.mark.skip(reason="needs compiled kernels: run TRITON_INTERPRET=0 python -m pytest -m gpu")
    else:
        return
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


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """SRKIT_HOME with the tiny compact x3 model 'tiny', for one test module; worker processes and Ray actors
    inherit it through srkit's forwarded environment. A module may define its own `home` instead."""
    from tests.engine._models import install_user_model, small_model

    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SRKIT_HOME", str(folder))
        install_user_model(folder, "tiny", small_model("compact-x3", seed=31)[0])
        yield folder


@pytest.fixture(scope="module")
def keyframed_clip(tmp_path_factory):
    """make(seconds, width, height): a 10 fps clip with a keyframe every second and AAC audio, made by the ffmpeg
    CLI, so that 1-second segments cut at keyframes."""
    import subprocess

    def make(seconds: int, width: int, height: int):
        path = tmp_path_factory.mktemp("clip") / "clip.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-nostdin",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size={width}x{height}:rate=10",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:duration={seconds}",
                "-frames:v",
                str(10 * seconds),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "10",
                "-keyint_min",
                "10",
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
                str(path),
            ],
            check=True,
            timeout=120,
        )
        return path

    return make


@pytest.fixture
def models(tmp_path, monkeypatch):
    """'tiny' (random compact x3) and 'nearest' (compact x4 whose residual is zero: plain nearest upscaling) as user
    models of an SRKIT_HOME under tmp_path, with the reference kernels, for this process and its children; the
    test's tmp_path."""
    from tests.engine._models import install_tiny_and_nearest

    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SRKIT_KERNELS", "reference")
    install_tiny_and_nearest(tmp_path, seed=51)
    return tmp_path


@pytest.fixture(scope="module")
def model():
    """A seeded tiny compact x3 network as a LoadedModel (the Python API takes it without a file)."""
    from srkit.models.zoo import LoadedModel
    from tests.engine._models import small_model

    module, info = small_model("compact-x3", seed=7)
    return LoadedModel.of(module, info, "test-compact-x3")


@pytest.fixture
def sha256():
    """sha256(path): the hex digest of a file's bytes."""
    import hashlib

    return lambda path: hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def psnr():
    """psnr(a, b, peak): PSNR in dB of two arrays of values up to `peak` (inf when equal)."""
    import numpy as np

    def measure(a, b, peak: float) -> float:
        mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
        return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))

    return measure
