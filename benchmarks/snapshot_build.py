"""Build the training snapshot from 1,000,000 events in PostgreSQL: time and peak memory.

Generates synthetic shop events with a long tail (``benchmarks/synthetic.py``:
Zipf item popularity, log-normal subject activity, subject tastes), bulk-loads
them with PostgreSQL ``COPY`` into a throw-away database on the server named
by ``DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/test``; the
database used is ``personalize_bench_snapshot_<pid>``, dropped afterwards), then
times ``database_snapshot()`` in a fresh child process and reports its
peak resident memory (``VmHWM``, else ``resource.getrusage``: the whole
process, Django included). ``--tracemalloc`` adds a second child that reports the peak of
traced allocations (Python objects and NumPy buffers); tracing slows the
build several times over, so its time is not the figure.

Targets (issue 4): <= 15 s and <= 1.5 GB on the 2-core machine.

Usage::

    .venv/bin/python benchmarks/snapshot_build.py [--events 1000000] [--subjects 50000]
        [--items 20000] [--chunk-size 20000] [--tracemalloc]
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
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PERSONALIZE_TEST_SERVICES", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

TARGET_SECONDS = 15.0
TARGET_BYTES = 1.5e9


def _setup_django() -> None:
    import django

    django.setup()


# --- loading ------------------------------------------------------------------------


def _copy(cursor, table: str, columns: list[str], lines) -> None:
    """COPY text lines (already tab-separated) into ``table``."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        buffer = io.StringIO()
        for n, line in enumerate(lines, start=1):
            buffer.write(line)
            if n % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def load(n_events: int, n_subjects: int, n_items: int, seed: int) -> dict:
    """Insert subjects, items and events; returns what was generated."""
    import numpy as np
    from django.db import connection

    from benchmarks.synthetic import EVENT_TYPES, generate, item_texts
    from personalize.models import Event, Item, Subject

    started = time.perf_counter()
    events = generate(n_events, n_subjects, n_items, seed=seed)
    texts, categories = item_texts(n_items, seed)
    generated = time.perf_counter() - started
    now = "2025-01-01 00:00:00+00"
    rng = np.random.default_rng(seed + 7)
    started = time.perf_counter()
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # the psycopg cursor: COPY support
        # A bulk load's usual tricks: no per-row foreign-key triggers (the ids are
        # generated valid), and the event indexes rebuilt once after the load.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [Event._meta.db_table],
        )
        indexes = cursor.fetchall()
        for index_name, _ in indexes:
            cursor.execute(f'DROP INDEX "{index_name}"')
        keys = rng.integers(0, 2**62, size=(n_subjects, 2))
        _copy(cursor, Subject._meta.db_table, ["key", "created_at", "last_seen_at"],
              (f"{a:016x}{b:016x}\t{now}\t{now}\n" for a, b in keys.tolist()))
        _copy(cursor, Item._meta.db_table,
              ["external_id", "title", "text", "categories", "primary_category", "attributes",
               "available", "content_hash", "created_at", "updated_at"],
              (f"sku-{n}\t{texts[n]}\t{texts[n]}\t{json.dumps(categories[n])}\t"
               f"{categories[n][0]}\t{{}}\tt\t\t{now}\t{now}\n" for n in range(n_items)))
        cursor.execute(f"SELECT min(id) FROM {Subject._meta.db_table}")
        first_subject = cursor.fetchone()[0]
        cursor.execute(f"SELECT min(id) FROM {Item._meta.db_table}")
        first_item = cursor.fetchone()[0]
        stamps = np.datetime_as_string(
            (events.timestamps * 1e6).astype("datetime64[us]"), unit="us").tolist()
        uuids = rng.integers(0, 2**62, size=(len(events), 2)).tolist()
        values = ["\\N" if np.isnan(v) else repr(v) for v in events.values.tolist()]
        type_names = [EVENT_TYPES[t] for t in events.types.tolist()]
        subjects = (events.subjects + first_subject).tolist()
        items = (events.items + first_item).tolist()
        _copy(cursor, Event._meta.db_table,
              ["event_id", "subject_id", "item_id", "event_type", "value", "context",
               "timestamp", "source", "received_at"],
              (f"{u[0]:016x}{u[1]:016x}\t{s}\t{i}\t{t}\t{v}\t{{}}\t{ts}+00\timport\t{now}\n"
               for u, s, i, t, v, ts in zip(uuids, subjects, items, type_names, values, stamps,
                                            strict=True)))
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(f"ANALYZE {Event._meta.db_table}")
    loaded = time.perf_counter() - started
    return {"generate_s": round(generated, 2), "copy_s": round(loaded, 2),
            "events": len(events), "subjects": n_subjects, "items": n_items}


# --- measuring (in a child process) -----------------------------------------------------


def peak_rss_bytes() -> int:
    """This process's peak resident memory.

    ``VmHWM`` from ``/proc/self/status`` where there is one: ``ru_maxrss`` of a
    child started by ``subprocess`` (vfork + exec) also counts the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(chunk_size: int, traced: bool) -> dict:
    """Build the snapshot once; report seconds and peak memory."""
    _setup_django()
    import tracemalloc

    from django.db import connection

    from personalize.training.snapshot import database_snapshot

    connection.ensure_connection()
    baseline = peak_rss_bytes()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    dataset = database_snapshot(chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    result = {
        "seconds": round(seconds, 2),
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_before_bytes": baseline,
        "subjects": dataset.n_subjects, "items": dataset.n_items,
        "events": len(dataset.events), "nnz": int(dataset.interactions.nnz),
        "duplicates": dataset.meta["n_duplicates"],
    }
    if traced:
        result["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result


def _child(url: str, chunk_size: int, traced: bool) -> dict:
    env = {**os.environ, "DATABASE_URL": url}
    args = [sys.executable, __file__, "--measure", "--chunk-size", str(chunk_size)]
    if traced:
        args.append("--traced")
    output = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.chunk_size, args.traced)))
        return

    _setup_django()
    from django.db import connection, connections
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL (DATABASE_URL).")
    name = f"personalize_bench_snapshot_{os.getpid()}"
    connections["default"].settings_dict["TEST"]["NAME"] = name
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        print(f"loading {args.events:,} events ({args.subjects:,} subjects, "
              f"{args.items:,} items) into {name} ...", flush=True)
        loaded = load(args.events, args.subjects, args.items, args.seed)
        print(f"  generated in {loaded['generate_s']} s, COPY in {loaded['copy_s']} s")
        parts = urlsplit(os.environ["DATABASE_URL"])
        url = urlunsplit(parts._replace(path=f"/{name}"))
        run = _child(url, args.chunk_size, traced=False)
        print(f"database_snapshot(): {run['seconds']} s "
              f"(target <= {TARGET_SECONDS:.0f} s) -> "
              f"{run['subjects']:,} subjects x {run['items']:,} items, "
              f"{run['events']:,} events, {run['nnz']:,} non-zeros, "
              f"{run['duplicates']:,} duplicates dropped")
        print(f"  peak RSS of the process: {run['peak_rss_bytes'] / 1e9:.2f} GB "
              f"(before the build: {run['rss_before_bytes'] / 1e9:.2f} GB; "
              f"target <= {TARGET_BYTES / 1e9:.1f} GB)")
        traced = None
        if args.tracemalloc:
            traced = _child(url, args.chunk_size, traced=True)
            print(f"  tracemalloc peak (Python + NumPy allocations): "
                  f"{traced['traced_peak_bytes'] / 1e9:.2f} GB "
                  f"(build slowed to {traced['seconds']} s by tracing)")
        ok = run["seconds"] <= TARGET_SECONDS and run["peak_rss_bytes"] <= TARGET_BYTES
        print("targets met" if ok else "TARGETS MISSED")
        print(json.dumps({"load": loaded, "build": run, "traced": traced}))
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
