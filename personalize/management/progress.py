"""Progress bars for the management commands, on the command's own stderr."""

from __future__ import annotations

from typing import Any

from django.core.management.base import OutputWrapper
from tqdm import tqdm


class ProgressFile:
    """A command's ``stderr`` as a file for tqdm.

    ``OutputWrapper.write`` ends every write with a newline; a progress bar
    redraws its line with a carriage return and must write without one.
    """

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write(text, ending="")

    def flush(self) -> None:
        self.stream.flush()


class StepBars:
    """A bar per long step inside a training, fed by ``report_progress`` (see ``reporting``).

    ``report(step, done, total)`` is the callback: a new step (or a new total)
    closes the previous bar and opens one below the command's main bar; a bar
    closes when its step is done.
    """

    def __init__(self, stream: OutputWrapper, prefix: str = "", *, disable: bool = False) -> None:
        self.file = ProgressFile(stream)
        self.prefix = prefix
        self.disable = disable
        self.bar: tqdm[Any] | None = None
        self.key: tuple[str, int] | None = None

    def report(self, step: str, done: int, total: int) -> None:
        if self.disable or total <= 0:
            return
        if self.bar is None or self.key != (step, total):
            self.close()
            # left on screen when done: how long encoding a catalog took is worth seeing
            self.bar = tqdm(total=total, desc=f"{self.prefix}{step}", file=self.file,
                            position=1, leave=True)
            self.key = (step, total)
        self.bar.update(max(done - self.bar.n, 0))
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.key = None, None
