import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from personalize.models import ConsentRecord, Event, Item, ModelVersion, Placement, Subject

pytestmark = pytest.mark.django_db


def test_subject_key_is_random_and_not_personal_data():
    user = get_user_model().objects.create_user("ada", email="ada@example.com")
    subject = Subject.objects.create(user=user)
    other = Subject.objects.create(visitor_id="v1")
    assert len(subject.key) == 32 and subject.key != other.key
    assert "ada" not in subject.key and "ada" not in str(subject)
    assert (subject.kind, other.kind) == ("user", "visitor")
    assert other.is_anonymous and not subject.is_anonymous


def test_item_save_derives_primary_category_and_content_hash():
    item = Item.objects.create(external_id="a", title="Saw", categories=["Tools", "Hand"])
    assert item.primary_category == "Tools"
    first = item.content_hash
    assert len(first) == 64
    item.text = "sharper"
    item.save(update_fields=["text"])
    item.refresh_from_db()
    assert item.content_hash != first


def test_item_hash_is_independent_of_attribute_order():
    a = Item(title="t", attributes={"x": 1, "y": 2})
    b = Item(title="t", attributes={"y": 2, "x": 1})
    assert a.compute_content_hash() == b.compute_content_hash()


def test_event_id_is_unique_so_a_retry_is_stored_once():
    subject = Subject.objects.create()
    event = Event.objects.create(subject=subject, event_type="view")
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(subject=subject, event_type="view", event_id=event.event_id)


def test_consent_records_are_append_only():
    record = ConsentRecord.objects.create(
        subject=Subject.objects.create(), purpose="personalization", granted=True,
        policy_version="1", source="banner",
    )
    record.granted = False
    with pytest.raises(ValueError, match="append-only"):
        record.save()


def test_only_one_active_version_per_strategy():
    ModelVersion.objects.create(strategy="ease", version=1, status="active")
    ModelVersion.objects.create(strategy="item_knn", version=1, status="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(strategy="ease", version=2, status="active")


def test_versions_are_unique_per_strategy():
    ModelVersion.objects.create(strategy="ease", version=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(strategy="ease", version=1)


def test_placement_defaults():
    placement = Placement.objects.create(name="home")
    assert str(placement.heading) == "Recommended for You"
    assert placement.limit == 8 and placement.filters == {} and placement.enabled
