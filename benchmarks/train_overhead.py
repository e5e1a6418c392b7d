"""Training overhead, fold-in latency and the model-pointer check, on MovieLens-100k.

1. Imports ml-100k (943 subjects, 1,682 items, 100,000 rating events with their
   timestamps) into a throw-away test database: SQLite in memory by default,
   PostgreSQL + Redis with ``PERSONALIZE_TEST_SERVICES=1`` (followed by
   ``VACUUM ANALYZE``, what autovacuum does after a bulk load).
2. Times, side by side and interleaved in this one run (median and minimum of
   ``--repeat`` runs; on a shared machine the minimum is the steadier figure):
   * the whole ``train_strategy("ease")`` (lock, snapshot from the database,
     temporal holdout, fit, evaluation of the candidate *and* of the live
     version on the holdout, artifact save to a FileSystemStorage, the
     ModelVersion row, activation);
   * the bare ``EASE().fit(snapshot)`` on the same snapshot, full and train part.
   Target (issue 5): whole <= 1.5 x bare fit. The last training's own
   breakdown by stage is printed too.
3. Fold-in for one subject, median over ``--subjects`` subjects: what serving
   does between trainings, ``subject_history`` (one query) + ``recommend`` on
   the live EASE artifact; and the factor fold-in of the Surprise SVD plugin
   (``fold_in`` from a 20-rating history) when that plugin is installed.
   Target: median <= 5 ms.
4. ``get_active_model`` per call: checking the shared pointer on every call
   (``ACTIVE_MODEL_CHECK_INTERVAL=0``: one cache round trip) against the
   default 1 s interval (a dictionary lookup).

Usage::

    .venv/bin/python benchmarks/train_overhead.py [--repeat 3] [--subjects 200]
    PERSONALIZE_TEST_SERVICES=1 .venv/bin/python benchmarks/train_overhead.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

TARGET_RATIO = 1.5
TARGET_FOLD_IN_MS = 5.0


def import_movielens(folder: Path) -> tuple[int, int, int]:
    """Subjects, Items and rating Events from ml-100k, in bulk."""
    from personalize.models import Event, Item, Subject

    titles: dict[str, tuple[str, list[str]]] = {}
    genres = [line.split("|")[0] for line in
              (folder / "u.genre").read_text(encoding="latin-1").splitlines() if line]
    for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
        parts = line.split("|")
        flags = parts[5:24]
        titles[parts[0]] = (parts[1], [g for g, f in zip(genres, flags, strict=False) if f == "1"])
    items = Item.objects.bulk_create(
        [Item(external_id=f"ml:{mid}", title=title, text=title, categories=cats,
              primary_category=cats[0] if cats else "")
         for mid, (title, cats) in titles.items()], batch_size=2000)
    item_pk = {item.external_id: item.pk for item in items}
    rows = [line.split("\t") for line in (folder / "u.data").read_text().splitlines() if line]
    users = sorted({row[0] for row in rows}, key=int)
    subjects = Subject.objects.bulk_create(
        [Subject(visitor_id=f"ml-user-{u}") for u in users], batch_size=2000)
    subject_pk = dict(zip(users, (s.pk for s in subjects), strict=True))
    Event.objects.bulk_create(
        [Event(subject_id=subject_pk[u], item_id=item_pk[f"ml:{i}"], event_type="rating",
               value=float(r), timestamp=datetime.fromtimestamp(int(t), tz=UTC), source="import")
         for u, i, r, t in rows], batch_size=5000)
    return len(subjects), len(items), len(rows)


def settle_after_import() -> None:
    """On PostgreSQL, what autovacuum does after a bulk load, done now.

    Since PostgreSQL 13 autovacuum both vacuums and analyzes a table after
    enough inserts; a benchmark that starts right after its import would
    otherwise measure a table without statistics (the planner guesses every
    row count) and without a visibility map (the fingerprint's count cannot
    be answered from the primary key index).
    """
    from django.db import connection

    from personalize.models import Event, Item, Subject

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in (Event, Item, Subject):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


FIT = "fit (train part)"
REST = "everything else (lock, rows, gate logic)"


#: What the stage breakdown times: (module path, attribute, label), in pipeline order.
STAGES = (
    ("personalize.training.service", "data_fingerprint", "fingerprint query"),
    ("personalize.training.service", "take_snapshot", "snapshot"),
    ("personalize.training.service", "temporal_holdout", "temporal holdout"),
    ("personalize.strategies.ease", "EASE.fit", FIT),
    ("personalize.training.service", "evaluate_on_holdout", "evaluate (candidate)"),
    ("personalize.training.gate", "evaluate_on_holdout", "evaluate (live)"),
    ("personalize.training.service", "save_artifact", "artifact save"),
    ("personalize.training.activation", "load_artifact", "live artifact load (gate)"),
    ("personalize.training.service", "activate_version", "activation"),
    ("personalize.training.service", "prune_artifacts", "artifact pruning"),
)


class StageTimes:
    """Wraps the functions of :data:`STAGES` while active and sums their seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[object, str, object]] = []

    def __enter__(self) -> StageTimes:
        import importlib

        for module_path, attribute, label in STAGES:
            owner: object = importlib.import_module(module_path)
            *parents, name = attribute.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            original = owner.__dict__[name]  # a classmethod stays a classmethod
            function = getattr(original, "__func__", original)
            wrapped = self._timed(function, label)
            setattr(owner, name, classmethod(wrapped) if isinstance(original, classmethod)
                    else wrapped)
            self._undo.append((owner, name, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def _timed(self, function, label: str):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = (self.seconds.get(label, 0.0)
                                       + time.perf_counter() - started)
        return timed


def _median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--data-dir", default=os.environ.get("PERSONALIZE_DATA_DIR")
                        or str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    media = tempfile.mkdtemp(prefix="personalize-bench-")
    overrides = override_settings(
        STORAGES={"default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                              "OPTIONS": {"location": media}},
                  "staticfiles": {"BACKEND":
                                  "django.contrib.staticfiles.storage.StaticFilesStorage"}},
        PERSONALIZE={"STRATEGIES": {"ease": "personalize.strategies.ease.EASE",
                                    "popular": "personalize.strategies.popularity.Popularity"},
                     "DEFAULT_STRATEGY": "ease", "FALLBACK_STRATEGY": "popular",
                     "LOAD_ENTRY_POINTS": False},
    )
    overrides.enable()
    try:
        run(args, Path(args.data_dir) / "movielens-100k")
    finally:
        overrides.disable()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        import shutil

        shutil.rmtree(media, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path) -> None:
    from django.core.cache import caches
    from django.db import connection

    from personalize.conf import personalize_settings
    from personalize.models import Subject
    from personalize.serving import loader
    from personalize.serving.loader import get_active_model
    from personalize.strategies.registry import get_strategy
    from personalize.tracking.history import subject_history
    from personalize.training import gate, service

    caches[personalize_settings.CACHE_ALIAS].clear()
    started = time.perf_counter()
    n_subjects, n_items, n_events = import_movielens(folder)
    settle_after_import()
    print(f"database: {connection.vendor}; cache: "
          f"{type(caches[personalize_settings.CACHE_ALIAS]).__name__}")
    print(f"imported ml-100k: {n_subjects} subjects, {n_items} items, {n_events} events "
          f"in {time.perf_counter() - started:.1f}s")

    strategy = get_strategy("ease")
    snapshot_s, fit_full_s, fit_train_s, whole_s = [], [], [], []
    versions = []
    # each training after the first (which has no live version to evaluate) is
    # broken down by stage
    breakdowns: list[dict[str, float]] = []
    for run_number in range(args.repeat):
        stages = StageTimes()
        timing = stages if run_number or args.repeat == 1 else contextlib.nullcontext()
        with timing:
            t0 = time.perf_counter()
            version = service.train_strategy("ease", force=True)
            whole_s.append(time.perf_counter() - t0)
        if timing is stages:
            stages.seconds[REST] = whole_s[-1] - sum(stages.seconds.values())
            breakdowns.append(stages.seconds)
        versions.append(version)
        # the bare fit, on the same snapshot
        t0 = time.perf_counter()
        snapshot = service.take_snapshot()
        snapshot_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        strategy.fit(snapshot)
        fit_full_s.append(time.perf_counter() - t0)
        holdout = gate.temporal_holdout(snapshot, personalize_settings.HOLDOUT_FRACTION,
                                           personalize_settings.HOLDOUT_MAX_SUBJECTS)
        t0 = time.perf_counter()
        strategy.fit(holdout.train)
        fit_train_s.append(time.perf_counter() - t0)

    steady = whole_s[1:] or whole_s
    last = versions[-1]

    def fmt(samples: list[float]) -> str:
        return f"{statistics.median(samples):7.3f} {min(samples):7.3f}"

    print("\n== train_strategy('ease') vs bare fit, seconds (median, min; interleaved) ==")
    print(f"whole, first (no live version):           {whole_s[0]:7.3f}")
    print(f"whole, with a live version to beat:       {fmt(steady)}")
    print(f"snapshot from the database:               {fmt(snapshot_s)}")
    print(f"bare EASE.fit(full snapshot):             {fmt(fit_full_s)}")
    print(f"bare EASE.fit(train part):                {fmt(fit_train_s)}")
    print("last version's own breakdown: fit "
          f"{last.fit_seconds:.3f}, total {last.total_seconds:.3f}")
    print(f"\n== the trainings with a live version, by stage, seconds (median, min of "
          f"{len(breakdowns)}) ==")
    labels = [label for _, _, label in STAGES if any(label in b for b in breakdowns)] + [REST]
    floor = 0.0
    for label in labels:
        values = [b.get(label, 0.0) for b in breakdowns]
        print(f"{label:40s} {fmt(values)}")
        if label != FIT:
            floor += min(values)
    print(f"{'whole':40s} {fmt(steady)}")
    # What the target leaves for everything but the fit, against the least that
    # those stages took in any run: a floor the ratio cannot go below here.
    allowance = (TARGET_RATIO - 1) * min(fit_full_s)
    print(f"allowed beyond the fit at {TARGET_RATIO}x the fastest bare fit: {allowance:.3f} s; "
          f"the stages besides the fit, each at its fastest: {floor:.3f} s "
          f"(ratio floor {1 + floor / min(fit_full_s):.2f}x)")
    for label, pick in (("median", statistics.median), ("min", min)):
        ratio = pick(steady) / pick(fit_full_s)
        print(f"ratio whole / bare fit ({label}): {ratio:.2f}x  (target <= {TARGET_RATIO}x: "
              f"{'met' if ratio <= TARGET_RATIO else 'MISSED'})")
    # the fit inside a training and the bare fit are the same work; on a shared
    # machine either can be slowed by a neighbour, so this reads the rest alone
    beyond = [whole - version.fit_seconds for whole, version in zip(whole_s, versions,
                                                                      strict=True)][1:]
    beyond = beyond or [whole_s[0] - versions[0].fit_seconds]
    print(f"training beyond its own fit (median, min): {fmt(beyond)}; 1 + min / bare fit min: "
          f"{1 + min(beyond) / min(fit_full_s):.2f}x")
    for label, pick in (("median", statistics.median), ("min", min)):
        ratio = pick(steady) / (pick(snapshot_s) + pick(fit_full_s))
        print(f"ratio whole / (snapshot + bare fit) ({label}): {ratio:.2f}x  "
              "(what training adds beyond reading the data and fitting)")
    print(f"last version: v{last.version} {last.status}, ndcg@10 {last.metrics.get('ndcg@10')}, "
          f"{last.metrics.get('subjects')} holdout subjects, artifact {last.artifact_size:,} B")

    # --- fold-in between trainings ---------------------------------------------
    live = get_active_model("ease")
    ids = list(Subject.objects.order_by("pk").values_list("pk", flat=True)[: args.subjects])
    with_history, scoring = [], []
    for subject_id in ids:
        t0 = time.perf_counter()
        history = subject_history(subject_id)
        t1 = time.perf_counter()
        live.strategy.recommend(live.artifact, history, 10)
        t2 = time.perf_counter()
        with_history.append(t2 - t0)
        scoring.append(t2 - t1)
    print("\n== fold-in for one subject (median over "
          f"{len(ids)} subjects) ==")
    print(f"EASE, subject_history + recommend: {_median_ms(with_history):.2f} ms "
          f"(target <= {TARGET_FOLD_IN_MS} ms: "
          f"{'met' if _median_ms(with_history) <= TARGET_FOLD_IN_MS else 'MISSED'})")
    print(f"EASE, recommend only:              {_median_ms(scoring):.2f} ms")
    fold_in_svd(snapshot, ids)

    # --- the pointer check ---------------------------------------------------------
    from django.test.utils import override_settings

    print("\n== get_active_model per call (median of 5,000) ==")
    for interval in (0, 1.0):
        with override_settings(PERSONALIZE={**personalize_settings.user_settings,
                                            "ACTIVE_MODEL_CHECK_INTERVAL": interval}):
            get_active_model("ease")
            samples = []
            for _ in range(5000):
                t0 = time.perf_counter()
                get_active_model("ease")
                samples.append(time.perf_counter() - t0)
        label = "pointer read every call" if interval == 0 else f"interval {interval:g}s"
        print(f"{label:28s} {1e6 * statistics.median(samples):8.1f} us")
    loader.clear_loaded()


def fold_in_svd(snapshot, subject_ids) -> None:
    """Factor fold-in of the Surprise SVD plugin from a 20-rating history, if installed."""
    try:
        from personalize_surprise.strategies import SVD
    except ImportError:
        print("Surprise SVD fold-in: plugin not installed, skipped")
        return
    from personalize.strategies.history import History

    strategy = SVD()
    t0 = time.perf_counter()
    artifact = strategy.fit(snapshot)
    fit_s = time.perf_counter() - t0
    item_ids = snapshot.item_ids
    rng = __import__("numpy").random.default_rng(0)
    samples = []
    for n in range(len(subject_ids)):
        chosen = rng.choice(len(item_ids), size=20, replace=False)
        ratings = {int(item_ids[i]): float(rng.integers(1, 6)) for i in chosen}
        history = History(item_ids=list(ratings), ratings=ratings, subject_id=-1 - n)
        t1 = time.perf_counter()
        strategy.fold_in(artifact, history)
        samples.append(time.perf_counter() - t1)
    print(f"Surprise SVD fold_in (20 ratings): {_median_ms(samples):.2f} ms "
          f"(SVD fit {fit_s:.1f}s)")


if __name__ == "__main__":
    main()
