"""The mobilecost command line: `mobilecost COMMAND --help` for each command."""

from . import analytic, latency, sweep, torch_cmds  # noqa: F401  (registers the commands)
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
