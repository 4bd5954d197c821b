"""Errors a user can cause: the CLI prints their one-line message and exits non-zero; bugs keep their traceback."""


class SrkitError(Exception):
    """Base of every user-facing srkit error; the message names the file or option and the fix."""

    exit_code = 1


class ModelFormatError(SrkitError):
    """A weights file srkit cannot read or does not understand (names the file and what is wrong)."""


class ModelNotFoundError(SrkitError):
    """A model name or path that does not resolve to weights available here."""

    exit_code = 2
