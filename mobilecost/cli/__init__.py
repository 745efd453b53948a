"""The mobilecost command line: `mobilecost COMMAND --help` for each command."""

from . import analytic  # noqa: F401  (registers the commands)
from . import sweep  # noqa: F401
from . import torch_cmds  # noqa: F401
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
