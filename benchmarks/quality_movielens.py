"""Top-N quality of every configured strategy on MovieLens-100k.

The protocol of the Microsoft Recommenders benchmark table: MovieLens-100k,
stratified random 75/25 split per user (seed 42), binary relevance (every
rated item is relevant), full ranking over the items each user did not rate
in training, k = 10. Every configured strategy takes part: the core ones from
``PERSONALIZE["STRATEGIES"]``, the installed plugins' (Surprise, embeddings)
through the ``personalize.strategies`` entry points, and the hybrid blends
defined below when the hybrid strategy is installed.

Targets (issue 4): the best shipped strategy NDCG@10 >= 0.48; item kNN >= 0.42;
popularity near 0.25 (a sanity check of the metric code). Reference figures on
the same protocol: BiVAE 0.475, BPR 0.442, LightGCN 0.420, Surprise SVD used
for ranking 0.096.

Usage::

    .venv/bin/python benchmarks/quality_movielens.py [--data-dir ../shared/data]
        [--strategies popular item_knn ease svd] [--skip svdpp] [--k 10]
        [--seed 42] [--json report.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

import django

django.setup()

from django.utils.module_loading import import_string  # noqa: E402
from tqdm import tqdm  # noqa: E402

from personalize.dataset import Dataset  # noqa: E402
from personalize.evaluation.report import format_table, to_json  # noqa: E402
from personalize.evaluation.runner import evaluate  # noqa: E402
from personalize.strategies.base import Strategy  # noqa: E402
from personalize.strategies.registry import get_strategy, strategy_names  # noqa: E402

#: Strategies this benchmark adds to the configured ones when their class is
#: installed: name -> (dotted path, options).
EXTRA_STRATEGIES: dict[str, tuple[str, dict]] = {
    "blend_ease_knn": (
        "personalize.strategies.hybrid.Blend",
        {"strategies": {"ease": 0.7, "item_knn": 0.3}},
    ),
}

PUBLISHED = {"BiVAE": 0.475, "BPR": 0.442, "LightGCN": 0.420, "Surprise SVD (ranking)": 0.096}


def build_strategies(names: list[str] | None, skip: list[str]) -> dict[str, Strategy]:
    """The configured strategies (or ``names``), plus the extras whose class is installed."""
    chosen = names or [*strategy_names(), *EXTRA_STRATEGIES]
    strategies: dict[str, Strategy] = {}
    for name in chosen:
        if name in skip:
            continue
        if name not in EXTRA_STRATEGIES:
            strategies[name] = get_strategy(name)
            continue
        path, options = EXTRA_STRATEGIES[name]
        try:
            strategies[name] = import_string(path)(**options)
        except (ImportError, TypeError, ValueError) as exc:
            print(f"(not evaluated: {name}, {exc})", file=sys.stderr)
    return strategies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir",
                        default=os.environ.get("PERSONALIZE_DATA_DIR", "../shared/data"))
    parser.add_argument("--strategies", nargs="+", default=None)
    parser.add_argument("--skip", nargs="+", default=[])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--ratio", type=float, default=0.75)
    parser.add_argument("--json", default=None, help="Also write the report as JSON here.")
    args = parser.parse_args()

    path = Path(args.data_dir) / "movielens-100k" / "u.data"
    started = time.perf_counter()
    dataset = Dataset.from_file("ml100k", path)
    load_seconds = time.perf_counter() - started
    strategies = build_strategies(args.strategies, args.skip)
    print(f"MovieLens-100k: {dataset.n_subjects} users, {dataset.n_items} items, "
          f"{dataset.interactions.nnz} ratings (read in {load_seconds:.2f} s)")
    print(f"Strategies: {', '.join(strategies)}\n")

    started = time.perf_counter()
    report = evaluate(strategies, dataset, "stratified", k=args.k, seed=args.seed,
                      ratio=args.ratio, progress=lambda **kw: tqdm(leave=False, **kw))
    total = time.perf_counter() - started
    print(format_table(report))
    print(f"Whole evaluation: {total:.1f} s (split, fit, full ranking for every user, metrics)")

    k = args.k
    figures = {r["strategy"]: r for r in report["results"] if not r.get("skipped")}
    ndcg = {name: r[f"ndcg@{k}"] for name, r in figures.items()}
    print("\nReference NDCG@10 on this protocol (Microsoft Recommenders): "
          + ", ".join(f"{name} {value:.3f}" for name, value in PUBLISHED.items()))
    if k == 10 and ndcg:
        best = max(ndcg, key=ndcg.__getitem__)
        checks = [(f"best strategy ({best}) NDCG@10 >= 0.48", ndcg[best] >= 0.48, ndcg[best])]
        if "item_knn" in ndcg:
            checks.append(("item_knn NDCG@10 >= 0.42", ndcg["item_knn"] >= 0.42, ndcg["item_knn"]))
        if "popular" in ndcg:
            checks.append(("popular NDCG@10 near 0.25 (within 0.03)",
                           abs(ndcg["popular"] - 0.25) <= 0.03, ndcg["popular"]))
        print("\nTargets:")
        for label, ok, value in checks:
            print(f"  [{'PASS' if ok else 'FAIL'}] {label}: {value:.4f}")
    if args.json:
        Path(args.json).write_text(to_json(report) + "\n", encoding="utf-8")
        print(f"\nJSON report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
