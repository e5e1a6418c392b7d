"""Roll up 200,000 exposures and 1,000,000 events in PostgreSQL: time, rows/s, peak memory.

Generates a shop's last 30 days (``--days``): blocks shown on three placements
(8 items each, Zipf item popularity, log-normal subject activity), one running
A/B test on the home placement with its assignments, clicks carrying the
block's impression id and position on ~6% of the blocks, add-to-carts and
purchases after some of those clicks, and background events (views, clicks
outside blocks, purchases nobody recommended) up to ``--events``. It
bulk-loads them with PostgreSQL ``COPY`` into a throw-away database on the
server named by ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/test``; the database used is
``personalize_bench_rollup_<pid>``, dropped afterwards), then, in a fresh
child process, times

1. a full rebuild (``run_rollup(since=<first day>)``, what
   ``manage.py personalize_rollup --since`` does): every daily row and every
   experiment outcome;
2. the scheduled run right after it (the days that can still change);

and reports rows read per second and the peak resident memory of the child
(``VmHWM``: the whole process, Django included).

Usage::

    .venv/bin/python benchmarks/rollup_speed.py [--exposures 200000] [--events 1000000]
        [--subjects 50000] [--items 20000] [--days 30] [--json PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PERSONALIZE_TEST_SERVICES", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

PLACEMENTS = (("home", 0.5), ("product", 0.3), ("cart", 0.2))
BLOCK_SIZE = 8
CTR = 0.06          # share of blocks clicked
CART_AFTER_CLICK = 0.3
BUY_AFTER_CLICK = 0.12


def _setup_django() -> None:
    import django

    django.setup()


def _copy(cursor, table: str, columns: list[str], lines) -> None:
    """COPY text lines (already tab-separated) into ``table``."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for n, line in enumerate(lines, start=1):
            buffer.write(line)
            if n % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def _stamp(seconds) -> list[str]:
    import numpy as np

    return [f"{s}+00" for s in np.datetime_as_string(
        (np.asarray(seconds) * 1e6).astype("datetime64[us]"), unit="us").tolist()]


def generate(n_exposures: int, n_events: int, n_subjects: int, n_items: int, days: float,
             now: float, seed: int) -> dict:
    """Everything to load, as NumPy arrays (indices, not pks)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0, 1.2, n_subjects)
    activity /= activity.sum()
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.05
    popularity /= popularity.sum()
    start = now - days * 86400
    exp_subject = rng.choice(n_subjects, size=n_exposures, p=activity)
    exp_time = np.sort(rng.uniform(start, now - 600, n_exposures))
    exp_items = rng.choice(n_items, size=(n_exposures, BLOCK_SIZE), p=popularity)
    placement = rng.choice(len(PLACEMENTS), size=n_exposures, p=[p for _, p in PLACEMENTS])

    clicked = np.flatnonzero(rng.random(n_exposures) < CTR)
    position = rng.integers(0, BLOCK_SIZE, len(clicked))
    click_time = exp_time[clicked] + rng.exponential(120, len(clicked))
    click_item = exp_items[clicked, position]
    carted = rng.random(len(clicked)) < CART_AFTER_CLICK
    bought = rng.random(len(clicked)) < BUY_AFTER_CLICK
    n_linked = len(clicked) + int(carted.sum()) + int(bought.sum())

    n_background = max(0, n_events - n_linked)
    bg_type = rng.choice(4, size=n_background, p=[0.85, 0.07, 0.05, 0.03])
    return {
        "exp_subject": exp_subject, "exp_time": exp_time, "exp_items": exp_items,
        "placement": placement, "clicked": clicked, "position": position,
        "click_time": click_time, "click_item": click_item, "carted": carted,
        "bought": bought, "cart_time": click_time + rng.exponential(600, len(clicked)),
        "buy_time": click_time + rng.exponential(3600, len(clicked)),
        "value": np.round(rng.lognormal(3, 0.8, len(clicked)), 2),
        "bg_subject": rng.choice(n_subjects, size=n_background, p=activity),
        "bg_item": rng.choice(n_items, size=n_background, p=popularity),
        "bg_type": bg_type, "bg_time": rng.uniform(start, now, n_background),
        "bg_value": np.round(rng.lognormal(3, 0.8, n_background), 2),
        "variant": rng.integers(0, 2, n_subjects),
    }


def load(args: argparse.Namespace, now: float) -> dict:
    """Insert subjects, items, an experiment, exposures, assignments and events."""
    from django.db import connection

    from personalize.models import (
        Assignment,
        Event,
        Experiment,
        Exposure,
        Item,
        Subject,
        Variant,
    )

    started = time.perf_counter()
    data = generate(args.exposures, args.events, args.subjects, args.items, args.days, now,
                    args.seed)
    generated = time.perf_counter() - started
    experiment = Experiment.objects.create(name="home: ease vs popular", placement="home",
                                           status="running")
    variants = [Variant.objects.create(experiment=experiment, key=key, strategy=key,
                                       is_control=key == "popular")
                for key in ("popular", "ease")]
    stamp = _stamp([now])[0]
    started = time.perf_counter()
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute("SET session_replication_role = replica")
        _copy(cursor, Subject._meta.db_table, ["key", "created_at", "last_seen_at"],
              (f"{uuid.uuid4().hex}\t{stamp}\t{stamp}\n" for _ in range(args.subjects)))
        _copy(cursor, Item._meta.db_table,
              ["external_id", "title", "text", "categories", "primary_category", "attributes",
               "available", "content_hash", "created_at", "updated_at"],
              (f"sku-{n}\tItem {n}\t\t[]\t\t{{}}\tt\t\t{stamp}\t{stamp}\n"
               for n in range(args.items)))
        cursor.execute(f"SELECT min(id) FROM {Subject._meta.db_table}")
        s0 = cursor.fetchone()[0]
        cursor.execute(f"SELECT min(id) FROM {Item._meta.db_table}")
        i0 = cursor.fetchone()[0]

        ids = [uuid.uuid4() for _ in range(args.exposures)]
        item_pks = (data["exp_items"] + i0).tolist()
        subjects = (data["exp_subject"] + s0).tolist()
        variant_of = data["variant"]
        home_subjects = sorted(set(data["exp_subject"][data["placement"] == 0].tolist()))

        def exposure_rows():
            times = _stamp(data["exp_time"])
            for n, (pk, subject, items, where, at) in enumerate(zip(
                    ids, subjects, item_pks, data["placement"].tolist(), times, strict=True)):
                name = PLACEMENTS[where][0]
                if where == 0:
                    variant = variants[variant_of[subject - s0]]
                    yield (f"{pk}\t{subject}\t{name}\t{variant.strategy}\t1\t{experiment.pk}\t"
                           f"{variant.pk}\t{json.dumps(items)}\ttag\t{at}\n")
                else:
                    strategy = "item_knn" if name == "product" else "ease"
                    yield (f"{pk}\t{subject}\t{name}\t{strategy}\t1\t\\N\t\\N\t"
                           f"{json.dumps(items)}\t{'api' if n % 3 else 'tag'}\t{at}\n")

        _copy(cursor, Exposure._meta.db_table,
              ["id", "subject_id", "placement", "strategy", "model_version", "experiment_id",
               "variant_id", "items", "source", "created_at"], exposure_rows())
        _copy(cursor, Assignment._meta.db_table,
              ["experiment_id", "subject_id", "variant_id", "assigned_at"],
              (f"{experiment.pk}\t{s + s0}\t{variants[variant_of[s]].pk}\t{stamp}\n"
               for s in home_subjects))

        def event_rows():
            clicked = data["clicked"].tolist()
            for k, (n, pos, at, item) in enumerate(zip(
                    clicked, data["position"].tolist(), _stamp(data["click_time"]),
                    data["click_item"].tolist(), strict=True)):
                subject = subjects[n]
                context = json.dumps({"impression": str(ids[n]), "position": pos + 1,
                                      "placement": PLACEMENTS[data["placement"][n]][0]})
                yield (f"{uuid.uuid4()}\t{subject}\t{item + i0}\tclick\t\\N\t{context}\t"
                       f"{at}\tbrowser\t{at}\n")
                if data["carted"][k]:
                    when = _stamp([data["cart_time"][k]])[0]
                    yield (f"{uuid.uuid4()}\t{subject}\t{item + i0}\tadd_to_cart\t\\N\t{{}}\t"
                           f"{when}\tserver\t{when}\n")
                if data["bought"][k]:
                    when = _stamp([data["buy_time"][k]])[0]
                    yield (f"{uuid.uuid4()}\t{subject}\t{item + i0}\tpurchase\t"
                           f"{data['value'][k]}\t{{}}\t{when}\tserver\t{when}\n")
            names = ("view", "click", "add_to_cart", "purchase")
            for subject, item, kind, at, value in zip(
                    (data["bg_subject"] + s0).tolist(), (data["bg_item"] + i0).tolist(),
                    data["bg_type"].tolist(), _stamp(data["bg_time"]),
                    data["bg_value"].tolist(), strict=True):
                shown = value if kind == 3 else "\\N"
                yield (f"{uuid.uuid4()}\t{subject}\t{item}\t{names[kind]}\t{shown}\t{{}}\t"
                       f"{at}\tbrowser\t{at}\n")

        _copy(cursor, Event._meta.db_table,
              ["event_id", "subject_id", "item_id", "event_type", "value", "context",
               "timestamp", "source", "received_at"], event_rows())
        cursor.execute("SET session_replication_role = DEFAULT")
        for model in (Event, Exposure, Assignment, Subject):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
        cursor.execute(f"SELECT count(*) FROM {Event._meta.db_table}")
        n_events = cursor.fetchone()[0]
    return {"generate_s": round(generated, 2), "copy_s": round(time.perf_counter() - started, 2),
            "exposures": args.exposures, "events": n_events, "subjects": args.subjects,
            "items": args.items, "clicks_on_blocks": len(data["clicked"]),
            "home_subjects": len(home_subjects)}


# --- measuring (in a child process) -----------------------------------------------------


def peak_rss_bytes() -> int:
    """This process's peak resident memory (``VmHWM``, else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure() -> dict:
    """A full rebuild, then the scheduled run; seconds, rows read and peak memory."""
    _setup_django()
    from django.db import connection
    from django.db.models import Min

    from personalize.models import DailyRollup, Event, Exposure, SubjectOutcome
    from personalize.outcomes.reader import CONVERSION_TYPES, local_day
    from personalize.outcomes.rollup import run_rollup

    connection.ensure_connection()
    baseline = peak_rss_bytes()
    first = local_day(Exposure.objects.aggregate(m=Min("created_at"))["m"])
    read = Event.objects.filter(event_type__in=["click", *CONVERSION_TYPES]).count()
    started = time.perf_counter()
    full = run_rollup(since=first)
    full_s = time.perf_counter() - started
    peak = peak_rss_bytes()
    started = time.perf_counter()
    scheduled = run_rollup()
    scheduled_s = time.perf_counter() - started
    return {
        "rebuild_s": round(full_s, 2), "scheduled_s": round(scheduled_s, 2),
        "exposures": full.exposures, "events_read": read, "daily_rows": full.rows,
        "outcomes": full.outcomes, "outcome_rows": SubjectOutcome.objects.count(),
        "rebuild_days": (full.last_day - full.first_day).days + 1,
        "scheduled_days": (scheduled.last_day - scheduled.first_day).days + 1,
        "scheduled_exposures": scheduled.exposures,
        "rows_per_s": round((full.exposures + read) / full_s),
        "peak_rss_bytes": peak, "rss_before_bytes": baseline,
        "conversions": sum(DailyRollup.objects.values_list("conversions", flat=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="Also write the figures to PATH.")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure()))
        return

    _setup_django()
    from django.db import connection, connections
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL (DATABASE_URL).")
    name = f"personalize_bench_rollup_{os.getpid()}"
    connections["default"].settings_dict["TEST"]["NAME"] = name
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        now = datetime.now(UTC).timestamp()
        print(f"loading {args.exposures:,} exposures and ~{args.events:,} events "
              f"({args.subjects:,} subjects, {args.items:,} items, {args.days:g} days) "
              f"into {name} ...", flush=True)
        loaded = load(args, now)
        print(f"  generated in {loaded['generate_s']} s, COPY in {loaded['copy_s']} s: "
              f"{loaded['events']:,} events, {loaded['clicks_on_blocks']:,} clicks on blocks")
        url = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))
        env = {**os.environ, "DATABASE_URL": url}
        output = subprocess.run([sys.executable, __file__, "--measure"], env=env, check=True,
                                capture_output=True, text=True).stdout
        run = json.loads(output.strip().splitlines()[-1])
        print(f"rebuild of {run['rebuild_days']} days: {run['rebuild_s']} s for "
              f"{run['exposures']:,} exposures and {run['events_read']:,} clicks, add-to-carts "
              f"and purchases -> {run['rows_per_s']:,} rows/s; {run['daily_rows']:,} daily "
              f"rows, {run['outcome_rows']:,} experiment outcomes, "
              f"{run['conversions']:,} attributed conversions")
        print(f"  peak RSS of the process: {run['peak_rss_bytes'] / 1e6:.0f} MB "
              f"(before the run: {run['rss_before_bytes'] / 1e6:.0f} MB)")
        print(f"scheduled run after it ({run['scheduled_days']} days, "
              f"{run['scheduled_exposures']:,} exposures): {run['scheduled_s']} s")
        figures = {"load": loaded, "run": run}
        print(json.dumps(figures))
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
