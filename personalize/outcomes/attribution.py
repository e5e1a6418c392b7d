"""Which block earned which click and conversion: exact, vectorised attribution.

Pure NumPy, no database: the rollups (:mod:`personalize.outcomes.rollup`) read
exposures and events into the arrays below, and the benchmarks and tests
feed scripted timelines. The rules (docs/outcomes.md):

* **Click.** A ``click`` event counts for the exposure whose impression id it
  carries when the exposure belongs to the same subject, the clicked item was
  in the block (an item-less click names it by its 1-based ``position``), and
  the click came at most ``window`` after the block was shown (and at most
  ``skew`` before it: browsers' clocks differ from the server's). Anything
  else (an unknown or foreign impression id, an item the block did not show)
  is not a click on a block.
* **Click-through conversion.** An ``add_to_cart`` or ``purchase`` of item X by
  subject S belongs to the latest counted click of S on X at or before it,
  when that click is at most ``window`` older (last click wins; clicks at the
  same instant are ordered as given). The click's exposure gets an
  add-to-cart or a conversion, and a purchase's value as revenue.
* **View-through** (only when ``view_through`` is set). A purchase that no click
  claims belongs to the latest exposure of S that showed X at most
  ``view_through`` before it. Add-to-carts are not attributed by view.

Times are integers (microseconds since the epoch); impression ids are 16-byte
strings (``uuid.UUID.bytes``, NumPy dtype ``S16``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Microseconds in an hour: the unit of :class:`Rules` from settings in hours.
HOUR = 3_600_000_000

#: ``Conversions.kinds`` values.
ADD_TO_CART = 0
PURCHASE = 1

#: ``Attribution.conversion_via`` values.
NOT_ATTRIBUTED = 0
VIA_CLICK = 1
VIA_VIEW = 2


def _int(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class Exposures:
    """Rendered blocks: one entry per impression.

    Attributes:
        ids: impression ids, ``S16`` (distinct).
        subjects: subject pks.
        times: when each block was shown (microseconds since the epoch).
        indptr: ``items[indptr[i]:indptr[i + 1]]`` are block ``i``'s item pks,
            in block order (CSR layout; ``len(indptr) == len(ids) + 1``).
        items: the item pks of every block, concatenated.
    """

    ids: np.ndarray
    subjects: np.ndarray
    times: np.ndarray
    indptr: np.ndarray
    items: np.ndarray

    @classmethod
    def build(cls, ids: object, subjects: object, times: object,
              items: list[list[int]] | None = None, *, indptr: object = None,
              flat: object = None) -> Exposures:
        """Exposures from sequences: ``items`` as one list per block, or ``indptr`` + ``flat``."""
        if items is not None:
            lengths = np.fromiter((len(block) for block in items), dtype=np.int64,
                                  count=len(items))
            indptr = np.concatenate([[0], np.cumsum(lengths)])
            flat = np.fromiter((item for block in items for item in block), dtype=np.int64,
                               count=int(indptr[-1]))
        result = cls(
            np.asarray(ids, dtype="S16").reshape(-1), _int(subjects), _int(times),
            _int([0] if indptr is None else indptr), _int([] if flat is None else flat),
        )
        n = len(result.ids)
        if not (len(result.subjects) == len(result.times) == n and len(result.indptr) == n + 1):
            raise ValueError("Exposures: ids, subjects, times and indptr do not match in length.")
        if n and (result.indptr[0] != 0 or result.indptr[-1] != len(result.items)
                  or np.any(np.diff(result.indptr) < 0)):
            raise ValueError("Exposures: indptr is not a valid CSR pointer into items.")
        return result

    def __len__(self) -> int:
        return len(self.ids)

    def owners(self) -> np.ndarray:
        """The exposure index of every entry of ``items``."""
        return np.repeat(np.arange(len(self.ids), dtype=np.int64), np.diff(self.indptr))


@dataclass(frozen=True)
class Clicks:
    """``click`` events, in the order ties are broken (the later one wins).

    Attributes:
        subjects: subject pks.
        items: clicked item pks (``-1``: the event named no item).
        times: microseconds since the epoch.
        impressions: the impression id each click carries, ``S16`` (``b""``: none).
        positions: the 1-based position in the block (``0``: none).
    """

    subjects: np.ndarray
    items: np.ndarray
    times: np.ndarray
    impressions: np.ndarray
    positions: np.ndarray

    @classmethod
    def build(cls, subjects: object, items: object, times: object, impressions: object,
              positions: object = None) -> Clicks:
        """Clicks from sequences (positions default to 0: unknown)."""
        subjects_ = _int(subjects)
        result = cls(subjects_, _int(items), _int(times),
                     np.asarray(impressions, dtype="S16").reshape(-1),
                     _int(np.zeros(len(subjects_)) if positions is None else positions))
        if not (len(result.items) == len(result.times) == len(result.impressions)
                == len(result.positions) == len(subjects_)):
            raise ValueError("Clicks: the arrays do not match in length.")
        return result

    def __len__(self) -> int:
        return len(self.subjects)


@dataclass(frozen=True)
class Conversions:
    """``add_to_cart`` and ``purchase`` events.

    Attributes:
        subjects: subject pks.
        items: item pks.
        times: microseconds since the epoch.
        kinds: :data:`ADD_TO_CART` or :data:`PURCHASE`.
        values: a purchase's value (revenue; ``NaN`` counts as 0).
    """

    subjects: np.ndarray
    items: np.ndarray
    times: np.ndarray
    kinds: np.ndarray
    values: np.ndarray

    @classmethod
    def build(cls, subjects: object, items: object, times: object, kinds: object,
              values: object = None) -> Conversions:
        """Conversions from sequences (values default to 0)."""
        subjects_ = _int(subjects)
        raw = np.zeros(len(subjects_)) if values is None else values
        result = cls(subjects_, _int(items), _int(times), np.asarray(kinds, dtype=np.int8),
                     np.nan_to_num(np.asarray(raw, dtype=np.float64).reshape(-1), nan=0.0))
        if not (len(result.items) == len(result.times) == len(result.kinds)
                == len(result.values) == len(subjects_)):
            raise ValueError("Conversions: the arrays do not match in length.")
        return result

    def __len__(self) -> int:
        return len(self.subjects)


@dataclass(frozen=True)
class Rules:
    """The attribution windows, in microseconds.

    Attributes:
        window: the click-through window (``ATTRIBUTION_WINDOW_HOURS``), also
            how long after a block a click on it counts.
        view_through: the view-through window (``VIEW_THROUGH_HOURS``), or
            ``None``: no view-through attribution.
        skew: how much earlier than its block a click may be stamped
            (``TIMESTAMP_SKEW_SECONDS``: browser clocks).
    """

    window: int
    view_through: int | None = None
    skew: int = 0

    @classmethod
    def from_hours(cls, window: float, view_through: float | None = None,
                   skew_seconds: float = 0) -> Rules:
        return cls(round(window * HOUR),
                   None if view_through is None else round(view_through * HOUR),
                   round(skew_seconds * 1_000_000))

    @property
    def reach(self) -> int:
        """How long after a block something can still be attributed to it.

        A click within ``window`` after the block, then a conversion within
        ``window`` after the click; or a view-through purchase. Plus the
        skew: a rollup reads this much around the blocks it counts, so that
        competing clicks and blocks are known too.
        """
        return max(2 * self.window, self.view_through or 0) + 2 * self.skew


@dataclass(frozen=True)
class Attribution:
    """What each block earned.

    Attributes:
        click_exposure: per click, the exposure it counts for (``-1``: none).
        conversion_exposure: per conversion, the exposure it is attributed to (``-1``: none).
        conversion_via: per conversion, :data:`VIA_CLICK`, :data:`VIA_VIEW` or
            :data:`NOT_ATTRIBUTED`.
        conversion_click: per conversion, the click that claimed it (``-1``: none).
        clicks, add_to_carts, conversions: per exposure, counts.
        revenue: per exposure, the summed value of its attributed purchases.
    """

    click_exposure: np.ndarray
    conversion_exposure: np.ndarray
    conversion_via: np.ndarray
    conversion_click: np.ndarray
    clicks: np.ndarray
    add_to_carts: np.ndarray
    conversions: np.ndarray
    revenue: np.ndarray


def _lookup(sorted_ids: np.ndarray, order: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index of each ``wanted`` id in the original array, ``-1`` where absent."""
    if not len(sorted_ids) or not len(wanted):
        return np.full(len(wanted), -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, wanted)
    pos = np.minimum(pos, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == wanted, order[pos], -1).astype(np.int64)


def _pair_keys(first: np.ndarray, second: np.ndarray, base: int) -> np.ndarray:
    # first * base + second, with base > max(second) + 1: one int64 per pair
    return first.astype(np.int64) * np.int64(base) + second.astype(np.int64)


def resolve_clicks(exposures: Exposures, clicks: Clicks,
                   rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Per click, the exposure it counts for (``-1``: none) and the item clicked.

    The item is the event's own, or for an item-less click the block's item at
    its ``position``; the click rules are those of the module docstring.
    """
    n = len(clicks)
    items = clicks.items.copy()
    if not n or not len(exposures):
        return np.full(n, -1, dtype=np.int64), items
    order = np.argsort(exposures.ids, kind="stable")
    target = _lookup(exposures.ids[order], order, clicks.impressions)
    known = target >= 0
    safe = np.where(known, target, 0)
    lengths = np.diff(exposures.indptr)[safe]
    by_position = known & (items < 0) & (clicks.positions >= 1) & (clicks.positions <= lengths)
    items[by_position] = exposures.items[
        exposures.indptr[safe[by_position]] + clicks.positions[by_position] - 1]
    delay = clicks.times - exposures.times[safe]
    valid = (known & (clicks.subjects == exposures.subjects[safe]) & (items >= 0)
             & (delay >= -rules.skew) & (delay <= rules.window))
    if valid.any():  # and the block showed the item
        base = int(max(exposures.items.max(initial=0), items.max(initial=0))) + 2
        shown = _pair_keys(exposures.owners(), exposures.items, base)
        valid &= np.isin(_pair_keys(safe, np.maximum(items, 0), base), shown)
    return np.where(valid, target, -1), items


def _last_before(
    subjects: np.ndarray, items: np.ndarray, times: np.ndarray, is_source: np.ndarray,
) -> np.ndarray:
    """For every record, the latest source record of the same (subject, item) at or before it.

    Records are given in tie order (a later record wins a tie in time);
    sources sort before targets at the same instant, so a click at the same
    microsecond as a purchase precedes it. Returns the index of that source
    record, or ``-1``. One sort and one running maximum: no per-record loop.
    """
    n = len(subjects)
    if not n:
        return np.zeros(0, dtype=np.int64)
    sequence = np.arange(n, dtype=np.int64)
    # lexsort: the last key is the primary one
    order = np.lexsort((sequence, ~is_source, times, items, subjects))
    source_sorted = is_source[order]
    running = np.maximum.accumulate(np.where(source_sorted, np.arange(n), -1))
    found_sorted = np.where(running >= 0, order[np.maximum(running, 0)], -1)
    same = (found_sorted >= 0)
    safe = np.maximum(found_sorted, 0)
    same &= (subjects[safe] == subjects[order]) & (items[safe] == items[order])
    result = np.full(n, -1, dtype=np.int64)
    result[order] = np.where(same, found_sorted, -1)
    return result


def attribute(exposures: Exposures, clicks: Clicks, conversions: Conversions,
              rules: Rules) -> Attribution:
    """Attribute clicks and conversions to the blocks that earned them.

    Args:
        exposures: every block of the subjects concerned that a competing
            click or view could come from (a rollup reads :attr:`Rules.reach`
            around the blocks it counts).
        clicks: those subjects' ``click`` events.
        conversions: those subjects' ``add_to_cart`` and ``purchase`` events.
        rules: the windows.

    Returns:
        An :class:`Attribution`; per-exposure arrays have ``len(exposures)`` entries.
    """
    n_exp, n_conv = len(exposures), len(conversions)
    click_exposure, clicked_items = resolve_clicks(exposures, clicks, rules)
    counted = np.flatnonzero(click_exposure >= 0)
    conversion_click = np.full(n_conv, -1, dtype=np.int64)
    conversion_exposure = np.full(n_conv, -1, dtype=np.int64)
    via = np.zeros(n_conv, dtype=np.int8)

    if n_conv and len(counted):
        n_clicks = len(counted)
        click_times = clicks.times[counted]
        found = _last_before(
            np.concatenate([clicks.subjects[counted], conversions.subjects]),
            np.concatenate([clicked_items[counted], conversions.items]),
            np.concatenate([click_times, conversions.times]),
            np.concatenate([np.ones(n_clicks, bool), np.zeros(n_conv, bool)]),
        )[n_clicks:]
        ok = (found >= 0) & (
            conversions.times - click_times[np.maximum(found, 0)] <= rules.window)
        conversion_click[ok] = counted[found[ok]]
        conversion_exposure[ok] = click_exposure[conversion_click[ok]]
        via[ok] = VIA_CLICK

    if rules.view_through is not None and n_conv and n_exp:
        open_ = np.flatnonzero((via == NOT_ATTRIBUTED) & (conversions.kinds == PURCHASE))
        if len(open_):
            owners = exposures.owners()
            n_shown = len(owners)
            shown_times = exposures.times[owners]
            found = _last_before(
                np.concatenate([exposures.subjects[owners], conversions.subjects[open_]]),
                np.concatenate([exposures.items, conversions.items[open_]]),
                np.concatenate([shown_times, conversions.times[open_]]),
                np.concatenate([np.ones(n_shown, bool), np.zeros(len(open_), bool)]),
            )[n_shown:]
            ok = (found >= 0) & (conversions.times[open_] - shown_times[np.maximum(found, 0)]
                                 <= rules.view_through)
            chosen = open_[ok]
            conversion_exposure[chosen] = owners[found[ok]]
            via[chosen] = VIA_VIEW

    attributed = conversion_exposure >= 0
    carts = attributed & (conversions.kinds == ADD_TO_CART)
    purchases = attributed & (conversions.kinds == PURCHASE)
    return Attribution(
        click_exposure=click_exposure,
        conversion_exposure=conversion_exposure,
        conversion_via=via,
        conversion_click=conversion_click,
        clicks=np.bincount(click_exposure[counted], minlength=n_exp).astype(np.int64),
        add_to_carts=np.bincount(conversion_exposure[carts], minlength=n_exp).astype(np.int64),
        conversions=np.bincount(conversion_exposure[purchases],
                                minlength=n_exp).astype(np.int64),
        revenue=np.bincount(conversion_exposure[purchases],
                            weights=conversions.values[purchases], minlength=n_exp),
    )
