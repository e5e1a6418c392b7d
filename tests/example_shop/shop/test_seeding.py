from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from example_shop.shop import amazon
from example_shop.shop.models import Category, Order, OrderLine, Product
from example_shop.shop.seeding import (
    DEMO_PASSWORD,
    PLACEMENTS,
    ensure_placements,
    event_id,
    split_history,
    synthetic_times,
)
from personalize.models import ConsentRecord, Event, Item, Placement, Subject

N_USERS = 12

pytestmark = pytest.mark.django_db


def seed(data_dir, *extra):
    out = StringIO()
    call_command("seed_shop", "--data-dir", str(data_dir), "--limit-users", str(N_USERS),
                 "--no-train", "--no-progress", *extra, stdout=out, stderr=StringIO())
    return out.getvalue()


def counts():
    return {
        "categories": Category.objects.count(), "products": Product.objects.count(),
        "users": get_user_model().objects.count(), "subjects": Subject.objects.count(),
        "consents": ConsentRecord.objects.count(), "items": Item.objects.count(),
        "orders": Order.objects.count(), "lines": OrderLine.objects.count(),
        "events": Event.objects.count(), "placements": Placement.objects.count(),
    }


@pytest.fixture
def histories(data_dir):
    folder = amazon.dataset_dir(data_dir)
    index = amazon.read_item_index(folder)
    all_histories = amazon.read_histories(folder)
    return {u: [index[i] for i in all_histories[u]] for u in sorted(all_histories)[:N_USERS]}


@pytest.fixture
def seeded(histories):
    """The part of each history that is seeded (the last purchase is held back)."""
    return {u: split_history(h)[0] for u, h in histories.items()}


def test_split_history_holds_back_the_last_purchase():
    assert split_history(["a", "b", "c", "d", "e"]) == (["a", "b", "c", "d"], ["e"])


def test_seed_a_slice(shop_settings, data_dir, histories, seeded):
    output = seed(data_dir)
    assert "Seeded:" in output

    n_purchases = sum(len(h) for h in seeded.values())
    bought = {asin for h in histories.values() for asin in h}
    c = counts()
    assert c["products"] == c["items"] == len(bought)
    assert c["users"] == N_USERS + 1  # + the admin
    assert c["subjects"] == N_USERS
    assert c["consents"] == N_USERS * len(("personalization", "analytics"))
    assert c["orders"] == c["lines"] == c["events"] == n_purchases
    assert c["placements"] == len(PLACEMENTS)

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")
    shopper = get_user_model().objects.get(username="user0")
    assert shopper.check_password(DEMO_PASSWORD)
    assert not shopper.is_staff

    # user0's purchases, in history order, as events and orders, less the held-back one.
    subject = Subject.objects.get(user=shopper)
    events = list(subject.events.order_by("timestamp").select_related("item"))
    assert [e.item.external_id for e in events] == seeded[0] == histories[0][:-1]
    assert {e.event_type for e in events} == {"purchase"}
    assert [e.event_id for e in events] == [
        event_id(0, pos, asin) for pos, asin in enumerate(seeded[0])
    ]
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert timezone.now() - timedelta(days=8) < stamps[-1] < timezone.now()
    orders = Order.objects.filter(user=shopper).order_by("created_at")
    assert [o.lines.get().product.asin for o in orders] == seeded[0]
    # No held-back purchase is in the history the models train on (its product is in
    # the catalog: the replay shows it).
    held = [(u, len(h) - 1, h[-1]) for u, h in histories.items()]
    assert not Event.objects.filter(event_id__in=[event_id(*h) for h in held]).exists()
    assert not Order.objects.filter(
        reference__in=[f"S-{u}-{pos}" for u, pos, _ in held]).exists()
    assert Product.objects.filter(asin=histories[0][-1]).exists()
    assert all(o.total == o.lines.get().unit_price == o.lines.get().product.price for o in orders)

    # The seeded shoppers consented to every purpose, so the banner does not ask them.
    import personalize

    states = personalize.get_consent(subject)
    assert set(states) == {"personalization", "analytics"}
    assert all(state.granted and state.is_decided for state in states.values())


def test_second_run_changes_nothing(shop_settings, data_dir):
    seed(data_dir)
    before = counts()
    timestamps = dict(Event.objects.values_list("event_id", "timestamp"))
    output = seed(data_dir)
    assert "Already seeded: nothing to change." in output
    assert "Placements created" not in output
    assert counts() == before
    assert dict(Event.objects.values_list("event_id", "timestamp")) == timestamps


def test_resumes_a_partial_seed(shop_settings, data_dir):
    seed(data_dir)
    complete = counts()
    Event.objects.filter(subject__user__username="user3").delete()
    Order.objects.filter(user__username="user5").delete()
    get_user_model().objects.filter(username="user7").delete()  # cascades subject, events, orders
    output = seed(data_dir)
    assert "Seeded:" in output
    assert counts() == complete


def test_existing_placements_are_left_alone(shop_settings, db):
    Placement.objects.create(name="home", heading="Picked for you", strategy="popular")
    created = ensure_placements(["popular", "item_knn"])
    assert created == ["product-detail-bought", "product-similar", "cart"]
    home = Placement.objects.get(name="home")
    assert (home.heading, home.strategy) == ("Picked for you", "popular")
    # Without the embeddings plugin, "Similar products" falls back to item kNN.
    assert Placement.objects.get(name="product-similar").strategy == "item_knn"
    assert Placement.objects.get(name="product-detail-bought").heading == "Customers also bought"


def test_synthetic_times_are_stable_and_increasing():
    anchor = timezone.now()
    a = synthetic_times(42, 10, anchor)
    assert a == synthetic_times(42, 10, anchor)
    assert a == sorted(a) and a[-1] <= anchor and anchor - a[-1] < timedelta(days=7)
    assert synthetic_times(43, 10, anchor) != a
    assert synthetic_times(1, 1, anchor)[0] <= anchor


def test_missing_data_is_a_clear_error(shop_settings, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No Amazon Scientific data"):
        call_command("seed_shop", "--data-dir", str(tmp_path), "--no-train", "--no-progress",
                     stdout=StringIO())


def test_every_long_step_shows_a_progress_bar(shop_settings, data_dir):
    err = StringIO()
    call_command("seed_shop", "--data-dir", str(data_dir), "--limit-users", str(N_USERS),
                 "--no-train", stdout=StringIO(), stderr=err)
    bars = err.getvalue()
    for step in ("Products", "Users", "Catalog", "Purchase histories"):
        assert f"{step}: 100%" in bars, step
