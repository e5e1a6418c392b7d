"""Progress bars for the management commands, on the command's own stderr."""

from __future__ import annotations

from django.core.management.base import OutputWrapper


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
