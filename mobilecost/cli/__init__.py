"""The mobilecost command line: `mobilecost COMMAND --help` for each command."""

# registers the commands, in the order --help lists them
from . import analytic, latency, sweep, formula, accuracy, pick, torch_cmds, importing, export  # noqa: F401, I001
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
