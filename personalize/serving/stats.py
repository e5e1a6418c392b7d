"""What serving observed in this process, by placement: hits, computed blocks, diversity.

Counters only, kept per process; ``personalize.serving.metrics`` logs each
computed block at DEBUG level for sites that collect logs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

metrics_logger = logging.getLogger("personalize.serving.metrics")


@dataclass
class PlacementStats:
    """What serving observed for one placement in this process."""

    computed: int = 0
    cache_hits: int = 0
    fallback_filled: int = 0
    empty: int = 0
    diversity_sum: float = 0.0
    diversity_count: int = 0

    @property
    def mean_diversity(self) -> float | None:
        return self.diversity_sum / self.diversity_count if self.diversity_count else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "computed": self.computed,
            "cache_hits": self.cache_hits,
            "fallback_filled": self.fallback_filled,
            "empty": self.empty,
            "mean_intra_list_diversity": self.mean_diversity,
        }


@dataclass
class ServingStats:
    """Per-process counters, by placement (``serving_stats()`` reads them)."""

    placements: dict[str, PlacementStats] = field(default_factory=dict)
    lock: Any = field(default_factory=threading.Lock, repr=False)

    def _get(self, placement: str) -> PlacementStats:
        stats = self.placements.get(placement)
        if stats is None:
            stats = self.placements.setdefault(placement, PlacementStats())
        return stats

    def record_hit(self, placement: str) -> None:
        with self.lock:
            self._get(placement).cache_hits += 1

    def record_computed(
        self, placement: str, *, diversity: float | None, n_items: int, fallback: bool
    ) -> None:
        with self.lock:
            stats = self._get(placement)
            stats.computed += 1
            stats.fallback_filled += int(fallback)
            stats.empty += int(n_items == 0)
            if diversity is not None and n_items >= 2:
                stats.diversity_sum += diversity
                stats.diversity_count += 1
        if not metrics_logger.isEnabledFor(logging.DEBUG):  # skip formatting the arguments
            return
        metrics_logger.debug(
            "placement=%s items=%d intra_list_diversity=%s fallback=%s",
            placement, n_items, "-" if diversity is None else f"{diversity:.4f}", fallback,
            extra={"placement": placement, "intra_list_diversity": diversity,
                   "items": n_items, "fallback": fallback},
        )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: stats.as_dict() for name, stats in self.placements.items()}

    def reset(self) -> None:
        with self.lock:
            self.placements.clear()


stats = ServingStats()


def serving_stats() -> dict[str, dict[str, Any]]:
    """Serving counters and mean intra-list diversity of this process, by placement."""
    return stats.snapshot()
