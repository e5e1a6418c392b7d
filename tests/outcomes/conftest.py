"""A scripted shop for the outcomes tests: blocks shown, clicks, add-to-carts and purchases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from personalize.models import (
    Assignment,
    DailyRollup,
    Event,
    Experiment,
    Exposure,
    Item,
    Subject,
    Variant,
)

#: Monday 4 March 2024, 09:00 UTC: "day 0" of the scripted timelines.
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)

_counter = itertools.count()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


class Clock:
    """``timezone.now()`` under the test's control (auto_now fields included)."""

    def __init__(self, monkeypatch) -> None:
        self.now = at(60)
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def set(self, moment: datetime) -> None:
        self.now = moment


class Shop:
    """Writes the rows a site would: exposures and events at given hours after T0."""

    def __init__(self) -> None:
        self.items = [Item.objects.create(external_id=f"p{next(_counter)}", title=f"Item {n}")
                      for n in range(8)]

    def item(self, n: int) -> Item:
        return self.items[n]

    def subject(self) -> Subject:
        return Subject.objects.create(visitor_id=f"v-{next(_counter)}")

    def show(self, subject: Subject, hours: float, items: list[int], *, placement: str = "home",
             strategy: str = "ease", variant: Variant | None = None,
             source: str = "tag") -> Exposure:
        return Exposure.objects.create(
            subject=subject, placement=placement, strategy=strategy, model_version=1,
            experiment=variant.experiment if variant else None, variant=variant,
            items=[self.items[n].pk for n in items], source=source, created_at=at(hours),
        )

    def click(self, subject: Subject, exposure: Exposure, n: int, hours: float,
              **context) -> Event:
        pk = self.items[n].pk
        position = exposure.items.index(pk) + 1 if pk in exposure.items else 1
        context = {"impression": str(exposure.id), "placement": exposure.placement,
                   "position": position, **context}
        return Event.objects.create(subject=subject, item=self.items[n], event_type="click",
                                    context=context, timestamp=at(hours))

    def cart(self, subject: Subject, n: int, hours: float) -> Event:
        return Event.objects.create(subject=subject, item=self.items[n],
                                    event_type="add_to_cart", timestamp=at(hours))

    def buy(self, subject: Subject, n: int, hours: float, value: float | None = 10.0) -> Event:
        return Event.objects.create(subject=subject, item=self.items[n], event_type="purchase",
                                    value=value, timestamp=at(hours))

    def view(self, subject: Subject, n: int, hours: float) -> Event:
        return Event.objects.create(subject=subject, item=self.items[n], event_type="view",
                                    timestamp=at(hours))

    def experiment(self, *keys: str, status: str = "running", holdout: str | None = None,
                   **fields) -> Experiment:
        experiment = Experiment.objects.create(name=f"exp-{next(_counter)}", placement="home",
                                               status=status, **fields)
        for n, key in enumerate(keys):
            kind = Variant.Kind.HOLDOUT if key == holdout else Variant.Kind.STRATEGY
            Variant.objects.create(experiment=experiment, key=key, kind=kind,
                                   strategy="" if kind == Variant.Kind.HOLDOUT else key,
                                   is_control=n == 0)
        return experiment

    @staticmethod
    def assign(subject: Subject, variant: Variant, hours: float = 0) -> Assignment:
        assignment = Assignment.objects.create(experiment=variant.experiment, subject=subject,
                                               variant=variant)
        Assignment.objects.filter(pk=assignment.pk).update(assigned_at=at(hours))
        assignment.refresh_from_db()
        return assignment


def cells(**filters) -> dict[tuple, dict]:
    """The DailyRollup rows, by (day, placement, strategy, variant)."""
    fields = ("impressions", "subjects", "clicks", "add_to_carts", "conversions", "revenue",
              "items_shown")
    return {
        (r.day.isoformat(), r.placement, r.strategy, r.variant):
            {f: getattr(r, f) for f in fields}
        for r in DailyRollup.objects.filter(**filters)
    }


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def shop(db) -> Shop:
    return Shop()
