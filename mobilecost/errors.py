"""The project's own error types. Library code raises these; only the CLI turns them
into one line on stderr and exit code 2."""

from __future__ import annotations


class MobilecostError(ValueError):
    """Bad input to mobilecost: a message meant for a person, no traceback needed."""


class SpecError(MobilecostError):
    """A layer spec that cannot be parsed, with where it went wrong."""

    def __init__(self, message: str, source: str = "<spec>", line: int = 0,
                 col: int = 0, token: str | None = None) -> None:
        self.message, self.source, self.line, self.col, self.token = message, source, line, col, token
        where = source if not line else (f"{source}:{line}:{col}" if col else f"{source}:{line}")
        got = f" (got {token!r})" if token is not None else ""
        super().__init__(f"{where}: {message}{got}")


class ConfigError(MobilecostError):
    """A configuration (alpha, resolution) that a spec cannot be built at."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a long library call, with what it kept: `message` says truthfully what
    was finished and kept (measurements in the cache, files written) and how to resume; the
    CLI prints it as its one line and exits with 130."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
