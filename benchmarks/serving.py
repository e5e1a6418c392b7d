"""Serving speed, side by side in one run, with gunicorn serving the demo shop.

The realistic set-up: PostgreSQL and Redis (``make services``), gunicorn with
one sync worker, persistent database connections (the demo's settings give a
``DATABASE_URL`` ``CONN_MAX_AGE`` 60). Measured (medians of interleaved
requests from one bounded client, 127.0.0.1 only):

* the recommendations endpoint on a cache hit vs a bare DRF endpoint returning a
  same-sized precomputed JSON payload (target <= 1.3x);
* the recommendations endpoint on a cache miss (the subject's generation is
  bumped before each request, as an event would) vs the same bare endpoint
  (target <= 2.0x);
* the shop's home page with the "Recommended for You" block (cache hit) vs the
  same page rendered from the same template with the tag removed (target <= 1.25x);
* ``recommend()`` in-process on a cache hit (target median < 0.5 ms).

The shop is seeded (``seed_shop --limit-users N --no-experiment``, which also
trains the strategies; without the demo's home experiment) into the database
on first use (a PostgreSQL database is created, or emptied, for it); later runs
with the same database reuse it::

    .venv/bin/python benchmarks/serving.py [--rounds 300] [--users 1500]
        [--database-url postgres://postgres@127.0.0.1:5432/personalize_bench]
        [--redis-url redis://127.0.0.1:6379/13] [--var-dir /tmp/personalize-bench-serving]
        [--json out.json]

``--database-url sqlite`` measures on the demo's SQLite file instead.

The views and URLs served besides the shop's own are defined here
(:func:`bench_urlpatterns`); the script writes a three-line settings module
and URLconf into the var directory so that gunicorn can import them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
QUERY = "?placement=home&limit=8"
RECS_PATH = f"/api/personalize/recommendations/{QUERY}"
#: The same query string (ignored): parsing it is part of any endpoint's cost.
BARE_PATH = f"/bench/bare/{QUERY}"
HOME_WITH = "/bench/home-with/"
HOME_WITHOUT = "/bench/home-without/"
TAG_PATTERN = re.compile(r"{%\s*recommended_for_you\b.*?%}", re.S)


# --- served by gunicorn (imported through the generated URLconf) --------------------


def bench_urlpatterns() -> list[Any]:
    """The shop's URLs plus the bare endpoint and the two home page variants."""
    from django.shortcuts import render
    from django.urls import path
    from rest_framework.permissions import AllowAny
    from rest_framework.renderers import JSONRenderer
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from example_shop.shop import views as shop_views
    from example_shop.urls import urlpatterns as shop_urlpatterns

    payload: dict[str, Any] = {}

    class BareView(APIView):
        """What the recommendations endpoint costs without recommending: same framework,
        same middleware, same renderer, same-sized JSON."""

        permission_classes = [AllowAny]
        renderer_classes = [JSONRenderer]

        def get(self, request: Any) -> Response:
            if not payload:
                payload.update(json.loads(Path(os.environ["BENCH_PAYLOAD"]).read_text()))
            return Response(payload)

    def home_variant(template: str) -> Any:
        def view(request: Any) -> Any:
            # The shop's own home view, with only its template swapped.
            def swapped(req: Any, name: str, *args: Any, **kwargs: Any) -> Any:
                return render(req, template if name == "shop/home.html" else name, *args,
                              **kwargs)

            shop_views.render = swapped  # type: ignore[attr-defined]
            try:
                return shop_views.home(request)
            finally:
                shop_views.render = render  # type: ignore[attr-defined]

        return view

    # After the shop's own URLs, so that resolving the bare endpoint walks the
    # same patterns as resolving the recommendations endpoint does.
    return [
        *shop_urlpatterns,
        path("bench/bare/", BareView.as_view()),
        path("bench/home-with/", home_variant("shop/home.html")),
        path("bench/home-without/", home_variant("bench/home_without.html")),
    ]


class CpuTimingMiddleware:
    """Reports the worker's CPU time for each request in a ``Server-Timing`` header.

    On a busy machine wall time is dominated by waiting for a core; CPU time
    shows what each request itself costs (SQLite runs in the worker, so its
    queries count; Redis and the client do not).
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        started = time.thread_time()
        response = self.get_response(request)
        response["Server-Timing"] = f"cpu;dur={(time.thread_time() - started) * 1000:.4f}"
        return response


# --- the driver ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_support_files(var_dir: Path) -> Path:
    """Settings, URLconf and the home template without the block, under ``var_dir/py``."""
    py = var_dir / "py"
    (py / "templates" / "bench").mkdir(parents=True, exist_ok=True)
    (py / "bench_settings.py").write_text(
        "from example_shop.settings import *  # noqa\n"
        "ROOT_URLCONF = 'bench_urls'\n"
        f"TEMPLATES[0]['DIRS'] = [{str(py / 'templates')!r}]\n"
        "DEBUG = False\n"
        "ALLOWED_HOSTS = ['127.0.0.1', 'localhost', 'testserver']\n"
        "LOGGING['loggers']['personalize']['level'] = 'WARNING'\n"
        "MIDDLEWARE = ['serving.CpuTimingMiddleware', *MIDDLEWARE]\n"
    )
    (py / "bench_urls.py").write_text(
        "from serving import bench_urlpatterns\nurlpatterns = bench_urlpatterns()\n"
    )
    home = (REPO / "example_shop/shop/templates/shop/home.html").read_text()
    without, count = TAG_PATTERN.subn("", home)
    if count == 0:
        raise SystemExit("shop/home.html has no {% recommended_for_you %} tag to remove")
    (py / "templates" / "bench" / "home_without.html").write_text(without)
    return py


def _environment(var_dir: Path, redis_url: str, database_url: str,
                 py: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    if database_url != "sqlite":
        env["DATABASE_URL"] = database_url
    env.update({
        "EXAMPLE_SHOP_VAR_DIR": str(var_dir / "var"),
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": os.pathsep.join([str(py), str(BENCH_DIR), str(REPO)]),
        "BENCH_PAYLOAD": str(var_dir / "payload.json"),
    })
    env.pop("CELERY_BROKER_URL", None)
    return env


def _fresh_database(database_url: str) -> None:
    """Create the PostgreSQL database of ``database_url``, or empty it if it exists."""
    import psycopg
    from psycopg import sql

    url = urlsplit(database_url)
    name = url.path.lstrip("/")
    server = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _seed(env: dict[str, str], users: int, var_dir: Path, database_url: str) -> None:
    marker = var_dir / "seeded"
    seeded_for = f"{database_url} {users}\n"
    if marker.exists() and marker.read_text() == seeded_for:
        return
    if database_url != "sqlite":
        _fresh_database(database_url)
    print(f"Seeding the demo shop ({users} users) into {database_url} ...", flush=True)
    manage = [PYTHON, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=REPO)
    # without the demo's A/B test: every shopper gets the placement's own block
    subprocess.run([*manage, "seed_shop", "--limit-users", str(users), "--no-progress",
                    "--no-experiment"], env=env, check=True, cwd=REPO)
    marker.write_text(seeded_for)


def _get(port: int, path: str, cookie: str) -> tuple[float, float, int, bytes]:
    """One request: (wall ms, server CPU ms, status, body).

    The wall time ends with the body's last byte. Then this waits, untimed,
    until the worker closes the connection, which gunicorn's sync worker does
    after the response's ``close()``: a miss writes its block to the cache
    there, and that work must not land in the next request's time.
    """
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    watch = None
    try:
        conn.request("GET", path, headers={"Cookie": cookie, "Host": "127.0.0.1"})
        # http.client closes its socket once the body is read; a duplicate stays open
        watch = conn.sock.dup() if conn.sock is not None else None
        response = conn.getresponse()
        body = response.read()
        wall = (time.perf_counter() - started) * 1000.0
        if watch is not None:
            watch.settimeout(30)
            while watch.recv(4096):  # the server's close reads as b""
                pass
    finally:
        conn.close()
        if watch is not None:
            watch.close()
    timing = response.getheader("Server-Timing") or "cpu;dur=nan"
    return wall, float(timing.rsplit("=", 1)[1]), response.status, body


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start within 60 s")


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
        "n": float(len(ordered)),
    }


def _timed_misses(subject: Any, n: int) -> tuple[list[float], dict[str, list[float]]]:
    """``n`` in-process misses: their wall times, and the time of each part in each."""
    from personalize.serving import cache as block_cache
    from personalize.serving import pipeline, service

    spent: dict[str, float] = {}

    def timing(part: str, function: Any) -> Any:
        def timed(*a: Any, **k: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return function(*a, **k)
            finally:
                spent[part] = spent.get(part, 0.0) + (time.perf_counter_ns() - started) / 1e6
        return timed

    def explainer(*args: Any, **kwargs: Any) -> Any:
        return timing("explain()", original_explainer(*args, **kwargs))

    patched = [
        (pipeline, "_ranked", "strategies"),
        (pipeline, "subject_events", "history query"),
        (block_cache, "read_with_consents", "cache round trips"),
        (block_cache, "write", "cache round trips"),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in patched]
    original_explainer = pipeline.strategy_explainer
    for module, name, part in patched:
        setattr(module, name, timing(part, getattr(module, name)))
    pipeline.strategy_explainer = explainer  # type: ignore[assignment]
    misses: list[float] = []
    parts: dict[str, list[float]] = {
        part: [] for part in ["strategies", "explain()", "history query", "cache round trips"]}
    try:
        for _ in range(n):
            block_cache.bump_subjects([subject.pk])
            spent.clear()
            started = time.perf_counter_ns()
            service.recommend(subject, "home", limit=8)
            misses.append((time.perf_counter_ns() - started) / 1e6)
            for part, values in parts.items():
                values.append(spent.get(part, 0.0))
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
        pipeline.strategy_explainer = original_explainer  # type: ignore[assignment]
    return misses, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="interleaved rounds (default 300)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--users", type=int, default=1500, help="users to seed (first run)")
    parser.add_argument("--var-dir", default="/tmp/personalize-bench-serving")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/personalize_bench",
                        help="a PostgreSQL URL (default), or 'sqlite' for the demo's file")
    parser.add_argument("--in-process", type=int, default=3000,
                        help="recommend() calls timed in-process (default 3000)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    var_dir = Path(args.var_dir).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    py = _write_support_files(var_dir)
    env = _environment(var_dir, args.redis_url, args.database_url, py)
    _seed(env, args.users, var_dir, args.database_url)

    os.environ.update(env)
    sys.path[:0] = [str(py), str(BENCH_DIR), str(REPO)]
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from personalize.models import Event, Subject
    from personalize.serving import cache as block_cache
    from personalize.serving.service import recommend

    # A seeded shopper with consent and the longest history: a personalized block.
    subject = (
        Subject.objects.filter(user__isnull=False, consent_records__granted=True,
                               consent_records__purpose="personalization")
        .exclude(user__username="admin")
        .order_by("-pk").first()
    )
    if subject is None:
        raise SystemExit("No seeded subject with consent; delete the var dir and re-seed.")
    n_events = Event.objects.filter(subject=subject).count()
    client = Client()
    client.force_login(get_user_model().objects.get(pk=subject.user_id))
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    port = _free_port()
    gunicorn = subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "example_shop.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
        env=env, cwd=REPO,
    )
    try:
        _wait_ready(port, gunicorn)
        _, _, status, body = _get(port, RECS_PATH, cookie)
        if status != 200:
            raise SystemExit(f"recommendations endpoint answered {status}: {body[:300]!r}")
        block = json.loads(body)
        (var_dir / "payload.json").write_bytes(body)
        personalized = sum(r["personalized"] for r in block["results"])

        def bump() -> None:
            block_cache.bump_subjects([subject.pk])

        targets: dict[str, tuple[str, Any]] = {
            "recommendations (cache hit)": (RECS_PATH, None),
            "recommendations (cache miss)": (RECS_PATH, bump),
            "bare DRF endpoint": (BARE_PATH, None),
            "home page with the block": (HOME_WITH, None),
            "home page without it": (HOME_WITHOUT, None),
        }
        samples: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        sizes: dict[str, int] = {}
        rng = random.Random(42)
        order = list(targets)
        for round_no in range(args.warmup + args.rounds):
            rng.shuffle(order)
            # a miss must not leave the next "hit" measurement cold: hits follow misses
            order.sort(key=lambda name: name != "recommendations (cache miss)")
            for name in order:
                path, before = targets[name]
                if before is not None:
                    before()
                elapsed, cpu_ms, status, body = _get(port, path, cookie)
                if status != 200:
                    raise SystemExit(f"{path} answered {status}")
                sizes[name] = len(body)
                if round_no >= args.warmup:
                    samples[name].append(elapsed)
                    cpu[name].append(cpu_ms)
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)

    # recommend() in this process, on a cache hit (same Redis, same entry as above)
    recommend(subject, "home", limit=8)
    timings = []
    for _ in range(args.in_process):
        started = time.perf_counter_ns()
        recommend(subject, "home", limit=8)
        timings.append((time.perf_counter_ns() - started) / 1e6)

    # recommend() in this process on a cache miss, and where its time goes: the
    # strategies themselves, their explanations (one explain_many() per stage),
    # the subject's history query, the two cache round trips (lookup, write;
    # the REST endpoint writes after its response has been sent, recommend()
    # at once); the rest is the pipeline's own work (exclusions query, filters,
    # re-ranking, fallback, rows)
    misses, parts = _timed_misses(subject, max(20, args.in_process // 20))
    figures = {name: _summary(values) for name, values in samples.items()}
    figures["recommend() in-process (cache miss)"] = _summary(misses)
    for part, values in parts.items():
        figures[f"  of which {part}"] = _summary(values)
    for name, values in cpu.items():
        figures[name]["server_cpu_median_ms"] = statistics.median(values)
    figures["recommend() in-process (cache hit)"] = _summary(timings)
    wall = {name: f["median_ms"] for name, f in figures.items()}
    server = {name: f.get("server_cpu_median_ms", float("nan")) for name, f in figures.items()}

    def ratios(m: dict[str, float]) -> dict[str, float]:
        return {
            "hit / bare (target <= 1.3)": m["recommendations (cache hit)"]
            / m["bare DRF endpoint"],
            "miss / bare (target <= 2.0)": m["recommendations (cache miss)"]
            / m["bare DRF endpoint"],
            "home with / without (target <= 1.25)": m["home page with the block"]
            / m["home page without it"],
        }

    load = os.getloadavg()
    print(f"\nsubject {subject.key[:8]} ({n_events} events), {len(block['results'])} items, "
          f"{personalized} personalized; gunicorn 1 sync worker; database {connection.vendor}; "
          f"Redis {args.redis_url}; "
          f"{args.rounds} interleaved rounds after {args.warmup} warm-up; "
          f"load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'measurement':38} {'wall median':>12} {'wall p90':>9} {'server CPU':>11} {'bytes':>7}")
    for name, f in figures.items():
        print(f"{name:38} {f['median_ms']:12.3f} {f['p90_ms']:9.3f} "
              f"{f.get('server_cpu_median_ms', float('nan')):11.3f} {sizes.get(name, 0):7d}")
    print(f"\n{'ratio of medians':38} {'wall':>12} {'server CPU':>21}")
    wall_ratios, cpu_ratios = ratios(wall), ratios(server)
    for name in wall_ratios:
        print(f"{name:38} {wall_ratios[name]:12.3f} {cpu_ratios[name]:21.3f}")
    print(f"{'recommend() median (target < 0.5 ms)':38} "
          f"{wall['recommend() in-process (cache hit)']:12.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "figures": figures, "wall_ratios": wall_ratios, "server_cpu_ratios": cpu_ratios,
            "sizes": sizes, "load_average": load,
        }, indent=2))


if __name__ == "__main__":
    main()
