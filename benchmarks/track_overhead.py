"""Latency a single tracked event adds to a page request, in-process.

Two views that differ only by the ``track()`` call (tests/tracking/urls.py):
``/untracked/<id>/`` loads the product's Item and answers; ``/tracked/<id>/``
does the same and records a ``view`` event for the visitor behind the request
(consent granted, cookie set, subject resolved through VisitorMiddleware). The
two are requested alternately through the full middleware stack with Django's
test client, and the medians are compared.

Target (issue 3): the median added latency is under 2 ms.

Usage::

    .venv/bin/python benchmarks/track_overhead.py [--requests 2000] [--sqlite]

By default it runs against the local PostgreSQL and Redis (a throw-away
database ``personalize_bench_<pid>``), like production; ``--sqlite`` uses the
embedded defaults instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if "--sqlite" in sys.argv:
    os.environ["PERSONALIZE_TEST_SERVICES"] = "0"
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.tracking_settings"

import django

django.setup()

from django.core.cache import caches  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    setup_databases,
    setup_test_environment,
    teardown_databases,
)

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


def visitor_client(subject) -> Client:
    from personalize.identity import COOKIE_SALT

    client = Client(HTTP_USER_AGENT=UA)
    response = HttpResponse()
    response.set_signed_cookie("personalize_vid", subject.visitor_id, salt=COOKIE_SALT)
    client.cookies["personalize_vid"] = response.cookies["personalize_vid"].value
    return client


def run(requests: int) -> None:
    from personalize.consent.service import grant_consent
    from personalize.models import Event, Item, Subject

    Item.objects.bulk_create([Item(external_id=f"p-{i}", title=f"Product {i}")
                              for i in range(200)])
    subject = Subject.objects.create(visitor_id="bench-visitor")
    grant_consent(subject)
    client = visitor_client(subject)
    print(f"database: {connection.vendor}, cache: {type(caches['default']).__name__}, "
          f"{requests} requests per view, alternating")

    def timed(path: str) -> float:
        t0 = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - t0
        assert response.status_code == 200, response.content[:200]
        return elapsed

    for i in range(100):  # warm up both paths
        timed(f"/untracked/p-{i % 200}/")
        assert client.get(f"/tracked/p-{i % 200}/").content == b"tracked"
    plain, tracked = [], []
    for i in range(requests):
        path = f"p-{i % 200}"
        if i % 2:  # alternate which goes first so drift hits both equally
            plain.append(timed(f"/untracked/{path}/"))
            tracked.append(timed(f"/tracked/{path}/"))
        else:
            tracked.append(timed(f"/tracked/{path}/"))
            plain.append(timed(f"/untracked/{path}/"))
    assert Event.objects.count() == requests + 100

    def ms(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if q != 50 else \
            statistics.median(values) * 1000

    print(f"without tracking: median {ms(plain, 50):.3f} ms, p90 {ms(plain, 90):.3f} ms")
    print(f"with track()    : median {ms(tracked, 50):.3f} ms, p90 {ms(tracked, 90):.3f} ms")
    added = ms(tracked, 50) - ms(plain, 50)
    paired = statistics.median(t - p for t, p in zip(tracked, plain, strict=True)) * 1000
    print(f"added by one tracked event: {added:.3f} ms (median of paired differences "
          f"{paired:.3f} ms); target < 2 ms: {'met' if added < 2 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite and locmem instead")
    args = parser.parse_args()
    if connection.vendor == "postgresql":
        connections["default"].settings_dict["TEST"]["NAME"] = f"personalize_bench_{os.getpid()}"
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        run(args.requests)
    finally:
        with contextlib.suppress(AttributeError):  # django-redis: this process's prefix only
            caches["default"].delete_pattern("*")
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
