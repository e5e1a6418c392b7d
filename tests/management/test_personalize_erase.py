"""manage.py personalize_erase --user ID | --visitor ID | --subject KEY."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from personalize.consent.service import grant_consent, has_consent
from personalize.models import ConsentRecord, Event, Item, Subject

pytestmark = pytest.mark.django_db


def erase(*args):
    out = StringIO()
    call_command("personalize_erase", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def visitor():
    subject = Subject.objects.create(visitor_id="vid-123")
    grant_consent(subject)
    assert has_consent(subject)  # cached, so erasure has a key to delete
    item = Item.objects.create(external_id="sku-1")
    Event.objects.bulk_create([Event(subject=subject, item=item, event_type="view")
                               for _ in range(3)])
    return subject


def test_erase_by_visitor_id(visitor):
    bystander = Subject.objects.create(visitor_id="vid-other")
    out = erase("--visitor", "vid-123")
    assert re.fullmatch(
        f"Erased visitor subject {visitor.key}: 1 personalize.ConsentRecord, "
        r"3 personalize.Event, 1 personalize.Subject; [1-9]\d* cache key\(s\).\n", out)
    assert not Subject.objects.filter(pk=visitor.pk).exists()
    assert not Event.objects.exists() and not ConsentRecord.objects.exists()
    assert Subject.objects.filter(pk=bystander.pk).exists()


def test_erase_by_subject_key(visitor):
    assert erase("--subject", visitor.key).startswith(f"Erased visitor subject {visitor.key}")
    assert not Subject.objects.exists()


def test_erase_by_user_id_with_merged_history(visitor):
    user = get_user_model().objects.create_user("ada")
    subject = Subject.objects.create(user=user)
    visitor.merged_into = subject
    visitor.visitor_id = None
    visitor.save()
    out = erase("--user", str(user.pk))
    assert out.startswith(f"Erased user subject {subject.key}: ")
    assert "2 personalize.Subject" in out
    assert not Subject.objects.exists()
    assert get_user_model().objects.filter(pk=user.pk).exists()


def test_dry_run_erases_nothing(visitor):
    out = erase("--visitor", "vid-123", "--dry-run")
    assert out == (f"Would erase visitor subject {visitor.key} and 0 merged subject(s): "
                   "1 personalize.ConsentRecord, 3 personalize.Event.\n")
    assert Event.objects.count() == 3


@pytest.mark.parametrize(("args", "message"), [
    ((), "Name the subject by exactly one of --user ID, --visitor ID or --subject KEY."),
    (("--user", "1", "--visitor", "x"),
     "Name the subject by exactly one of --user ID, --visitor ID or --subject KEY "
     "(got --user, --visitor)."),
    (("--visitor", "nope"), "No subject with visitor id 'nope'."),
    (("--subject", "f" * 32), f"No subject with key '{'f' * 32}'."),
    (("--user", "999999"), "No user with id '999999'."),
    (("--user", "abc"), "No user with id 'abc'."),
])
def test_clear_errors(visitor, args, message):
    with pytest.raises(CommandError) as excinfo:
        erase(*args)
    assert str(excinfo.value) == message
    assert Event.objects.count() == 3


def test_user_without_subject_is_an_error():
    user = get_user_model().objects.create_user("nobody")
    with pytest.raises(CommandError, match=f"User '{user.pk}' has no personalization data"):
        erase("--user", str(user.pk))
