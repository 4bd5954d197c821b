"""Paths as users name them: what a named path is, told without opening it (a FIFO would block, /dev/zero never
ends), and how a path is shown inside a one-line message (a newline in a file name must not split the line)."""

from __future__ import annotations

import os
import stat

SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_file_reason(path: str | os.PathLike) -> str | None:
    """Why a path that exists as neither a regular file nor a folder (links followed) is not read, e.g. 'is a
    FIFO (named pipe), not a regular file; ...'; None for anything else. Reads the file's status, never its
    contents."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    kind = next((kind for test, kind in SPECIAL_KINDS if test(mode)), None)
    return f"is {kind}, not a regular file; srkit reads images and videos from files only" if kind else None


def shown(path: str | os.PathLike) -> str:
    """A path as text for a one-line message: control characters (newline, tab, escape, undecodable bytes)
    written as backslash escapes, everything else as it is."""
    return one_line(os.fspath(path))


def one_line(text: str) -> str:
    """`text` with every unprintable character written as its backslash escape, so it prints as one line."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape", "backslashreplace").decode("ascii")
        for char in text
    )
