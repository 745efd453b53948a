"""The progress bar on stderr for a slow library call, and what Ctrl-C prints: written once.

    with progress(f"measuring {name}", total) as step:
        rows = library_call(..., on_progress=step)

`step(done, total, text)` moves the bar. A library call interrupted by Ctrl-C raises
`errors.Interrupted` with the one line that says truthfully what it kept (measurements in the
cache, files written) and how to resume; the command prints that line and exits with 130.
The bar shows only on a terminal.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from ..errors import Interrupted
from .common import err_console, fail


@contextlib.contextmanager
def progress(description: str, total: int,
             show: bool = True) -> Iterator[Callable[[int, int, str], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                   transient=True, disable=not (show and err_console.is_terminal))
    with bar:
        # a bar whose total is not known yet stays hidden until its first step
        task = bar.add_task(description, total=total, visible=total > 0)

        def step(done: int, total: int, text: str) -> None:
            bar.update(task, completed=done, total=total, description=text, visible=True)

        try:
            yield step
        except Interrupted as exc:
            bar.stop()
            raise fail(exc.message, 130) from None


__all__ = ["progress"]
