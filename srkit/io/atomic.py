"""Write files under their final name only when complete: a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to `target` only if the block succeeds."""
    target = Path(target)
    tmp = target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def leftovers(target: str | os.PathLike) -> list[Path]:
    """The temporary files of `target` that writers killed inside atomic_path left behind (any process id)."""
    target = Path(target)
    return sorted(target.parent.glob(f".{glob.escape(target.stem)}.partial-*{glob.escape(target.suffix)}"))
