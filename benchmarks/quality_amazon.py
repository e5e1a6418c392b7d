"""Content and hybrid strategies against popularity on Amazon Scientific, and cold start.

Part 1, leave-last-one-out. Each user's most recent item (the last one of the
ordered history) is held out; every strategy is fitted on the rest and ranks
the whole catalog minus the user's training items; hit_rate@10 (and the other
metrics) over the 8,442 users. Target (issue 4): the embeddings and hybrid
strategies beat popularity on hit_rate@10.

Part 2, cold start: products held out of training entirely. From the items
that are some user's held-out last item, a random 10% (seeded) is hidden:
every interaction with them is removed from training, by every user, so no
collaborative signal exists for them; they stay in the catalog with their
text. The "cold users" are the users whose held-out item is a hidden product.
For each strategy we report, over the cold users:

* cold hit_rate@10: the hidden product is in the user's top 10. Chance level
  is about 10 / 4,385 = 0.0023; strategies that learn only from interactions
  cannot score above 0;
* the same, split into quartiles of textual closeness between the user's
  history and the hidden product. Closeness is measured independently of any
  strategy's model: the highest TF-IDF cosine between the product's text and
  the text of any item in the user's training history. If cold products reach
  "users whose history is textually close", the hit rate rises with closeness;
* cold items reached: the share of hidden products that appear in at least
  one cold user's top 10.

Usage::

    .venv/bin/python benchmarks/quality_amazon.py [--data-dir ../shared/data]
        [--strategies popular item_knn ease embeddings] [--cold-share 0.1]
        [--seed 42] [--max-subjects N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

import django

django.setup()

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402
from tqdm import tqdm  # noqa: E402

from personalize.dataset import Dataset  # noqa: E402
from personalize.evaluation.report import format_table  # noqa: E402
from personalize.evaluation.runner import evaluate_splits, rank  # noqa: E402
from personalize.evaluation.splits import hold_out_items, leave_last_n_split  # noqa: E402
from personalize.strategies.base import Strategy  # noqa: E402
from personalize.strategies.registry import get_strategy, strategy_names  # noqa: E402

DEFAULT_STRATEGIES = ("popular", "item_knn", "ease", "embeddings")

#: Hybrids this benchmark evaluates when the hybrid strategy is installed:
#: name -> (dotted path, options).
HYBRIDS: dict[str, tuple[str, dict]] = {
    "blend_emb_knn": (
        "personalize.strategies.hybrid.Blend",
        {"strategies": {"embeddings": 0.5, "item_knn": 0.5}},
    ),
}


def progress(**kwargs):
    return tqdm(leave=False, **kwargs)


def tfidf(texts: list[str]) -> sp.csr_array:
    """L2-normalised TF-IDF rows (smooth idf), built by hand: no model shared with any strategy."""
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, text in enumerate(texts):
        for token in re.findall(r"[a-z0-9]+", text.lower()):
            rows.append(row)
            cols.append(vocabulary.setdefault(token, len(vocabulary)))
    counts = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(vocabulary)))
    counts.sum_duplicates()
    document_frequency = np.bincount(counts.indices, minlength=len(vocabulary))
    idf = np.log((1 + len(texts)) / (1 + document_frequency)) + 1.0
    weighted = sp.csr_array(counts @ sp.diags_array(idf))
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    return sp.csr_array(sp.diags_array(1.0 / np.maximum(norms, 1e-12)) @ weighted)


def build_strategies(names: list[str] | None) -> dict[str, Strategy]:
    """The default strategies (or ``names``), plus the hybrids whose class is installed."""
    configured = strategy_names()
    chosen = names or [*(n for n in DEFAULT_STRATEGIES if n in configured), *HYBRIDS]
    strategies: dict[str, Strategy] = {}
    for name in chosen:
        if name not in HYBRIDS:
            strategies[name] = get_strategy(name)
            continue
        path, options = HYBRIDS[name]
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
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cold-share", type=float, default=0.1)
    parser.add_argument("--max-subjects", type=int, default=None)
    args = parser.parse_args()
    k = args.k

    dataset = Dataset.from_file("amazon", Path(args.data_dir) / "amazon-scientific")
    strategies = build_strategies(args.strategies)
    print(f"Amazon Scientific: {dataset.n_subjects} users, {dataset.n_items} items, "
          f"{len(dataset.events)} interactions ({dataset.interactions.nnz} distinct pairs)")
    print(f"Strategies: {', '.join(strategies)}\n")

    # --- part 1: leave-last-one-out -------------------------------------------------
    split = leave_last_n_split(dataset, n=1)
    started = time.perf_counter()
    # fallback=None: the strategies alone, comparable with published leave-one-out tables
    report = evaluate_splits(strategies, [split], k=k, seed=args.seed, protocol="leave-last-n",
                             max_subjects=args.max_subjects, progress=progress, fallback=None)
    print("Part 1: leave-last-one-out, full ranking over unseen items")
    print(format_table(report))
    print(f"({time.perf_counter() - started:.1f} s)")
    figures = {r["strategy"]: r for r in report["results"] if not r.get("skipped")}
    if "popular" in figures:
        base = figures["popular"][f"hit_rate@{k}"]
        print("\nTarget: content and hybrid strategies beat popularity on hit_rate@10")
        for name, entry in figures.items():
            if name == "embeddings" or name in HYBRIDS:
                value = entry[f"hit_rate@{k}"]
                print(f"  [{'PASS' if value > base else 'FAIL'}] {name} {value:.4f} "
                      f"vs popular {base:.4f} ({value / base:.2f}x)")

    # --- part 2: cold start -----------------------------------------------------------
    rng = np.random.default_rng(args.seed)
    targets = np.unique(sp.csr_array(split.test).indices)
    cold = np.sort(rng.choice(targets, size=max(1, int(args.cold_share * targets.size)),
                              replace=False))
    hidden = hold_out_items(split, cold)
    test = sp.csr_array(hidden.test)
    is_cold = np.zeros(dataset.n_items, dtype=bool)
    is_cold[cold] = True
    test = sp.csr_array((test.data * is_cold[test.indices], test.indices, test.indptr),
                        shape=test.shape)
    test.eliminate_zeros()
    cold_split = dataclasses.replace(hidden, test=test)
    subjects = cold_split.test_subjects
    print(f"\nPart 2: cold start. {cold.size} products hidden from training entirely "
          f"({split.train.interactions.nnz - hidden.train.interactions.nnz} "
          f"training pairs removed); {subjects.size} users whose held-out item is one of them.")

    # textual closeness of each cold user's history to their hidden product
    vectors = tfidf([text or title
                     for text, title in zip(dataset.item_texts, dataset.item_titles, strict=True)])
    history = sp.csr_array(hidden.train.interactions)[subjects]
    history.data[:] = 1.0
    target_of = test[subjects].indices  # one held-out item per user
    similarity = (vectors[target_of] @ vectors.T).toarray()
    closeness = (similarity * history.toarray()).max(axis=1)
    edges = np.quantile(closeness, [0.25, 0.5, 0.75])
    quartile = np.searchsorted(edges, closeness, side="right")
    print("Closeness quartiles (max TF-IDF cosine, history vs hidden product): "
          + ", ".join(f"Q{q + 1} <= {v:.2f}" for q, v in enumerate([*edges, closeness.max()])))

    header = (f"{'strategy':<18}{'cold hit@' + str(k):>12}"
              + "".join(f"{'Q' + str(q + 1):>8}" for q in range(4)) + f"{'reached':>10}")
    print("\n" + header + "\n" + "-" * len(header))
    for name, strategy in strategies.items():
        ranked = rank(strategy, cold_split, k, name=name, progress=progress)
        assert np.array_equal(ranked.subjects, subjects)
        hit = ranked.hits.any(axis=1)
        by_quartile = [hit[quartile == q].mean() for q in range(4)]
        listed = ranked.recs[ranked.recs >= 0]
        reached = np.intersect1d(listed, cold).size / cold.size
        print(f"{name:<18}{hit.mean():>12.4f}" + "".join(f"{v:>8.4f}" for v in by_quartile)
              + f"{reached:>10.2%}")
    print(f"{'chance':<18}{k / dataset.n_items:>12.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
