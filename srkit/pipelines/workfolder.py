"""The work folder of a segmented video run: `.<output name>.srkit/` beside the output, holding a manifest and the
finished segments, so that a run killed at any point (Ctrl-C, SIGKILL, power loss) can continue with --resume.

The manifest (JSON) names the input (size, mtime, a hash of its first and last MiB), the options that shape the
output, the segment plan and each finished segment's SHA-256. It is rewritten atomically (temporary file, fsync,
rename), and a segment counts as finished only once its checksum is in it, so a half-written segment is redone.
While a run uses the folder it holds an exclusive lock on it (released by the kernel however the run ends).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SrkitError
from ..io.atomic import publish, write_bytes

MANIFEST = "manifest.json"
LOCK = "lock"
MANIFEST_VERSION = 1
ENDS_BYTES = 2**20  # the input's identity hashes this much of its start and of its end
CHUNK = 2**22


class WorkFolderError(SrkitError):
    """A work folder that cannot be used as asked: from another input or other options, or in use."""


def work_folder_for(target: Path) -> Path:
    """Where the segments of `target` are kept while it is made."""
    return target.with_name(f".{target.name}.srkit")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, after making sure its bytes are on disk (a power loss must not lose a checksummed file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def input_identity(path: Path) -> dict[str, Any]:
    """Size, modification time and a hash of the first and last MiB: what tells that an input changed."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(ENDS_BYTES))
        handle.seek(max(0, stat.st_size - ENDS_BYTES))
        digest.update(handle.read(ENDS_BYTES))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ends_sha256": digest.hexdigest()}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'key old -> new' for every entry that differs between two flat records."""
    return [
        f"{key} {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new), key=str)
        if old.get(key) != new.get(key)
    ]


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish_durably(source: Path, target: Path, overwrite: bool) -> None:
    """Rename `source` to `target` (an existing target replaced only with `overwrite`: io.atomic) and make the
    rename survive a power loss."""
    publish(source, target, overwrite)
    _fsync_folder(target.parent)


@dataclass
class WorkFolder:
    """The work folder of one output: its manifest, its lock, its files."""

    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def has_manifest(self) -> bool:
        """Whether an earlier run left a manifest (without one the folder holds nothing to resume)."""
        return self.manifest_path.is_file()

    def load(self) -> dict[str, Any]:
        """The manifest; a WorkFolderError if it is unreadable or from another srkit manifest version."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise WorkFolderError(
                f"{self.manifest_path}: cannot be read ({error}); pass --overwrite to start over"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
            raise WorkFolderError(
                f"{self.manifest_path}: not a manifest this srkit writes; pass --overwrite to start over"
            )
        return manifest

    def save(self, manifest: dict[str, Any]) -> None:
        """Write the manifest atomically and durably (io.atomic: partial file, fsync, rename; then an fsync of the
        folder); a full disk is one line."""
        data = json.dumps({**manifest, "version": MANIFEST_VERSION}, indent=1).encode()
        write_bytes(self.manifest_path, data, overwrite=True)
        _fsync_folder(self.path)

    @contextlib.contextmanager
    def locked(self):
        """Hold the folder's lock for the block (a WorkFolderError if another run holds it); a folder left with no
        manifest when the block ends holds nothing to resume and is removed."""
        import fcntl

        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(self.path / LOCK, "a")
        except OSError as error:
            raise WorkFolderError(
                f"{self.path}: cannot create the work folder of a segmented run "
                f"({error.strerror or error}); choose a writable output folder"
            ) from None
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WorkFolderError(
                    f"{self.path}: another srkit run is using this work folder; wait for it or stop it"
                ) from None
            try:
                yield
            finally:
                if not self.has_manifest():
                    shutil.rmtree(self.path, ignore_errors=True)

    def clear_except(self, keep: set[str]) -> None:
        """Remove every file but the manifest, the lock and `keep` (half-written or unrecorded segments)."""
        for entry in self.path.iterdir():
            if entry.name not in keep | {MANIFEST, LOCK}:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def remove(self) -> None:
        """Delete the folder: the manifest first, so a run killed meanwhile leaves nothing that looks resumable."""
        self.manifest_path.unlink(missing_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)
