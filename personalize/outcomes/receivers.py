"""Signal receivers of the outcomes package, connected from ``AppConfig.ready``.

* ``subject_erased`` with ``reason="erasure"``: the subject's exposures already
  went with it (a foreign key to the subject; ``erase_subject`` deletes every
  such row), and the ones still waiting in this process's exposure buffer
  are dropped, so that none is written after the erasure. A withdrawal of
  ``personalization`` (``reason="consent_revoked"``) keeps them: exposures
  fall under ``analytics``.
"""

from __future__ import annotations

import logging
from typing import Any

from personalize import signals
from personalize.outcomes.exposures import exposures

logger = logging.getLogger(__name__)


def on_subject_erased(sender: Any = None, subject_id: Any = None, reason: str | None = None,
                      **kwargs: Any) -> None:
    """Receiver of ``subject_erased``: drop the erased subject's buffered exposures."""
    if subject_id is None or reason != "erasure":
        return
    try:
        exposures.discard_subject(int(subject_id))
    except Exception:  # never fail the erasure's after-commit work
        logger.exception("Could not drop the buffered exposures of subject %s", subject_id)


def connect_outcome_signals() -> None:
    """Connect the outcomes receivers (idempotent)."""
    signals.subject_erased.connect(on_subject_erased, dispatch_uid="personalize.outcomes.erased")
