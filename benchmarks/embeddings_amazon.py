"""The embeddings strategy on the Amazon Scientific histories, against most-popular.

Protocol: leave-last-one-out (``Scientific.test.inter``: each user's history
and the held-out next item), full ranking over items not in the history,
k=10, hit rate and NDCG. A random ``--holdout`` share of the products is held
out of training entirely: removed from every history and from the
popularity counts, but present in the catalog with its text, as a brand-new
product would be. Users whose next item is such a product measure cold start:
most-popular can never recommend it, the content model can.

Usage::

    .venv/bin/python benchmarks/embeddings_amazon.py [--data-dir ../shared/data]
        [--holdout 0.1] [--seed 0] [--artifact-cache /tmp/scientific.npz]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

import django

django.setup()

from personalize_embeddings import Embeddings  # noqa: E402

from personalize.dataset import Dataset, EventLog  # noqa: E402
from personalize.strategies.artifacts import Artifact  # noqa: E402
from personalize.strategies.base import CannotRecommend  # noqa: E402
from personalize.strategies.history import History  # noqa: E402


def read(folder: Path) -> tuple[list[str], list[str], list[tuple[list[int], int]]]:
    texts: dict[str, str] = {}
    with (folder / "Scientific.text").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            asin, _, text = line.rstrip("\n").partition("\t")
            texts[asin] = text.strip()
    index: dict[int, str] = {}
    with (folder / "Scientific.item2index").open(encoding="utf-8") as handle:
        for line in handle:
            asin, number = line.split()
            index[int(number)] = asin
    numbers = sorted(index)
    item_ids = [index[n] for n in numbers]
    cases = []
    with (folder / "Scientific.test.inter").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            _, history, target = line.rstrip("\n").split("\t")
            cases.append(([int(i) for i in history.split()], int(target)))
    return item_ids, [texts[a] for a in item_ids], cases


def catalog(item_ids: list[str], texts: list[str]) -> Dataset:
    n = len(item_ids)
    events = EventLog(
        subject_idx=np.zeros(0, np.int32), item_idx=np.zeros(0, np.int32),
        weight=np.zeros(0, np.float32), rating=np.zeros(0, np.float32),
        timestamp=np.zeros(0), event_type=np.zeros(0, np.int16),
    )
    return Dataset(
        subject_ids=np.zeros(0, dtype=np.int64), item_ids=np.asarray(item_ids),
        interactions=sp.csr_array((0, n), dtype=np.float32), events=events,
        item_titles=[""] * n, item_texts=texts,
        item_categories=[[] for _ in range(n)], item_attributes=[{} for _ in range(n)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("PERSONALIZE_DATA_DIR",
                                                             "../shared/data"))
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--artifact-cache", default=None,
                        help="reuse (or write) the fitted artifact at this path")
    args = parser.parse_args()
    item_ids, texts, cases = read(Path(args.data_dir) / "amazon-scientific")
    rng = np.random.default_rng(args.seed)
    n_items = len(item_ids)
    held_out = np.zeros(n_items, dtype=bool)  # item indexes run 0..n-1
    held_out[rng.choice(n_items, int(args.holdout * n_items), replace=False)] = True

    cache = Path(args.artifact_cache) if args.artifact_cache else None
    if cache and cache.exists():
        artifact = Artifact.from_bytes(cache.read_bytes())
        print(f"artifact loaded from {cache}")
    else:
        start = time.perf_counter()
        artifact = Embeddings().fit(catalog(item_ids, texts))
        print(f"embedded {n_items} product texts in {time.perf_counter() - start:.1f}s")
        if cache:
            cache.write_bytes(artifact.to_bytes())

    counts = np.zeros(n_items)
    for history, _ in cases:
        kept = [i for i in history if not held_out[i]]
        np.add.at(counts, kept, 1)
    by_popularity = [int(i) for i in np.argsort(-counts, kind="stable")]

    discounts = 1.0 / np.log2(np.arange(2, args.k + 2))
    variants = {
        "embeddings": Embeddings(),
        "embeddings half_life_events=3": Embeddings(half_life_events=3.0),
        "embeddings half_life_events=1": Embeddings(half_life_events=1.0),
    }
    results: dict[str, dict[str, list[float]]] = {
        name: {"all": [], "cold": []} for name in [*variants, "most popular"]
    }
    latencies: list[float] = []
    for history, target in cases:
        kept = [i for i in history if not held_out[i]]
        cold = bool(held_out[target])
        ranked: dict[str, list[int]] = {}
        seen = set(kept)
        ranked["most popular"] = [i for i in by_popularity[:args.k + len(seen)]
                                  if i not in seen][:args.k]
        for name, strategy in variants.items():
            try:
                start = time.perf_counter()
                recs = strategy.recommend(
                    artifact, History(item_ids=[item_ids[i] for i in kept]), args.k
                )
                latencies.append(time.perf_counter() - start)
                ranked[name] = [r for r, _ in recs]
            except CannotRecommend:
                ranked[name] = []
        target_id = item_ids[target]
        for name, recs in ranked.items():
            ids = recs if name != "most popular" else [item_ids[i] for i in recs]
            hit = target_id in ids
            gain = discounts[ids.index(target_id)] if hit else 0.0
            results[name]["all"].append(gain)
            if cold:
                results[name]["cold"].append(gain)
    n_cold = len(results["most popular"]["cold"])
    print(f"{len(cases)} users, leave-last-one-out, k={args.k}; {int(held_out.sum())} products "
          f"({args.holdout:.0%}) held out of training entirely; {n_cold} users' next item is one")
    print(f"{'strategy':<32}{'hit_rate@10':>12}{'ndcg@10':>9}{'cold hit_rate@10':>18}")
    for name, r in results.items():
        gains = np.asarray(r["all"])
        cold_gains = np.asarray(r["cold"])
        print(f"{name:<32}{(gains > 0).mean():>12.4f}{gains.mean():>9.4f}"
              f"{(cold_gains > 0).mean() if len(cold_gains) else float('nan'):>18.4f}")
    print(f"recommend() latency, {n_items} items: median {np.median(latencies) * 1e3:.2f} ms, "
          f"p95 {np.percentile(latencies, 95) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
