"""Exit codes of the `webhook` command, and the one error type that carries them."""

from __future__ import annotations

OK = 0
REJECTED = 1  # the receiver answered, but not 2xx (or a replay had failures)
USAGE = 2  # bad arguments, a missing or unreadable file, a bad URL
UNREACHABLE = 3  # nothing answered at the URL


class CliError(Exception):
    """A one-line message for the user, and the exit code that goes with it."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code
