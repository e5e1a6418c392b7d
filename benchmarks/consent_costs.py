"""What consent costs: the per-request check, export, erasure and the retention purge.

Side by side in one run:

* ``has_consent`` with a warm cache vs a bare ``cache.get`` of the same key
  (the service's overhead over the cache read it needs), with a request
  (GPC / DNT headers read), and cold (cache entry just deleted: one ledger
  query plus a cache write); ``has_consent_many`` per subject (batch ingestion);
* ``export_subject`` and ``erase_subject`` of a subject with ``--events`` events;
* ``purge_expired_events`` over ``--purge`` expired events (rows per second).

Usage::

    .venv/bin/python benchmarks/consent_costs.py [--services] [--calls 20000]
        [--events 1000] [--purge 100000]

``--services`` runs against the real PostgreSQL and Redis (a throw-away test
database and a per-process key prefix); otherwise SQLite in memory and the
local-memory cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")
if "--services" in sys.argv:
    os.environ["PERSONALIZE_TEST_SERVICES"] = "1"

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def per_call_us(fn, calls: int, rounds: int = 5) -> float:
    """Median over rounds of the mean microseconds per call."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", action="store_true")
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--subjects", type=int, default=200,
                        help="stay under LocMemCache MAX_ENTRIES (300) or it culls")
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--purge", type=int, default=100_000)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args: argparse.Namespace) -> None:
    from personalize.backends.cache import personalize_cache
    from personalize.consent.cache import consent_cache_key
    from personalize.consent.rights import erase_subject, export_subject
    from personalize.consent.service import grant_consent, has_consent, has_consent_many
    from personalize.consent.tasks import purge_expired_events
    from personalize.models import Event, Item, Subject

    cache = personalize_cache()
    cache.clear()
    backend = f"{connection.vendor} + {type(cache).__name__}"
    subjects = Subject.objects.bulk_create(
        [Subject(visitor_id=f"bench-{i}") for i in range(args.subjects)])
    if not subjects[0].pk:  # backends without RETURNING on bulk_create
        subjects = list(Subject.objects.order_by("pk"))
    for s in subjects[::2]:
        grant_consent(s)
    ids = [s.pk for s in subjects]
    n = len(ids)
    request = RequestFactory().get("/", headers={"DNT": "0"})
    for pk in ids:
        has_consent(pk)  # warm

    bare = per_call_us(lambda i: cache.get(consent_cache_key(ids[i % n])), args.calls)
    warm = per_call_us(lambda i: has_consent(ids[i % n]), args.calls)
    warm_req = per_call_us(lambda i: has_consent(ids[i % n], request=request), args.calls)

    batch_calls = max(args.calls // n, 5)
    many = per_call_us(lambda i: has_consent_many(ids), batch_calls) / n

    def cold(i: int) -> None:
        cache.delete(consent_cache_key(ids[i % n]))
        has_consent(ids[i % n])

    cold_us = per_call_us(cold, max(args.calls // 10, 100))

    print(f"backend: {backend}")
    print(f"bare cache.get               {bare:8.1f} us/call")
    print(f"has_consent (warm)           {warm:8.1f} us/call  ({warm / bare:.2f}x bare get)")
    print(f"has_consent (warm, request)  {warm_req:8.1f} us/call")
    print(f"has_consent (cold: ledger)   {cold_us:8.1f} us/call")
    print(f"has_consent_many (warm, {n})  {many:8.1f} us/subject")

    items = Item.objects.bulk_create([Item(external_id=f"bench-item-{i}") for i in range(200)])
    if not items[0].pk:
        items = list(Item.objects.order_by("pk"))
    victim = subjects[0]
    Event.objects.bulk_create(
        [Event(subject=victim, item=items[i % len(items)], event_type="view")
         for i in range(args.events)], batch_size=2000)
    start = time.perf_counter()
    data = export_subject(victim)
    export_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    report = erase_subject(victim)
    erase_ms = (time.perf_counter() - start) * 1e3
    print(f"export_subject ({len(data['events'])} events)   {export_ms:8.1f} ms")
    print(f"erase_subject ({report.rows} rows)     {erase_ms:8.1f} ms")

    old = timezone.now() - timedelta(days=3650)
    holder = subjects[1]
    Event.objects.bulk_create(
        [Event(subject=holder, item=items[i % len(items)], event_type="view", timestamp=old)
         for i in range(args.purge)], batch_size=5000)
    start = time.perf_counter()
    deleted = purge_expired_events()
    seconds = time.perf_counter() - start
    print(f"purge_expired_events         {deleted} rows in {seconds:.2f} s "
          f"({deleted / seconds:,.0f} rows/s)")
    cache.clear()


if __name__ == "__main__":
    main()
