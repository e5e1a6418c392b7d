"""Does a shopper's current browsing move the home block? Measured on the demo shop.

The demo's seeded shoppers have purchase histories of up to dozens of Amazon
Industrial & Scientific products, bought over months, the last one within a
week. For each seeded shopper with at least ``--min-purchases`` purchases and
none in the target department (default "Professional Dental Supplies"), the
script records three views of products of that department, one, five and ten
minutes ago, computes the shopper's "home" block (``personalize.serving.
service.preview``: the live models, no cache) and counts how many of its
items belong to the target department. The views are recorded inside a
transaction that is rolled back, so the demo's database is left as it was.

It does this twice, with ``HISTORY_HALF_LIFE_HOURS`` off (``{}``: every event
keeps its full weight, as before the setting existed) and with the setting as
configured (by default the documented per-type half-lives), and prints, for
each: the share of shoppers whose block shows at least one / at least half
target-department items, and the mean count in the block::

    make demo   # once: seeds and trains the demo shop (then stop the server)
    .venv/bin/python benchmarks/recency_demo.py [--shoppers 300] [--min-purchases 10]
        [--department "Professional Dental Supplies"] [--json out.json]

It runs on the demo's own settings and database (``EXAMPLE_SHOP_VAR_DIR`` /
``DATABASE_URL`` as for ``make demo``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_shop.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from personalize.conf import personalize_settings  # noqa: E402
from personalize.models import Event, Item, Subject  # noqa: E402
from personalize.serving.service import preview  # noqa: E402

PLACEMENT = "home"


def shoppers(department: str, min_purchases: int, limit: int) -> list[Subject]:
    """Seeded shoppers with a long purchase history and no purchase in ``department``."""
    buyers = (Event.objects.filter(event_type="purchase", subject__user__isnull=False)
              .values("subject").annotate(n=Count("id")).filter(n__gte=min_purchases)
              .order_by("-n", "subject").values_list("subject", flat=True))
    touched = set(Event.objects.filter(item__primary_category=department)
                  .values_list("subject", flat=True).distinct())
    chosen = [pk for pk in buyers if pk not in touched][:limit]
    return list(Subject.objects.filter(pk__in=chosen).order_by("pk"))


def department_items(department: str, n: int = 20) -> list[Item]:
    """The ``n`` most bought available products of ``department``."""
    return list(Item.objects.filter(primary_category=department, available=True)
                .annotate(n=Count("events")).order_by("-n", "pk")[:n])


def measure(subjects: list[Subject], pool: list[Item], department: str,
            seed: int) -> dict[str, Any]:
    """Three fresh views per shopper, then the share of the block from ``department``."""
    rng = np.random.default_rng(seed)
    counts: list[int] = []
    limit = 0
    started = time.perf_counter()
    for subject in subjects:
        viewed = [pool[i] for i in rng.choice(len(pool), size=3, replace=False)]
        now = timezone.now()
        with transaction.atomic():
            Event.objects.bulk_create([
                Event(subject=subject, item=item, event_type="view",
                      timestamp=now - timedelta(minutes=minutes))
                for item, minutes in zip(viewed, (10, 5, 1), strict=True)
            ])
            recommendations, _, config = preview(subject, PLACEMENT)
            transaction.set_rollback(True)
        limit = config.limit
        counts.append(sum(1 for rec in recommendations
                          if rec.item.primary_category == department))
    array = np.asarray(counts)
    return {
        "shoppers": len(counts),
        "block_size": limit,
        "with_at_least_one": float(np.mean(array >= 1)) if len(array) else 0.0,
        "with_at_least_half": float(np.mean(array >= limit / 2)) if len(array) else 0.0,
        "mean_in_block": float(array.mean()) if len(array) else 0.0,
        "histogram": dict(sorted(Counter(counts).items())),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shoppers", type=int, default=300)
    parser.add_argument("--min-purchases", type=int, default=10)
    parser.add_argument("--department", default="Professional Dental Supplies")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--half-life", action="append", default=[], metavar="TYPE=HOURS",
                        help="Override one event type's half-life (repeatable; 'none': no decay).")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    subjects = shoppers(args.department, args.min_purchases, args.shoppers)
    pool = department_items(args.department)
    if not subjects or len(pool) < 3:
        print("The demo shop is not seeded and trained: run `make demo` first.", file=sys.stderr)
        return 1
    configured = dict(personalize_settings.HISTORY_HALF_LIFE_HOURS or {})
    for override in args.half_life:
        kind, _, hours = override.partition("=")
        configured[kind] = None if hours.lower() == "none" else float(hours)
    print(f"{len(subjects)} shoppers with >= {args.min_purchases} purchases and none in "
          f"{args.department!r}; 3 fresh views each of its {len(pool)} most bought products.")
    print(f"Placement {PLACEMENT!r}; HISTORY_HALF_LIFE_HOURS: {configured}\n")
    results = {}
    for label, half_lives in (("no decay", {}), ("decay", configured)):
        with override_settings(PERSONALIZE={**settings.PERSONALIZE,
                                            "HISTORY_HALF_LIFE_HOURS": half_lives}):
            results[label] = measure(subjects, pool, args.department, args.seed)
    print(f"{'':10} {'>=1 in block':>13} {'>=half':>8} {'mean':>6}  histogram (count: shoppers)")
    for label, row in results.items():
        print(f"{label:10} {row['with_at_least_one']:>13.1%} {row['with_at_least_half']:>8.1%} "
              f"{row['mean_in_block']:>6.2f}  {row['histogram']}")
    if args.json:
        args.json.write_text(json.dumps({"department": args.department, "results": results,
                                         "half_lives": configured}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
