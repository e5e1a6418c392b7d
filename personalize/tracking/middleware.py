"""The visitor middleware: a first-party, signed, HttpOnly visitor cookie.

Add it after ``AuthenticationMiddleware``::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "personalize.tracking.middleware.VisitorMiddleware",
        ...,
    ]

It puts ``request.personalize_subject`` on every request: a lazy object that
resolves to the signed-in user's subject, else the anonymous visitor's subject
from the cookie, creating that subject on first use. Nothing touches the
database until the attribute (or :func:`resolve_subject`) is used, and the
cookie is only set once a subject was created for the visitor, so pages that
never track or personalize set no cookie. Crawlers get no subject: for them
the attribute is falsy.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from personalize.identity import VisitorState


class VisitorMiddleware:
    """Attach ``request.personalize_subject`` and maintain the visitor cookie."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        state = VisitorState(request)
        state.attach()
        response = self.get_response(request)
        state.apply_cookie(response)
        return response
