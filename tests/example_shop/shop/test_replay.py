"""The demo's experiment and its traffic replay, on a small slice of the real data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from example_shop.shop.experiment_seeding import EXPERIMENT_NAME, ensure_experiment
from example_shop.shop.replay import held_back_purchases, replay, replay_days
from example_shop.shop.seeding import event_id
from personalize.experiments.results import experiment_report
from personalize.models import Event, Experiment, Exposure, ModelVersion, Variant

N_USERS, DAYS = 500, 3

pytestmark = pytest.mark.django_db


def seed(data_dir, *extra: str, users: int = N_USERS) -> str:
    out = StringIO()
    call_command("seed_shop", "--data-dir", str(data_dir), "--limit-users", str(users),
                 "--no-progress", "--strategy", "popular", "--strategy", "ease", *extra,
                 stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_experiment_is_created_and_started_once(shop_settings, data_dir):
    first = seed(data_dir, "--no-train")
    assert f"Experiment {EXPERIMENT_NAME!r} created and started on 'home'." in first
    experiment = Experiment.objects.get()
    assert (experiment.placement, experiment.status) == ("home", Experiment.Status.RUNNING)
    assert experiment.primary_metric == Experiment.Metric.CONVERSION
    variants = {v.key: v for v in experiment.variants.all()}
    assert variants["popular"].kind == Variant.Kind.POPULAR and variants["popular"].is_control
    assert (variants["ease"].kind, variants["ease"].strategy) == (Variant.Kind.STRATEGY, "ease")
    assert variants["popular"].weight == variants["ease"].weight

    second = seed(data_dir, "--no-train")
    assert "already exists (running): left as it is." in second
    assert Experiment.objects.get().updated_at == experiment.updated_at
    assert Variant.objects.count() == 2


def test_the_replay_through_serving_tracking_and_the_rollup(shop_settings, data_dir):
    """Every shopper of a 500-shopper slice visits the home page on each of 3 days."""
    out = seed(data_dir, "--replay-days", str(DAYS), "--replay-visits", str(N_USERS))
    assert "Replayed 1,500 visits over 3 days: 1,500 exposures" in out
    experiment = Experiment.objects.get()

    # exposures on the replayed days, events carrying their impression ids and positions
    exposures = {e.pk: e for e in Exposure.objects.filter(experiment=experiment)}
    assert len(exposures) == DAYS * N_USERS
    assert {timezone.localdate(e.created_at) for e in exposures.values()} == set(
        replay_days(DAYS))
    events = list(Event.objects.exclude(source="import").select_related("item"))
    assert {"click", "add_to_cart", "purchase"} == {e.event_type for e in events}
    for event in events:
        shown = exposures[uuid.UUID(event.context["impression"])]
        assert shown.subject_id == event.subject_id
        assert shown.items[event.context["position"] - 1] == event.item_id
        assert timedelta(0) < event.timestamp - shown.created_at < timedelta(minutes=10)
        if event.event_type == "purchase":
            assert event.value == pytest.approx(float(event.item.attributes["price"]))

    # the rollup covered the replayed days: daily rows per variant, and the report has
    # both variants, EASE ahead
    from django.db.models import Sum

    from personalize.models import DailyRollup

    daily = DailyRollup.objects.filter(experiment=experiment)
    assert set(daily.values_list("day", flat=True)) == set(replay_days(DAYS))
    assert set(daily.values_list("variant", flat=True)) == {"popular", "ease"}
    assert daily.aggregate(n=Sum("impressions"))["n"] == DAYS * N_USERS
    assert "experiment report:" in out
    by_key = {v.key: v for v in experiment_report(experiment).variants}
    assert by_key["popular"].exposed > 0 and by_key["ease"].exposed > 0
    assert by_key["ease"].conversion.rate > by_key["popular"].conversion.rate
    assert by_key["ease"].ctr.rate > by_key["popular"].ctr.rate

    # a second run finds the replayed traffic and changes nothing
    counts = (Exposure.objects.count(), Event.objects.count())
    again = seed(data_dir, "--replay-days", str(DAYS), "--replay-visits", str(N_USERS),
                 "--no-train")
    assert "Traffic already replayed: nothing to change." in again
    assert (Exposure.objects.count(), Event.objects.count()) == counts


def test_held_back_purchases_are_never_in_the_training_history(shop_settings, data_dir):
    seed(data_dir, users=150)
    held = held_back_purchases(data_dir, 150)
    assert len(held) == 150 and all(len(p) == 1 for p in held.values())
    held_ids = [event_id(u, position, asin) for u, p in held.items() for position, asin in p]
    assert not Event.objects.filter(event_id__in=held_ids).exists()
    ease = ModelVersion.objects.get(strategy="ease", status="active")
    imported = Event.objects.filter(source="import").count()
    assert ease.parameters["fingerprint"]["events"] == imported  # trained on the seeded ones


def test_the_replay_is_deterministic(shop_settings, data_dir):
    seed(data_dir, users=150)  # trained once; both replays run on it

    def run() -> tuple:
        with transaction.atomic():
            report = replay(data_dir, ensure_experiment().experiment, DAYS,
                            limit_users=150, visits_per_day=50)
            found = (
                str(report),
                sorted(Event.objects.exclude(source="import").values_list("event_id", flat=True)),
                sorted(Exposure.objects.values_list("subject_id", "variant__key", "created_at")),
            )
            transaction.set_rollback(True)
        for cache in caches.all():
            cache.clear()
        return found

    first = run()
    assert "Replayed 150 visits" in first[0]
    assert first == run()


def test_another_experiment_on_the_home_block_is_left_running(shop_settings, data_dir):
    from django.core.management.base import CommandError

    from personalize.experiments.lifecycle import start

    seed(data_dir, "--no-train", users=12)
    Experiment.objects.all().delete()
    mine = Experiment.objects.create(name="Mine", placement="home")
    Variant.objects.create(experiment=mine, key="a", kind=Variant.Kind.POPULAR, is_control=True)
    Variant.objects.create(experiment=mine, key="b", strategy="ease")
    start(mine)

    out = seed(data_dir, "--no-train", users=12)
    assert "The demo experiment was not created: 'Mine' already runs on the placement" in out
    assert list(Experiment.objects.values_list("name", "status")) == [("Mine", "running")]
    with pytest.raises(CommandError, match="No traffic can be replayed"):
        seed(data_dir, "--no-train", "--replay-days", "1", users=12)


def test_a_stopped_experiment_is_not_replayed_into(shop_settings, data_dir):
    from example_shop.shop.replay import ReplayError
    from personalize.experiments.lifecycle import stop

    seed(data_dir, "--no-train", users=12)
    experiment = stop(Experiment.objects.get())
    with pytest.raises(ReplayError, match="is stopped"):
        replay(data_dir, experiment, 1, limit_users=12)
    assert not Exposure.objects.exists()


def test_no_experiment_leaves_the_home_block_alone(shop_settings, data_dir):
    from django.core.management.base import CommandError

    seed(data_dir, "--no-train", "--no-experiment", users=12)
    assert not Experiment.objects.exists()
    with pytest.raises(CommandError, match="drop --no-experiment"):
        seed(data_dir, "--no-train", "--no-experiment", "--replay-days", "1", users=12)
