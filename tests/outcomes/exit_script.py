"""Logs exposures in a fresh process and exits normally (tests/outcomes/test_buffer.py runs it).

The writer thread waits an hour between writes, so only the exit can write
them. Environment: ``EXIT_SUBJECT`` (a subject pk in the database the test
settings name, ``DATABASE_URL`` in the services pass), or ``EXIT_SQLITE`` (a
SQLite file to migrate and use instead); ``EXIT_COUNT`` exposures are logged.
Prints the subject pk and the impression ids as JSON.
"""

from __future__ import annotations

import json
import os
import sys

import django
from django.conf import settings


def main() -> None:
    sqlite = os.environ.get("EXIT_SQLITE")
    if sqlite:
        settings.DATABASES["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite}
    settings.PERSONALIZE["EXPOSURE_FLUSH_INTERVAL"] = 3600.0
    django.setup()

    from django.core.management import call_command

    from personalize.models import ConsentRecord, Subject
    from personalize.outcomes.exposures import exposures, log_exposure
    from personalize.serving.cache import Row
    from personalize.serving.served import Served

    if sqlite:
        call_command("migrate", verbosity=0)
        subject = Subject.objects.create()
        ConsentRecord.objects.create(subject=subject, purpose="analytics", granted=True,
                                     policy_version="1", source="server")
        subject_id = subject.pk
    else:
        subject_id = int(os.environ["EXIT_SUBJECT"])
    impressions = []
    for n in range(int(os.environ.get("EXIT_COUNT", "25"))):
        rows = [Row(n + 1, 1.0, "ease", True, "", None, f"sku-{n + 1}", "", [], {})]
        served = Served(rows, None, "home", "ease", subject_id=subject_id, analytics=True)
        impressions.append(str(log_exposure(served, "tag")))
    assert len(exposures) == len(impressions), "written before the exit: not what is tested"
    print(json.dumps({"subject": subject_id, "impressions": impressions}))
    sys.stdout.flush()
    # a normal exit: the interpreter runs the atexit handlers (gunicorn's workers exit so too)


if __name__ == "__main__":
    main()
