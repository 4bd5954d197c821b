"""Errors a user can cause: the CLI prints their one-line message and exits non-zero; bugs keep their traceback."""


class SrkitError(Exception):
    """Base of every user-facing srkit error; the message names the file or option and the fix."""

    exit_code = 1
