"""The exposure buffer: rendered blocks queued in memory, written in batches off the request.

A page never waits for, or fails on, an exposure write. :meth:`ExposureBuffer.add`
appends a row to an in-process queue (a lock and a deque append); a
background thread writes the queue in batches of ``EXPOSURE_BATCH_SIZE``
every ``EXPOSURE_FLUSH_INTERVAL`` seconds, sooner when a batch is full.

* **A failed write keeps its rows** at the head of the queue and is retried
  with a growing delay (up to :data:`MAX_RETRY_DELAY` seconds): a database
  outage delays exposures, it does not lose them.
* **Memory is bounded**: at ``EXPOSURE_BUFFER_SIZE`` rows waiting, new rows are
  dropped and counted; the count is logged (a warning at most every
  :data:`WARNING_INTERVAL` seconds) and kept in :attr:`ExposureBuffer.dropped`.
* **Nothing is lost on a normal shutdown**: the queue is written when the
  interpreter exits (``atexit``, which gunicorn's workers run as they exit;
  :func:`personalize.outcomes.exposures.worker_exit` is the same as a gunicorn
  server hook), after the thread's batch in flight is done.
* **After a fork** (gunicorn's ``--preload``) the child starts with an empty
  queue and its own thread: rows queued before the fork belong to the parent.
* ``EXPOSURE_FLUSH_INTERVAL = 0`` writes each row during the request instead
  (no thread; the test settings use it): a failure still keeps the row for
  the next write, tried at most once a second meanwhile.

Rows are written by :func:`personalize.outcomes.exposures.write_exposures`,
which knows the tables; this module knows only queues and threads.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from django.db import close_old_connections

from personalize.conf import personalize_settings

logger = logging.getLogger(__name__)

#: Longest pause between two attempts while writes fail, in seconds.
MAX_RETRY_DELAY = 60.0
#: Seconds between two warnings about dropped or failing rows.
WARNING_INTERVAL = 30.0
#: Seconds the exit flush waits for the thread's batch in flight.
EXIT_JOIN_TIMEOUT = 10.0

#: Writes one batch; raises on failure (the rows are then kept and retried).
Writer = Callable[[Sequence[Any]], None]


class ExposureBuffer:
    """A bounded in-process queue of rows and the thread that writes it.

    Args:
        write: writes one batch of rows, raising when it could not.
        subject_of: the subject pk of a row (for :meth:`discard_subject`).
    """

    def __init__(self, write: Writer, subject_of: Callable[[Any], int]) -> None:
        self.write = write
        self.subject_of = subject_of
        self.dropped = 0
        self._reset()
        self._exit_registered = False
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """A fresh queue, locks and no thread (at start, and in a forked child)."""
        self._pending: deque[Any] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._delay = 0.0
        self._unreported_drops = 0
        self._last_warning = float("-inf")

    def __len__(self) -> int:
        return len(self._pending)

    # --- the request side --------------------------------------------------------

    def add(self, row: Any) -> bool:
        """Queue one row; ``False`` when the buffer is full and the row was dropped."""
        s = personalize_settings
        with self._lock:
            if len(self._pending) >= int(s.EXPOSURE_BUFFER_SIZE):
                self.dropped += 1
                self._unreported_drops += 1
                queued = False
            else:
                self._pending.append(row)
                queued = True
            waiting = len(self._pending)
        if not queued:
            self._warn_dropped()
            return False
        if not self._exit_registered:
            self._exit_registered = True
            atexit.register(self.close)
        if float(s.EXPOSURE_FLUSH_INTERVAL) <= 0:
            if time.monotonic() >= self._retry_at:
                self.flush()
            return True
        self._ensure_thread()
        if waiting >= int(s.EXPOSURE_BATCH_SIZE):
            self._wake.set()
        return True

    def discard_subject(self, subject_id: int) -> int:
        """Drop the queued rows of a subject (erased); returns how many."""
        with self._lock:
            kept = [row for row in self._pending if self.subject_of(row) != subject_id]
            removed = len(self._pending) - len(kept)
            self._pending = deque(kept)
        return removed

    # --- writing -----------------------------------------------------------------

    def flush(self) -> bool:
        """Write every queued row now, in this thread; ``True`` when nothing is left.

        A batch that fails goes back to the head of the queue, and the flush stops.
        """
        batch_size = max(1, int(personalize_settings.EXPOSURE_BATCH_SIZE))
        with self._flush_lock:
            while True:
                with self._lock:
                    batch = [self._pending.popleft()
                             for _ in range(min(batch_size, len(self._pending)))]
                if not batch:
                    self._delay = 0.0
                    self._retry_at = 0.0
                    return True
                try:
                    self.write(batch)
                except Exception as exc:
                    self._failed(batch, exc)
                    return False

    def _failed(self, batch: list[Any], exc: BaseException) -> None:
        with self._lock:
            self._pending.extendleft(reversed(batch))
            waiting = len(self._pending)
        interval = max(float(personalize_settings.EXPOSURE_FLUSH_INTERVAL), 1.0)
        self._delay = min(max(self._delay * 2, interval), MAX_RETRY_DELAY)
        self._retry_at = time.monotonic() + self._delay
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL:
            self._last_warning = now
            logger.warning("Cannot write exposures (%s: %s); %d kept, retrying in %.0f s",
                           type(exc).__name__, exc, waiting, self._delay)

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._last_warning < WARNING_INTERVAL:
            return
        with self._lock:
            count, self._unreported_drops = self._unreported_drops, 0
        self._last_warning = now
        logger.warning(
            "The exposure buffer is full (%d rows, EXPOSURE_BUFFER_SIZE): %d exposures dropped "
            "since the last warning, %d in all", personalize_settings.EXPOSURE_BUFFER_SIZE,
            count, self.dropped)

    def clear(self) -> None:
        """Forget every queued row and any pending retry (tests use it)."""
        with self._lock:
            self._pending.clear()
        self._retry_at = 0.0
        self._delay = 0.0

    # --- the thread --------------------------------------------------------------

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="personalize-exposures",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            interval = max(float(personalize_settings.EXPOSURE_FLUSH_INTERVAL), 0.01)
            self._wake.wait(timeout=max(interval, self._retry_at - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                break
            if time.monotonic() < self._retry_at:
                continue
            try:
                self.flush()
            except Exception:  # never let the thread die: rows would pile up unwritten
                logger.exception("The exposure writer failed")
            finally:
                # this thread's own connection: closed when broken or past
                # CONN_MAX_AGE, so a database that restarts is reconnected to
                close_old_connections()

    def close(self, timeout: float = EXIT_JOIN_TIMEOUT) -> bool:
        """Stop the thread and write what is queued (at exit); ``True`` when all was written."""
        thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._retry_at = 0.0
        written = self.flush()
        if not written:
            logger.error("%d exposures could not be written before the process ended",
                         len(self._pending))
        self._stop.clear()
        return written
