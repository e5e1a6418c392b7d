"""Progress of the long steps inside a strategy's ``fit``, for whoever runs the training.

A strategy calls :func:`report_progress` as it works (the embeddings plugin
after each slice of texts it encodes); whoever runs the training decides what
that shows by installing a callback with :func:`reporting`:
``manage.py personalize_train`` (and so the demo's ``seed_shop``) draws a
progress bar, a Celery worker shows nothing. Without a callback a report costs
one context-variable read::

    from personalize.strategies.progress import report_progress

    for done in range(0, len(texts), 512):
        ...
        report_progress("embedding texts", min(done + 512, len(texts)), len(texts))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

logger = logging.getLogger(__name__)

#: ``callback(step, done, total)``: ``step`` names the work, ``done`` of ``total`` units.
ProgressCallback = Callable[[str, int, int], None]

_callback: ContextVar[ProgressCallback | None] = ContextVar(
    "personalize_progress_callback", default=None
)


def report_progress(step: str, done: int, total: int) -> None:
    """Tell whoever runs the training that ``done`` of ``total`` units of ``step`` are done.

    Never raises: a progress display that fails must not fail a training.
    """
    callback = _callback.get()
    if callback is None:
        return
    try:
        callback(step, int(done), int(total))
    except Exception:
        logger.debug("The progress callback failed for %r", step, exc_info=True)


@contextmanager
def reporting(callback: ProgressCallback | None) -> Iterator[None]:
    """Send the :func:`report_progress` calls made inside the block to ``callback``."""
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)
