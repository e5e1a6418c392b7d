"""Simulated traffic on the home placement, driven by held-back real purchases.

``seed_shop --replay-days N`` calls :func:`replay`. Over the last ``N`` full
days (yesterday and the ``N - 1`` before it), each day a fixed number of seeded
shoppers visit the home page once. A visit goes through the real code:

1. :func:`personalize.serving.service.serve_block` serves the ``home`` block
   to the shopper's subject (the running experiment assigns them, as the
   ``{% recommended_for_you %}`` tag does), and
   :func:`personalize.outcomes.exposures.log_exposure` logs it with its
   impression id, dated at the visit (``at=``);
2. the shopper looks at each card: one of their **held-back purchases** (the
   last purchase of their real history, never seeded, so no model trained on
   it: :func:`example_shop.shop.seeding.split_history`) is clicked with
   :data:`HELD_BACK_CLICK`, added to the cart with :data:`HELD_BACK_CART` and
   bought with :data:`HELD_BACK_BUY`; any other card with the small base
   probabilities ``BASE_*``;
3. the clicks, add-to-carts and purchases go through ``personalize.track``
   with the block's impression id and the card's position, timestamped a few
   seconds apart after the visit; a purchase's value is the product's price.

Then :func:`personalize.outcomes.rollup.run_rollup` rolls up the replayed
days. Everything random comes from one generator seeded with ``seed``, so a
replay on a freshly seeded database gives the same counts every time.

A replay is done once per experiment: its exposures are dated before the
experiment started (the replay fills the days before it), and a second call
finds them and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.utils import timezone

import personalize
from example_shop.shop import amazon
from example_shop.shop.models import Product
from example_shop.shop.seeding import ProgressFactory, event_id, split_history, user_name
from personalize.experiments.results import experiment_report
from personalize.models import Event, Experiment, Exposure, Subject
from personalize.outcomes.exposures import TAG, flush_exposures, log_exposure
from personalize.outcomes.rollup import run_rollup
from personalize.serving.service import serve_block

#: Namespace of the replayed events' uuid5 ids.
REPLAY_NAMESPACE = uuid.UUID("0b7a6f4e-2d35-4c8e-9f61-3e1c7a52d9b4")
#: A card showing a held-back purchase: clicked, then added to the cart, then bought.
HELD_BACK_CLICK, HELD_BACK_CART, HELD_BACK_BUY = 0.9, 0.9, 0.9
#: Any other card: a small chance of each step.
BASE_CLICK, BASE_CART, BASE_BUY = 0.01, 0.15, 0.3
#: Visits a day (fewer when fewer shoppers are seeded).
VISITS_PER_DAY = 400
#: Visits happen between these hours of the site's day.
OPEN, CLOSE = 8, 22


@dataclass
class ReplayReport:
    """What a replay did."""

    days: int = 0
    visits: int = 0
    exposures: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    orders: int = 0
    revenue: float = 0.0
    held_back_shown: int = 0
    verdict: str = ""
    already_done: bool = False

    def __str__(self) -> str:
        if self.already_done:
            return "Traffic already replayed: nothing to change."
        return (f"Replayed {self.visits:,} visits over {self.days} days: "
                f"{self.exposures:,} exposures, {self.clicks:,} clicks, "
                f"{self.add_to_carts:,} add-to-carts, {self.orders:,} orders "
                f"(${self.revenue:,.2f}); experiment report: {self.verdict}")


class ReplayError(RuntimeError):
    """The replay cannot run; the message says what to do."""


def held_back_purchases(data_dir: str | Path, limit_users: int | None = None
                        ) -> dict[int, list[tuple[int, str]]]:
    """Each seeded shopper's held-back purchases: (position in the history, ASIN), by user."""
    folder = amazon.dataset_dir(data_dir)
    index_to_asin = amazon.read_item_index(folder)
    histories = amazon.read_histories(folder)
    users = sorted(histories)
    if limit_users is not None:
        users = users[:limit_users]
    held: dict[int, list[tuple[int, str]]] = {}
    for u in users:
        asins = [index_to_asin[i] for i in histories[u]]
        seeded, held_back = split_history(asins)
        held[u] = [(len(seeded) + n, asin) for n, asin in enumerate(held_back)]
    return held


def seeded_held_back(held_back: dict[int, list[tuple[int, str]]]) -> set[int]:
    """The users whose held-back purchases are in the database's seeded history.

    Only a database seeded before purchases were held back has them: the
    seeding's event ids are deterministic, so they are looked for by id.
    """
    ids = {event_id(u, position, asin): u
           for u, purchases in held_back.items() for position, asin in purchases}
    found = Event.objects.filter(event_id__in=list(ids)).values_list("event_id", flat=True)
    return {ids[eid] for eid in found}


def replay_days(days: int, today: date | None = None) -> list[date]:
    """The ``days`` full days before ``today``, oldest first."""
    today = today or timezone.localdate()
    return [today - timedelta(days=n) for n in range(days, 0, -1)]


def already_replayed(experiment: Experiment) -> bool:
    """Whether the experiment has replayed traffic: exposures dated before its start."""
    return experiment.started_at is not None and Exposure.objects.filter(
        experiment=experiment, created_at__lt=experiment.started_at).exists()


class Replayer:
    """Runs the visits of a replay; :func:`replay` is the entry point."""

    def __init__(self, held_back: dict[int, list[str]], seed: int,
                 progress: ProgressFactory) -> None:
        self.rng = np.random.default_rng(seed)
        self.progress = progress
        self.report = ReplayReport()
        from django.contrib.auth import get_user_model

        users = dict(get_user_model().objects.filter(
            username__in=[user_name(u) for u in held_back]).values_list("username", "pk"))
        subjects = {s.user_id: s for s in Subject.objects.filter(user_id__in=users.values())}
        self.shoppers = [(subjects[users[user_name(u)]], set(held_back[u]))
                         for u in sorted(held_back)
                         if user_name(u) in users and users[user_name(u)] in subjects]
        self.prices = {asin: float(price)
                       for asin, price in Product.objects.values_list("asin", "price")}

    def visit(self, subject: Subject, wanted: set[str], at: datetime, key: str) -> None:
        """One home-page visit of ``subject`` at ``at`` (see the module docstring)."""
        served = serve_block(subject, "home")
        impression = log_exposure(served, TAG, at=at)
        self.report.visits += 1
        if impression is None:
            return
        self.report.exposures += 1
        step = 0

        def track(kind: str, asin: str, position: int, value: float | None = None) -> bool:
            nonlocal step
            step += 1
            event = personalize.track(
                subject, kind, item=asin, value=value, timestamp=at + timedelta(seconds=20 * step),
                event_id=uuid.uuid5(REPLAY_NAMESPACE, f"{key}:{position}:{kind}"),
                impression=str(impression), position=position, placement="home",
            )
            return event is not None

        for position, row in enumerate(served.rows, start=1):
            held = row.external_id in wanted
            self.report.held_back_shown += held
            click, cart, buy = ((HELD_BACK_CLICK, HELD_BACK_CART, HELD_BACK_BUY) if held
                                else (BASE_CLICK, BASE_CART, BASE_BUY))
            draws = self.rng.random(3)  # always three draws: the stream does not depend on luck
            if draws[0] >= click or not track("click", row.external_id, position):
                continue
            self.report.clicks += 1
            if draws[1] >= cart or not track("add_to_cart", row.external_id, position):
                continue
            self.report.add_to_carts += 1
            price = self.prices.get(row.external_id, 0.0)
            if draws[2] < buy and track("purchase", row.external_id, position, price):
                self.report.orders += 1
                self.report.revenue += price

    def run(self, days: list[date], visits_per_day: int) -> None:
        per_day = min(visits_per_day, len(self.shoppers))
        advance = self.progress(per_day * len(days), "Replaying visits")
        zone = timezone.get_current_timezone()
        for day in days:
            chosen = np.sort(self.rng.choice(len(self.shoppers), per_day, replace=False))
            seconds = np.sort(self.rng.uniform(OPEN * 3600, CLOSE * 3600, per_day))
            order = self.rng.permutation(per_day)
            opening = datetime.combine(day, time(), tzinfo=zone)
            for n, shopper in enumerate(chosen[order]):
                subject, wanted = self.shoppers[int(shopper)]
                at = opening + timedelta(seconds=round(float(seconds[n])))
                self.visit(subject, wanted, at, f"{day.isoformat()}:{subject.pk}")
                advance(1)
            flush_exposures()
        self.report.days = len(days)


def replay(
    data_dir: str | Path,
    experiment: Experiment,
    days: int,
    *,
    limit_users: int | None = None,
    visits_per_day: int = VISITS_PER_DAY,
    seed: int = 0,
    progress: ProgressFactory | None = None,
    today: date | None = None,
    rollup_progress: Callable[..., Any] | None = None,
) -> ReplayReport:
    """Replay ``days`` days of visits to the home page, roll them up, report the experiment.

    Args:
        data_dir: the folder holding ``amazon-scientific/`` (the held-back purchases).
        experiment: the running home experiment (``ensure_experiment``).
        days: how many full days before today to fill.
        limit_users: the shoppers seeded with ``--limit-users``.
        visits_per_day: distinct shoppers visiting each day.
        seed: seeds the generator of every draw.
        progress: ``progress(total, description)`` as for the seeding.
        today: the day after the last replayed one (tests; default today).
        rollup_progress: passed to ``run_rollup``.

    Returns:
        The counts, and the experiment report's verdict; ``already_done`` when
        the experiment had replayed traffic already (nothing is changed).

    Raises:
        ReplayError: the experiment is not running, or every held-back purchase
            is in the seeded history (a database seeded by an earlier version).
    """
    if already_replayed(experiment):
        return ReplayReport(already_done=True)
    if experiment.status != Experiment.Status.RUNNING:
        raise ReplayError(
            f"The experiment {experiment.name!r} is {experiment.get_status_display()}: the "
            "replay assigns shoppers through a running experiment. Delete it in the admin "
            "(seed_shop then creates and starts a new one), or replay without it.")
    held_back = held_back_purchases(data_dir, limit_users)
    leaked = seeded_held_back(held_back)
    if leaked and len(leaked) == len(held_back):
        raise ReplayError(
            "The held-back purchases are in the seeded history (a database seeded by an "
            "earlier version): seed a fresh database to replay traffic "
            "(delete var/example_shop.sqlite3, or use a new DATABASE_URL).")
    held_back = {u: purchases for u, purchases in held_back.items() if u not in leaked}
    replayer = Replayer({u: [asin for _, asin in p] for u, p in held_back.items()}, seed,
                        progress or (lambda total, description: lambda n: None))
    chosen = replay_days(days, today)
    replayer.run(chosen, visits_per_day)
    run_rollup(since=chosen[0], progress=rollup_progress)
    experiment.refresh_from_db()
    replayer.report.verdict = experiment_report(experiment).verdict
    return replayer.report
