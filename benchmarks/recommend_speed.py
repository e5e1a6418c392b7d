"""Median ``recommend()`` latency per strategy, with a warm artifact.

Two catalogs: MovieLens-100k (943 users, 1,682 films) and a synthetic shop of
10,000 items (500,000 long-tail events from ``benchmarks/synthetic.py``). Each
strategy is fitted once, its artifact goes through ``to_bytes`` /
``from_bytes`` (as when loaded from storage) and is warmed with a few calls;
then one ``recommend(artifact, history, k=10)`` per sampled subject is timed
with ``perf_counter_ns``. Histories are built beforehand (not timed): this
measures the strategy, not the database.

Targets (issue 4): median <= 2 ms on MovieLens-100k, <= 5 ms on 10,000 items.

Usage::

    .venv/bin/python benchmarks/recommend_speed.py [--data-dir ../shared/data]
        [--calls 500] [--strategies popular,trending,item_knn,ease,blend,cascade]

``--strategies`` also accepts any configured or installed strategy name (the
plugins' ``svd``, ``embeddings``, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

import django

django.setup()

import numpy as np  # noqa: E402
from django.test import override_settings  # noqa: E402

from benchmarks.synthetic import EVENT_TYPES, generate, item_texts  # noqa: E402
from personalize.conf import DEFAULTS  # noqa: E402
from personalize.dataset import Dataset  # noqa: E402
from personalize.dataset.raw import ItemContent, RawEvents  # noqa: E402
from personalize.strategies import History  # noqa: E402
from personalize.strategies.artifacts import Artifact  # noqa: E402
from personalize.strategies.base import CannotRecommend  # noqa: E402
from personalize.strategies.registry import configured_strategy_specs  # noqa: E402

TARGETS_MS = {"movielens-100k": 2.0, "synthetic-10k": 5.0}
HYBRIDS = {
    "blend": ("personalize.strategies.hybrid.Blend",
              {"strategies": {"ease": 0.8, "popular": 0.2}}),
    "cascade": ("personalize.strategies.hybrid.Cascade",
                {"candidates": "item_knn", "ranker": "ease", "pool": 100}),
}
DEFAULT_STRATEGIES = "popular,trending,item_knn,ease,blend,cascade"


def synthetic_catalog(n_items: int = 10_000, n_events: int = 500_000,
                      n_subjects: int = 20_000) -> Dataset:
    events = generate(n_events, n_subjects, n_items, seed=1)
    texts, categories = item_texts(n_items, seed=1)
    raw = RawEvents(events.subjects, events.items, events.types, list(EVENT_TYPES),
                    events.values, events.timestamps)
    content = ItemContent(ids=np.arange(n_items), titles=texts, texts=texts,
                          categories=categories)
    return Dataset.from_raw(raw, content)


def time_strategy(name: str, dataset: Dataset, subjects: list, calls: int) -> dict:
    strategy = configured_strategy_specs()[name].build()
    started = time.perf_counter()
    artifact = strategy.fit(dataset)
    fit_seconds = time.perf_counter() - started
    artifact = Artifact.from_bytes(artifact.to_bytes())  # as loaded from storage
    histories = [History.from_dataset(dataset, s) for s in subjects[:calls]]
    for history in histories[:20]:  # warm: id maps, transposes, caches
        with contextlib.suppress(CannotRecommend):
            strategy.recommend(artifact, history, 10)
    latencies = []
    refused = 0
    for history in histories:
        started_ns = time.perf_counter_ns()
        try:
            strategy.recommend(artifact, history, 10)
        except CannotRecommend:
            refused += 1
        latencies.append((time.perf_counter_ns() - started_ns) / 1e6)
    return {
        "strategy": name, "fit_s": round(fit_seconds, 2),
        "median_ms": round(statistics.median(latencies), 3),
        "p95_ms": round(float(np.percentile(latencies, 95)), 3),
        "calls": len(latencies), "refused": refused,
        "artifact_mb": round(artifact.nbytes / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("PERSONALIZE_DATA_DIR", default_data)))
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--strategies", default=DEFAULT_STRATEGIES)
    args = parser.parse_args()
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    catalogs = {
        "movielens-100k": lambda: Dataset.from_file("ml100k", args.data_dir / "movielens-100k"),
        "synthetic-10k": synthetic_catalog,
    }
    rng = np.random.default_rng(0)
    results = []
    settings = {"STRATEGIES": {**DEFAULTS["STRATEGIES"], **HYBRIDS}}
    with override_settings(PERSONALIZE=settings):
        for label, build in catalogs.items():
            dataset = build()
            subjects = rng.permutation(dataset.subject_ids).tolist()
            print(f"\n{label}: {dataset.n_subjects:,} subjects x {dataset.n_items:,} items, "
                  f"{dataset.interactions.nnz:,} pairs; target median <= {TARGETS_MS[label]} ms")
            print(f"{'strategy':<12} {'fit s':>7} {'median ms':>10} {'p95 ms':>8} "
                  f"{'artifact MB':>12} {'refused':>8}  ok")
            for name in names:
                row = time_strategy(name, dataset, subjects, args.calls)
                row["catalog"] = label
                row["ok"] = row["median_ms"] <= TARGETS_MS[label]
                results.append(row)
                verdict = "yes" if row["ok"] else "NO"
                print(f"{name:<12} {row['fit_s']:>7} {row['median_ms']:>10} {row['p95_ms']:>8} "
                      f"{row['artifact_mb']:>12} {row['refused']:>8}  {verdict}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
