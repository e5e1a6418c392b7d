"""How the REST endpoints answer when the database cannot be reached: 503 with ``Retry-After``.

A view's own code is not the first to touch the database: for a signed-in
request DRF's authentication loads the session and the user before any view
method runs, and a persistent connection (``CONN_MAX_AGE``) that went stale
when the database restarted fails on its first query, wherever that is. Both
raise ``OperationalError`` or ``InterfaceError`` (the connection is gone) inside
DRF's ``dispatch``, which hands them to the view's exception handler;
:class:`DatabaseOutageHandling` answers them with 503 and ``Retry-After``, so
clients (the JavaScript tracker, a server's retry queue) try again instead of
dropping the request as a 500. Every other exception goes on to the site's
``REST_FRAMEWORK["EXCEPTION_HANDLER"]``.

Django closes a connection that failed this way when the request ends, so the
next request reconnects; ``CONN_HEALTH_CHECKS = True`` on the database spares
the first request after a restart (see docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

#: Seconds a client should wait before retrying after a database outage.
RETRY_AFTER_SECONDS = 30

#: What a lost or unreachable database raises through Django.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)

Handler = Callable[[Exception, dict[str, Any]], Response | None]


def service_unavailable(detail: str) -> Response:
    """A 503 answer with ``detail`` and ``Retry-After``."""
    return Response({"detail": detail}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class DatabaseOutageHandling:
    """Mixin for the API views: database outages are 503 with ``Retry-After``, never 500."""

    def get_exception_handler(self) -> Handler:
        """The site's exception handler, with database outages answered first."""
        handler: Handler = super().get_exception_handler()  # type: ignore[misc]

        def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
            if isinstance(exc, UNAVAILABLE_ERRORS):
                logger.error("Database unavailable for %s; answered 503",
                             getattr(context.get("request"), "path", "?"), exc_info=exc)
                set_rollback()  # a request-wide transaction (ATOMIC_REQUESTS) cannot go on
                return service_unavailable("The database is unavailable; retry later.")
            return handler(exc, context)

        return handle
