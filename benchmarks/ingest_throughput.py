"""REST batch ingestion throughput into the local PostgreSQL, against a raw bulk_create.

Replays the real MovieLens ratings (ml-latest-small: 100,836 ratings, 610
users, 9,724 films) as server-to-server rating events through
``POST /api/personalize/events/`` in batches of 500, in timestamp order (the
order a live stream arrives in), with the full stack: middleware, URL routing,
DRF token authentication, the ``personalize.add_event`` permission, JSON
decoding, validation, per-subject consent checks (Redis), one item query, one
replay query and one bulk insert per batch. Side by side, batch by batch, the
same rows (with event ids of their own) are inserted with a raw
``Event.objects.bulk_create`` (ids already resolved, no validation) and the
ratio is printed. Finally the whole stream is replayed through the endpoint
(every event a duplicate).

Target (issue 3): at least 10,000 events/s through the endpoint on the 2-core
machine.

Usage::

    .venv/bin/python benchmarks/ingest_throughput.py [--data-dir ../shared/data]
        [--batch 500] [--limit 100836] [--order time|user|random]

Runs in a throw-away PostgreSQL database (``personalize_bench_<pid>``) and a
per-process Redis key prefix; needs the servers of ``make services``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PERSONALIZE_TEST_SERVICES", "1")
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.tracking_settings"

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.core.cache import caches  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    setup_databases,
    setup_test_environment,
    teardown_databases,
)

URL = "/api/personalize/events/"


def load_ratings(
    data_dir: Path, limit: int | None, order: str
) -> list[tuple[int, int, float, int]]:
    path = data_dir / "movielens-latest-small" / "ratings.csv"
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        rows = [(int(u), int(m), float(r), int(t)) for u, m, r, t in reader]
    if order == "time":
        rows.sort(key=lambda row: row[3])
    elif order == "random":
        random.Random(42).shuffle(rows)
    return rows[:limit] if limit else rows


def seed(rows):
    from personalize.models import ConsentRecord, Item, Subject

    movie_ids = sorted({m for _, m, _, _ in rows})
    user_ids = sorted({u for u, _, _, _ in rows})
    Item.objects.bulk_create([Item(external_id=f"ml-{m}", title=f"Film {m}") for m in movie_ids],
                             batch_size=2000)
    Subject.objects.bulk_create([Subject() for _ in user_ids], batch_size=2000)
    subjects = list(Subject.objects.order_by("pk"))
    subject_of = dict(zip(user_ids, subjects, strict=True))
    ConsentRecord.objects.bulk_create([
        ConsentRecord(subject=s, purpose="personalization", granted=True, policy_version="1",
                      source="server") for s in subjects
    ])
    item_pk = dict(Item.objects.values_list("external_id", "pk"))
    return subject_of, item_pk


def server_client() -> Client:
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user("ingest")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    token = Token.objects.create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def truncate_events() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE personalize_event")


def in_parallel(count: int, work: Callable[[int], None]) -> float:
    """Run ``work(0..count-1)`` in forked processes at once; the wall time until all finish."""
    connections.close_all()  # each child opens its own connection
    start = time.perf_counter()
    children = []
    for client_no in range(count):
        pid = os.fork()
        if pid == 0:  # the child: never returns into the parent's code
            code = 0
            try:
                work(client_no)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                connections.close_all()
                os._exit(code)
        children.append(pid)
    failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
    elapsed = time.perf_counter() - start
    if failed:
        raise SystemExit(f"{len(failed)} client process(es) failed")
    return elapsed


def run(args: argparse.Namespace) -> None:
    from personalize.models import Event

    rows = load_ratings(args.data_dir, args.limit, args.order)
    subject_of, item_pk = seed(rows)
    client = server_client()
    # Separate event ids for the two ways in, so both insert every row.
    rest_ids = [uuid.uuid4() for _ in rows]
    raw_ids = [uuid.uuid4() for _ in rows]
    batches = [range(i, min(i + args.batch, len(rows))) for i in range(0, len(rows), args.batch)]
    bodies = [
        json.dumps({"events": [
            {"event_id": str(rest_ids[i]), "type": "rating", "item": f"ml-{rows[i][1]}",
             "value": rows[i][2], "timestamp": rows[i][3], "subject": subject_of[rows[i][0]].key}
            for i in batch
        ]}).encode()
        for batch in batches
    ]
    n = len(rows)
    distinct = statistics.mean(len({rows[i][0] for i in b}) for b in batches)
    print(f"{n} MovieLens ratings, {len(subject_of)} subjects, {len(item_pk)} items, "
          f"{len(batches)} batches of {args.batch} ({args.order} order, "
          f"{distinct:.1f} distinct subjects per batch)")
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}, "
          f"cache: {type(caches['default']).__name__}")

    # Warm up: connections, consent cache, code paths (events removed afterwards).
    for body in bodies[:3]:
        response = client.post(URL, body, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
    truncate_events()

    def raw_insert(batch: range) -> None:
        # The same rows with their ids resolved in advance, no validation.
        Event.objects.bulk_create([
            Event(event_id=raw_ids[i], subject_id=subject_of[rows[i][0]].pk,
                  item_id=item_pk[f"ml-{rows[i][1]}"], event_type="rating", value=rows[i][2],
                  timestamp=datetime.fromtimestamp(rows[i][3], tz=UTC), context={}, source="api")
            for i in batch
        ], ignore_conflicts=True)

    def rest_post(body: bytes, batch: range) -> None:
        response = client.post(URL, body, content_type="application/json")
        if response.status_code != 200 or response.json()["accepted"] != len(batch):
            raise SystemExit(f"unexpected answer {response.status_code}: {response.content[:300]}")

    # Side by side: batch by batch, alternating which goes first, so the table's
    # growth, checkpoints and the machine's load hit both ways in equally.
    raw_times: list[float] = []
    rest_times: list[float] = []
    for k, (body, batch) in enumerate(zip(bodies, batches, strict=True)):
        for way in ("raw", "rest") if k % 2 else ("rest", "raw"):
            t0 = time.perf_counter()
            if way == "raw":
                raw_insert(batch)
            else:
                rest_post(body, batch)
            (raw_times if way == "raw" else rest_times).append(time.perf_counter() - t0)
    assert Event.objects.count() == 2 * n
    raw_s, rest_s = sum(raw_times), sum(rest_times)

    # The same, with --clients concurrent clients (a web server runs several
    # workers): in rounds, each way's batches dealt out to forked clients.
    concurrent = {"raw": 0.0, "rest": 0.0}
    if args.clients > 1:
        rest_ids[:] = [uuid.uuid4() for _ in rows]
        raw_ids[:] = [uuid.uuid4() for _ in rows]
        bodies = [json.dumps({"events": [
            {"event_id": str(rest_ids[i]), "type": "rating", "item": f"ml-{rows[i][1]}",
             "value": rows[i][2], "timestamp": rows[i][3], "subject": subject_of[rows[i][0]].key}
            for i in batch]}).encode() for batch in batches]
        rounds = 4
        size = -(-len(batches) // rounds)
        for r in range(rounds):
            chosen = list(range(r * size, min((r + 1) * size, len(batches))))
            for way in ("raw", "rest") if r % 2 else ("rest", "raw"):
                def work(client_no: int, way: str = way, chosen: list[int] = chosen) -> None:
                    for k in chosen[client_no::args.clients]:
                        if way == "raw":
                            raw_insert(batches[k])
                        else:
                            rest_post(bodies[k], batches[k])
                concurrent[way] += in_parallel(args.clients, work)
        assert Event.objects.count() == 4 * n

    # Replay of the whole stream: every event is a duplicate, nothing is written.
    start = time.perf_counter()
    for body, batch in zip(bodies, batches, strict=True):
        response = client.post(URL, body, content_type="application/json")
        assert response.json()["duplicate"] == len(batch)
    replay_s = time.perf_counter() - start
    assert Event.objects.count() == (4 if args.clients > 1 else 2) * n

    def ms(values):
        return f"median {statistics.median(values) * 1000:.1f} ms/batch"

    rest_rate, raw_rate = n / rest_s, n / raw_s
    print(f"raw bulk_create : {raw_rate:>9,.0f} events/s  ({raw_s:.2f} s, {ms(raw_times)})")
    print(f"REST endpoint   : {rest_rate:>9,.0f} events/s  ({rest_s:.2f} s, {ms(rest_times)})")
    print(f"REST replay     : {n / replay_s:>9,.0f} events/s  (all duplicates, {replay_s:.2f} s)")
    print(f"ratio REST / raw: {rest_rate / raw_rate:.2f}  (one client at a time)")
    if args.clients > 1:
        rest_rate, raw_rate = n / concurrent["rest"], n / concurrent["raw"]
        print(f"{args.clients} concurrent clients:")
        print(f"  raw bulk_create : {raw_rate:>9,.0f} events/s  ({concurrent['raw']:.2f} s)")
        print(f"  REST endpoint   : {rest_rate:>9,.0f} events/s  ({concurrent['rest']:.2f} s)")
        print(f"  ratio REST / raw: {rest_rate / raw_rate:.2f}")
    print(f"target REST >= 10,000 events/s ({max(args.clients, 1)} client(s)): "
          f"{'met' if rest_rate >= 10_000 else 'NOT met'}")
    print(f"machine load average while measuring: {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("PERSONALIZE_DATA_DIR", "../shared/data")))
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2,
                        help="concurrent clients for the second measurement (1: skip it)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--order", choices=["time", "user", "random"], default="time")
    args = parser.parse_args()
    connections["default"].settings_dict["TEST"]["NAME"] = f"personalize_bench_{os.getpid()}"
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        run(args)
    finally:
        with contextlib.suppress(AttributeError):  # django-redis: this process's prefix only
            caches["default"].delete_pattern("*")
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
