"""Sequence and recency on leave-last-one-out: transitions, recency-weighted EASE, their blend.

Protocol: each subject's most recent item is held out (equal timestamps are
ordered as in the file; the Amazon histories have no timestamps and keep the
file's order); every strategy ranks the whole catalog minus the subject's
training items; k = 10.

Options are chosen on a validation split carved from the TRAINING data only:
each subject's item before the last (the last item of the training part) is
held out of it, the candidates are fitted on the rest and scored on that item.
The chosen options are then fitted on the whole training part and scored once
on the test item. The test split is never looked at while choosing. The
search is a small grid, one group of options after another (the EASE
half-life and l2, then its popularity exponent; the transitions window and
history decay, then its distance decay and source normalisation, then its
target normalisation and backward weight; then the blend weight).

Targets (issue 21): ML-100k NDCG@10 >= 0.115 (EASE 0.074); Amazon Scientific
HR@10 >= 0.155 (EASE 0.1327).

Usage::

    .venv/bin/python benchmarks/sequence_quality.py [--data-dir ../shared/data]
        [--datasets ml100k amazon] [--json report.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

import django

django.setup()

from django.test.utils import override_settings  # noqa: E402

from personalize.dataset import Dataset  # noqa: E402
from personalize.evaluation import metrics  # noqa: E402
from personalize.evaluation.report import format_table  # noqa: E402
from personalize.evaluation.runner import evaluate_splits, rank  # noqa: E402
from personalize.evaluation.splits import Split, leave_last_n_split  # noqa: E402
from personalize.strategies.base import Strategy  # noqa: E402
from personalize.strategies.ease import EASE  # noqa: E402
from personalize.strategies.hybrid import Blend  # noqa: E402
from personalize.strategies.popularity import Popularity  # noqa: E402
from personalize.strategies.transitions import Transitions  # noqa: E402

EASE_PATH = "personalize.strategies.ease.EASE"
TRANSITIONS_PATH = "personalize.strategies.transitions.Transitions"

#: name -> (loader, headline metric, target, EASE's figure before this work)
DATASETS: dict[str, tuple[Callable[[Path], Dataset], str, float, float]] = {
    "ml100k": (lambda d: Dataset.from_file("ml100k", d / "movielens-100k" / "u.data"),
               "ndcg@10", 0.115, 0.074),
    "amazon": (lambda d: Dataset.from_file("amazon", d / "amazon-scientific"),
               "hit_rate@10", 0.155, 0.1327),
}

#: The grids, searched one group at a time (each group keeps the best of the previous ones).
EASE_GRIDS = [
    {"recency_half_life": [3, 5, 10, 20], "l2": [450.0, 900.0, 1800.0, 3600.0]},
    {"popularity_exponent": [-0.3, -0.2, -0.1, 0.0]},
]
TRANSITION_GRIDS = [
    {"window": [5, 10, 20], "history_decay": [0.7, 0.8, 0.85, 0.9]},
    {"distance_decay": [0.5, 0.7, 0.85, 1.0], "source_alpha": [0.0, 0.5, 1.0]},
    {"alpha": [0.25, 0.5, 0.75], "backward": [0.0, 0.5, 1.0]},
]
#: Where the transitions search starts (fixed, so the figures do not move with the defaults).
TRANSITIONS_START = {"distance_decay": 0.7}
BLEND_WEIGHTS = [0.2, 0.35, 0.5, 0.6, 0.7, 0.8]


def score(strategy: Strategy, split: Split, metric: str) -> float:
    """The headline metric of ``strategy`` on ``split`` (fitted on its training part)."""
    ranking = rank(strategy, split, 10)
    if metric == "ndcg@10":
        return float(metrics.ndcg_at_k(ranking.recs, ranking.relevant, 10))
    return float(metrics.hit_rate_at_k(ranking.recs, ranking.relevant, 10))


def blend(ease_options: dict[str, Any], transition_options: dict[str, Any],
          weight: float) -> tuple[Blend, dict[str, Any]]:
    """A Blend of recency EASE (``1 - weight``) and transitions (``weight``), and its settings."""
    settings = {"STRATEGIES": {"ease_recency": (EASE_PATH, ease_options),
                               "transitions": (TRANSITIONS_PATH, transition_options)},
                "LOAD_ENTRY_POINTS": False}
    strategy = Blend(strategies={"ease_recency": 1.0 - weight, "transitions": weight})
    return strategy, settings


def search(build: Callable[[dict[str, Any]], Strategy], grids: list[dict[str, list[Any]]],
           start: dict[str, Any], validation: Split, metric: str,
           log: list[dict[str, Any]], label: str) -> tuple[dict[str, Any], float]:
    """Grid-search each group in turn on ``validation``; the best options and their score."""
    best, best_score = dict(start), -1.0
    for grid in grids:
        names = list(grid)
        group_best = best
        for values in itertools.product(*(grid[n] for n in names)):
            options = {**best, **dict(zip(names, values, strict=True))}
            value = score(build(options), validation, metric)
            log.append({"strategy": label, "options": options, metric: round(value, 4)})
            if value > best_score:
                group_best, best_score = options, value
        best = group_best
    return best, best_score


def run(name: str, data_dir: Path) -> dict[str, Any]:
    load, metric, target, ease_before = DATASETS[name]
    dataset = load(data_dir)
    started = time.perf_counter()
    split = leave_last_n_split(dataset, n=1)
    # the validation item: each subject's last TRAINING item (the one before the test item)
    validation = leave_last_n_split(split.train, n=1)
    print(f"\n== {name}: {dataset.n_subjects} subjects, {dataset.n_items} items, "
          f"{len(dataset.events)} events; {split.test_subjects.size} test subjects, "
          f"{validation.test_subjects.size} validation subjects")
    log: list[dict[str, Any]] = []
    ease_options, ease_val = search(lambda o: EASE(**o), EASE_GRIDS, {}, validation, metric,
                                    log, "ease_recency")
    print(f"  ease_recency chosen on validation: {ease_options} ({metric} {ease_val:.4f})")
    transition_options, transition_val = search(
        lambda o: Transitions(**o), TRANSITION_GRIDS, TRANSITIONS_START, validation, metric,
        log, "transitions")
    print(f"  transitions chosen on validation: {transition_options} "
          f"({metric} {transition_val:.4f})")
    weight, blend_val = BLEND_WEIGHTS[0], -1.0
    for candidate in BLEND_WEIGHTS:
        strategy, settings = blend(ease_options, transition_options, candidate)
        with override_settings(PERSONALIZE=settings):
            value = score(strategy, validation, metric)
        log.append({"strategy": "blend", "options": {"transitions_weight": candidate},
                    metric: round(value, 4)})
        if value > blend_val:
            weight, blend_val = candidate, value
    print(f"  blend chosen on validation: transitions weight {weight} ({metric} {blend_val:.4f})")
    tuning_seconds = time.perf_counter() - started

    strategy, settings = blend(ease_options, transition_options, weight)
    strategies: dict[str, Strategy] = {
        "popular": Popularity(),
        "ease": EASE(),
        "ease_recency": EASE(**ease_options),
        "transitions": Transitions(**transition_options),
        "blend": strategy,
    }
    with override_settings(PERSONALIZE=settings):
        report = evaluate_splits(strategies, [split], k=10, protocol="leave-last-n")
    print()
    print(format_table(report))
    figures = {r["strategy"]: r for r in report["results"] if not r.get("skipped")}
    best = max(figures, key=lambda s: figures[s].get(metric) or 0.0)
    reached = figures[best][metric]
    print(f"\n  [{'PASS' if reached >= target else 'FAIL'}] best ({best}) {metric} "
          f"{reached:.4f} >= {target} (EASE before: {ease_before})")
    print(f"  tuning + evaluation: {time.perf_counter() - started:.1f} s "
          f"(tuning {tuning_seconds:.1f} s, {len(log)} validation runs)")
    return {
        "dataset": name, "metric": metric, "target": target, "best": best,
        "reached": reached, "chosen": {"ease_recency": ease_options,
                                       "transitions": transition_options,
                                       "blend_transitions_weight": weight},
        "validation": {"ease_recency": ease_val, "transitions": transition_val,
                       "blend": blend_val},
        "report": report, "search": log,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir",
                        default=os.environ.get("PERSONALIZE_DATA_DIR", "../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=["ml100k"], choices=list(DATASETS))
    parser.add_argument("--json", default=None, help="Also write the figures as JSON here.")
    args = parser.parse_args()
    results = [run(name, Path(args.data_dir)) for name in args.datasets]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n",
                                   encoding="utf-8")
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
