"""Content profiles and the gated hybrid on Amazon Scientific, per history bucket.

Protocol: leave-last-one-out (each subject's last item is held out; the
Amazon histories keep the file's order), full ranking over the catalog minus
the training items, k = 10, NDCG and hit rate per training-history bucket
(``1-2``, ``3-5``, ``6-20``, ``21+``; :data:`personalize.evaluation.breakdown.HISTORY_BUCKETS`).

Everything that is chosen is chosen on a validation split carved from the
TRAINING data only (each subject's last training item held out): the
embeddings' ``recency_half_life``, and the gated hybrid's content share in
each bucket (a grid; EASE has the rest, popularity answers empty histories).
The test split is scored once with the chosen options: per bucket, the
gated hybrid against the best of EASE and embeddings, with a paired
bootstrap (1000 resamples, 95 %) to say whether a gap is noise ("tied").

A cold-start check follows: 10 % of the products are held out of training
(their text stays in the catalog, as a product added since the last
training would); on the subjects whose held-out item is such a product, the
gated hybrid with and without its new-item boost.

The item embeddings are computed once (about two minutes on a CPU) and reused
by every fit through ``Embeddings.refit``; ``--artifact-cache`` keeps them
between runs.

Usage::

    .venv/bin/python benchmarks/gated_quality.py [--data-dir ../shared/data]
        [--artifact-cache /tmp/scientific-embeddings.npz] [--json report.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

import django

django.setup()

from django.test.utils import override_settings  # noqa: E402
from personalize_embeddings import Embeddings  # noqa: E402

from personalize.dataset import Dataset  # noqa: E402
from personalize.evaluation import metrics, uncertainty  # noqa: E402
from personalize.evaluation.breakdown import HISTORY_BUCKETS, bucket_of, history_lengths  # noqa: E402
from personalize.evaluation.report import format_table  # noqa: E402
from personalize.evaluation.runner import Rankings, evaluate_splits, rank  # noqa: E402
from personalize.evaluation.splits import Split, hold_out_items, leave_last_n_split  # noqa: E402
from personalize.strategies.artifacts import Artifact  # noqa: E402
from personalize.strategies.base import Strategy  # noqa: E402
from personalize.strategies.ease import EASE  # noqa: E402
from personalize.strategies.gated import Gated  # noqa: E402
from personalize.strategies.popularity import Popularity  # noqa: E402

K = 10
HALF_LIVES: list[float | None] = [None, 1, 2, 3, 5, 10]
CONTENT_SHARES = [0.0, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0]
LABELS = [label for label, _, _ in HISTORY_BUCKETS]
#: the embeddings artifact every fit starts from (set by main)
VECTORS: dict[str, Artifact] = {}


class CachedEmbeddings(Embeddings):
    """Embeddings whose fit reuses the vectors computed once for the catalog."""

    def fit(self, dataset: Dataset, previous_artifact: Artifact | None = None) -> Artifact:
        return super().fit(dataset, previous_artifact=previous_artifact or VECTORS.get("all"))


def settings(half_life: float | None) -> dict[str, Any]:
    return {"STRATEGIES": {
        "ease": ("personalize.strategies.ease.EASE", {}),
        "embeddings": (f"{__name__}.CachedEmbeddings", {"recency_half_life": half_life}),
        "popular": ("personalize.strategies.popularity.Popularity", {}),
    }, "LOAD_ENTRY_POINTS": False}


def gated(shares: list[float], **options: Any) -> Gated:
    """Popularity for empty histories; per bucket, ``share`` to embeddings, the rest to EASE."""
    return Gated(strategies={"ease": [0.0, *(1.0 - s for s in shares)],
                             "embeddings": [0.0, *shares],
                             "popular": [1.0, 0.0, 0.0, 0.0, 0.0]}, **options)


def per_subject(rankings: Rankings, split: Split) -> dict[str, np.ndarray]:
    """NDCG and hit rate of each ranked subject, and the subject's bucket."""
    figures = metrics.ranking_metrics_per_subject(rankings.recs, rankings.relevant, K)
    has_relevant = metrics.relevant_counts(rankings.relevant) > 0
    lengths = history_lengths(split.train, rankings.subjects)[has_relevant]
    return {"ndcg": figures["ndcg"], "hit_rate": figures["hit_rate"],
            "bucket": bucket_of(lengths)}


def bucket_means(rows: dict[str, np.ndarray], metric: str = "ndcg") -> list[float | None]:
    return [float(rows[metric][rows["bucket"] == b].mean()) if (rows["bucket"] == b).any()
            else None for b in range(len(LABELS))]


def compare(rows: dict[str, dict[str, np.ndarray]], metric: str) -> dict[str, Any]:
    """Per bucket: each strategy's mean, and whether gated is tied with or above the best."""
    names = list(rows)
    out: dict[str, Any] = {}
    buckets = rows[names[0]]["bucket"]
    for index, label in enumerate(LABELS):
        chosen = buckets == index
        if not chosen.any():
            continue
        values = np.vstack([rows[name][metric][chosen] for name in names])
        means = values.mean(axis=1)
        samples = uncertainty.resampled_means(values, 1000, seed=42)
        single = [n for n in names if n != "gated"]
        best = max(single, key=lambda n: means[names.index(n)])
        diff = samples[names.index("gated")] - samples[names.index(best)]
        low, high = np.percentile(diff, [2.5, 97.5])
        verdict = "better" if low > 0 else "tied" if high >= 0 else "worse"
        out[label] = {"subjects": int(chosen.sum()),
                      **{name: round(float(m), 4) for name, m in zip(names, means, strict=True)},
                      "best_single": best, "gated_minus_best": [round(float(low), 4),
                                                                round(float(high), 4)],
                      "verdict": verdict}
    return out


def choose_half_life(validation: Split) -> tuple[float | None, dict[str, float]]:
    artifact = CachedEmbeddings().fit(validation.train)
    found = {}
    for half_life in HALF_LIVES:
        rankings = rank(Embeddings(recency_half_life=half_life), validation, K, artifact=artifact)
        found[str(half_life)] = round(float(metrics.ndcg_at_k(rankings.recs,
                                                              rankings.relevant, K)), 4)
    best = max(HALF_LIVES, key=lambda h: found[str(h)])
    return best, found


def choose_shares(validation: Split, half_life: float | None) -> tuple[list[float], Any]:
    """The content share of each non-empty bucket with the best validation NDCG."""
    with override_settings(PERSONALIZE=settings(half_life)):
        artifact = gated([0.5] * 4).fit(validation.train)
        table = {}
        for share in CONTENT_SHARES:  # the options change, the fitted parts do not
            rankings = rank(gated([share] * 4), validation, K, artifact=artifact)
            table[share] = bucket_means(per_subject(rankings, validation))
    shares = []
    for bucket in range(1, len(LABELS)):
        scored = [s for s in CONTENT_SHARES if table[s][bucket] is not None]
        shares.append(max(scored, key=lambda s: table[s][bucket]) if scored else 0.5)
    return shares, {str(s): v for s, v in table.items()}


def cold_start(split: Split, shares: list[float], half_life: float | None) -> dict[str, Any]:
    """Hit rate on subjects whose held-out item was never seen in training."""
    rng = np.random.default_rng(0)
    hidden = rng.choice(split.train.n_items, size=split.train.n_items // 10, replace=False)
    cold = hold_out_items(split, hidden)
    strategies: dict[str, Strategy] = {
        "ease": EASE(), "embeddings": Embeddings(recency_half_life=half_life),
        "gated": gated(shares),
        "gated + new-item boost": gated(shares, content="embeddings", new_item_days=30.0,
                                        new_item_boost=0.5),
    }
    targets = np.asarray(cold.test[:, hidden].sum(axis=1)).ravel() > 0
    out: dict[str, Any] = {"hidden_items": int(hidden.size)}
    with override_settings(PERSONALIZE=settings(half_life)):
        for name, strategy in strategies.items():
            if name == "embeddings":
                strategy = CachedEmbeddings(recency_half_life=half_life)
            rankings = rank(strategy, cold, K)
            is_cold = targets[rankings.subjects]
            hits = rankings.hits.any(axis=1)
            out[name] = {"hit_rate_cold": round(float(hits[is_cold].mean()), 4),
                         "hit_rate_warm": round(float(hits[~is_cold].mean()), 4),
                         "cold_subjects": int(is_cold.sum())}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir",
                        default=os.environ.get("PERSONALIZE_DATA_DIR", "../shared/data"))
    parser.add_argument("--artifact-cache", default=None,
                        help="Keep the item embeddings in this file between runs.")
    parser.add_argument("--device", default="cpu", help="torch device for the embeddings.")
    parser.add_argument("--json", default=None, help="Also write the figures as JSON here.")
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = Dataset.from_file("amazon", Path(args.data_dir) / "amazon-scientific")
    cache = Path(args.artifact_cache) if args.artifact_cache else None
    if cache is not None and cache.exists():
        VECTORS["all"] = Artifact.from_bytes(cache.read_bytes())
    VECTORS["all"] = Embeddings(device=args.device).fit(dataset, VECTORS.get("all"))
    if cache is not None:
        cache.write_bytes(VECTORS["all"].to_bytes())
    print(f"Amazon Scientific: {dataset.n_subjects} subjects, {dataset.n_items} items; "
          f"embedded in {time.perf_counter() - started:.0f} s")

    split = leave_last_n_split(dataset, n=1)
    validation = leave_last_n_split(split.train, n=1)
    half_life, half_lives = choose_half_life(validation)
    print(f"\nembeddings recency_half_life on validation (NDCG@{K}): {half_lives} "
          f"-> {half_life}")
    shares, share_table = choose_shares(validation, half_life)
    print(f"gated content share per bucket {LABELS[1:]} on validation: {shares}")

    strategies: dict[str, Strategy] = {
        "popular": Popularity(), "ease": EASE(),
        "embeddings": CachedEmbeddings(recency_half_life=half_life),
        "gated": gated(shares),
    }
    with override_settings(PERSONALIZE=settings(half_life)):
        report = evaluate_splits(strategies, [split], k=K, protocol="leave-last-n")
        print()
        print(format_table(report))
        rows = {name: per_subject(rank(strategies[name], split, K), split)
                for name in ("ease", "embeddings", "gated")}
    per_bucket = {metric: compare(rows, metric) for metric in ("ndcg", "hit_rate")}
    print("\nPer bucket, test split (paired bootstrap of gated minus the best single):")
    for metric, table in per_bucket.items():
        for label, cell in table.items():
            print(f"  {metric}@{K} {label:>5} ({cell['subjects']:>5} subjects): ease "
                  f"{cell['ease']:.4f}  embeddings {cell['embeddings']:.4f}  gated "
                  f"{cell['gated']:.4f}  [{cell['verdict']}: {cell['gated_minus_best']}]")
    cold = cold_start(split, shares, half_life)
    print(f"\nCold start ({cold['hidden_items']} products held out of training):")
    for name, cell in cold.items():
        if isinstance(cell, dict):
            print(f"  {name:<24} HR@{K} cold {cell['hit_rate_cold']:.4f} "
                  f"({cell['cold_subjects']} subjects), warm {cell['hit_rate_warm']:.4f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "half_life": half_life, "half_life_validation": half_lives,
            "content_shares": shares, "share_validation": share_table,
            "report": report, "per_bucket": per_bucket, "cold_start": cold,
        }, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
