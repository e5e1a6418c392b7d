"""Event times as POSIX seconds, computed by the database.

Serving's history query and the training snapshot read every event's time as
a float. Built by Django, each would be a ``datetime`` made and converted row
by row, which costs more than the query; so both select the epoch seconds
directly, with the one expression this module gives, exact to the microsecond:

* PostgreSQL: ``date_part('epoch', ...)``.
* SQLite: the datetime is stored as UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]``
  (with ``USE_TZ`` and no ``TIME_ZONE`` on the database). The whole seconds of
  the first 19 characters plus the fraction's digits padded to six, as integer
  microseconds, divided once: one correctly rounded division, as
  ``datetime.timestamp()`` does. (``strftime('%s')`` of the full text rounds
  to milliseconds first, so .9996 would count as the next second, and
  ``julianday`` is off by up to about 10 microseconds.)

Anywhere else :func:`epoch_template` is ``None`` and the caller lets Django
convert the datetimes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections

#: ``%`` is doubled twice: once for the Func template, once for the query's own
#: ``%s`` placeholders.
_SQLITE_EPOCH = (
    "((CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER) * 1000000"
    " + CAST(substr(%(expressions)s || '000000', 21, 6) AS INTEGER)) / 1000000.0)"
)


def epoch_template(alias: str) -> str | None:
    """The exact epoch-seconds ``Func`` template of ``alias``'s backend, if it has one.

    Read per call: a ``TIME_ZONE`` / ``USE_TZ`` change picks another expression.
    """
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return "date_part('epoch', %(expressions)s)"
    if (connection.vendor == "sqlite" and settings.USE_TZ
            and connection.timezone_name == "UTC"):
        # stored as naive UTC text only with USE_TZ and no DATABASES TIME_ZONE
        return _SQLITE_EPOCH
    return None


def epoch_seconds(alias: str, field: str = "timestamp") -> Any:
    """A query expression for ``field`` in epoch seconds on ``alias``, or ``None``."""
    from django.db.models import F, FloatField, Func

    template = epoch_template(alias)
    if template is None:
        return None
    return Func(F(field), template=template, output_field=FloatField())
