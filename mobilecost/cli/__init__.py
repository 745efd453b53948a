"""The mobilecost command line: `mobilecost COMMAND --help` for each command."""

# registers the commands, in the order --help lists them
from . import analytic  # noqa: F401, I001
from . import latency  # noqa: F401, I001
from . import sweep  # noqa: F401, I001
from . import formula  # noqa: F401, I001
from . import accuracy  # noqa: F401, I001
from . import pick  # noqa: F401, I001
from . import torch_cmds  # noqa: F401, I001
from . import importing  # noqa: F401, I001
from . import export  # noqa: F401, I001
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
