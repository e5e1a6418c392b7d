"""A cache outage is logged once per interval, not once per call: no log flood."""

from __future__ import annotations

import logging
from unittest import mock

import pytest

from personalize.backends.cache import personalize_cache, reset_warning_throttle
from personalize.consent.service import has_consent
from personalize.models import Subject
from personalize.tracking.ratelimit import hit_ip

pytestmark = pytest.mark.django_db


def test_many_calls_during_an_outage_log_one_warning(caplog):
    subject = Subject.objects.create(visitor_id="v-outage")
    cache = personalize_cache()
    reset_warning_throttle()
    failing = {name: mock.patch.object(cache, name, side_effect=ConnectionError("hung"))
               for name in ("get", "get_many", "set", "set_many", "add", "incr")}
    with caplog.at_level(logging.WARNING, logger="personalize"):
        for patch in failing.values():
            patch.start()
        try:
            for _ in range(20):
                assert has_consent(subject) is False  # answered from the ledger
                assert hit_ip("203.0.113.7") is None  # let through
        finally:
            for patch in failing.values():
                patch.stop()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "unreachable" in warnings[0].getMessage()
    assert warnings[0].exc_info is None  # one line, no traceback per call
