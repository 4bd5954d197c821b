"""Commit outputs: complete under their final name or not there at all, and never over another run's output.

Every output (photo, animation, video, texture pack, imported or exported model, checkpoint) is written to a
partial file beside its target, named after this host and process (`.NAME.partial~HOST~PID.EXT`), then published:
renamed without replacing (renameat2 with RENAME_NOREPLACE; where the file system lacks that flag, a hard link
and an unlink of the partial), unless the caller asked to overwrite. "The target does not exist" and "the target
is mine" are then one step, so of two runs writing one target the second gets the usual "exists" error instead of
replacing the first one's file. The first write into a folder removes the partials that dead processes of this
host left there (a run killed with SIGKILL or a power loss), saying so in one line. An OS error while writing
(disk full, read-only folder, no permission) becomes one line naming the target and the fix.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import re
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import SrkitError

EXISTS_HINT = "pass --overwrite or --skip-existing"
AT_FDCWD = -100
RENAME_NOREPLACE = 1
PARTIAL = re.compile(r"\.(?P<name>.+)\.partial~(?P<host>[^~]*)~(?P<pid>\d+)(?:\.[^.~]*)?")
# By the OS error's errno (None where the error has none: then the general fix).
FIXES: dict[int | None, str] = {
    errno.ENOSPC: "free space on that disk or choose another output",
    errno.EDQUOT: "free space within your disk quota or choose another output",
    errno.EFBIG: "the file system or a limit refuses a file this large; choose another output",
    errno.EROFS: "the file system is read-only; choose a writable output folder",
    errno.EACCES: "no permission to write there; choose a writable output folder",
    errno.EPERM: "no permission to write there; choose a writable output folder",
}


class OutputExistsError(SrkitError):
    """The target exists (or another run published it meanwhile) and replacing it was not asked for."""


class OutputWriteError(SrkitError):
    """The operating system refused to write an output (disk full, read-only folder, no permission, ...)."""


def write_error(target: str | os.PathLike, error: OSError) -> OutputWriteError:
    """The one-line error for an OS error while writing `target`, with the fix its cause calls for."""
    fix = FIXES.get(error.errno, "check the disk and the output folder")
    return OutputWriteError(f"{target}: cannot be written ({error.strerror or error}); {fix}")


def _libc_renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # a C library without renameat2 (glibc < 2.28, musl, macOS)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


_renameat2 = _libc_renameat2()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())


def partial_path(target: str | os.PathLike) -> Path:
    """The name this process writes `target` under until it is complete (its folder swept of dead runs' partials)."""
    target = Path(target)
    sweep_partials(target.parent)
    return target.with_name(f".{target.name}.partial~{_host()}~{os.getpid()}{target.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


_swept: set[Path] = set()
_sweeping = threading.Lock()


def sweep_partials(folder: Path) -> None:
    """Once per folder and process: remove partials that processes of this host, now dead, left in `folder`."""
    folder = Path(os.path.abspath(folder))
    with _sweeping:
        if folder in _swept:
            return
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no folder yet (nothing to sweep), or one that cannot be listed
            return
        _swept.add(folder)
        for entry in entries:
            found = PARTIAL.fullmatch(entry.name)
            if not found or found["host"] != _host() or _alive(int(found["pid"])):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                print(
                    f"srkit: removed {entry.path}, left by an interrupted run (process {found['pid']})", file=sys.stderr
                )


def _rename_noreplace(source: Path, target: Path) -> None:
    """Rename `source` to `target`, or raise FileExistsError if `target` exists, in one step where possible."""
    if _renameat2 is not None:
        if _renameat2(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # else: this file system lacks the flag
            raise OSError(code, os.strerror(code), str(target))
    if not source.is_dir():
        try:
            os.link(source, target)  # a link never replaces: FileExistsError if the target appeared
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
        else:
            os.unlink(source)
            return
    # a folder, or a file system without hard links (FAT): check, then rename (another run may slip in between)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def publish(
    source: str | os.PathLike, target: str | os.PathLike, overwrite: bool = False, hint: str = EXISTS_HINT
) -> None:
    """Give the complete `source` its final name `target`; without `overwrite`, an existing target is an
    OutputExistsError (ending in `hint`) and stays as it is."""
    source, target = Path(source), Path(target)
    if overwrite:
        os.replace(source, target)
        return
    try:
        _rename_noreplace(source, target)
    except FileExistsError:
        raise OutputExistsError(f"{target} exists; {hint}") from None


def discard(path: Path) -> None:
    """Remove a partial file or folder if it is there (a failure to do so is left to the next run's sweep)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = False, hint: str = EXISTS_HINT) -> Iterator[Path]:
    """Yield the partial path to write `target` to (its folder made); publish it only if the block succeeds.

    Without `overwrite` an existing target is an OutputExistsError; OS errors (disk full, read-only folder) are
    OutputWriteError lines; nothing is left under either name when the block or the publishing fails.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(target, error) from None
    tmp = partial_path(target)
    try:
        yield tmp
        publish(tmp, target, overwrite, hint)
    except OSError as error:
        if isinstance(error, SrkitError) or error.errno is None:
            raise
        raise write_error(target, error) from None
    finally:
        discard(tmp)


def write_bytes(target: str | os.PathLike, data: bytes, overwrite: bool = False, hint: str = EXISTS_HINT) -> Path:
    """Write `data` to `target` through `atomic_path`, on disk (fsync) before it takes the final name."""
    target = Path(target)
    with atomic_path(target, overwrite, hint) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return target


def leftovers(target: str | os.PathLike) -> list[Path]:
    """Partials of `target` by any process or host, for removal once the unit writing `target` was lost (its worker
    killed, or its node gone with processes that may not have exited yet: such a writer then has nothing to publish,
    and the retried unit's own publish never replaces)."""
    target = Path(target)
    return sorted(
        path
        for path in target.parent.glob(f".{glob.escape(target.name)}.partial~*")
        if (match := PARTIAL.fullmatch(path.name)) and match["name"] == target.name
    )
