"""Every validation error of an event, and what passes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from personalize.tracking.validation import CleanEvent, EventValidator, Problem, parse_timestamp

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def clean(raw, **kwargs):
    return EventValidator(NOW, **kwargs).clean(raw)


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ("view", "event", "must be a JSON object"),
        ([], "event", "must be a JSON object"),
        ({"type": "view", "item": "a", "colour": "red"}, "colour", "unknown field"),
        ({"event_type": "view", "item": "a"}, "event_type", "use 'type'"),
        ({"item": "a"}, "type", "required"),
        ({"type": "", "item": "a"}, "type", "required"),
        ({"type": 3, "item": "a"}, "type", "required"),
        ({"type": "teleport", "item": "a"}, "type", "unknown event type 'teleport'"),
        ({"type": "view"}, "item", "required for 'view' events"),
        ({"type": "view", "item": ""}, "item", "1 to 255"),
        ({"type": "view", "item": "x" * 256}, "item", "1 to 255"),
        ({"type": "view", "item": "a\x00b"}, "item", "valid characters"),
        ({"type": "view", "item": "\ud800"}, "item", "valid characters"),
        ({"type": "view", "item": 1.5}, "item", "string or integer"),
        ({"type": "view", "item": True}, "item", "string or integer"),
        ({"type": "view", "item": ["a"]}, "item", "string or integer"),
        ({"type": "view", "item": "a", "value": "5"}, "value", "finite number"),
        ({"type": "view", "item": "a", "value": True}, "value", "finite number"),
        ({"type": "view", "item": "a", "value": 10**400}, "value", "finite number"),
        ({"type": "view", "item": "a", "value": float("inf")}, "value", "finite number"),
        ({"type": "view", "item": "a", "value": 2e9}, "value", "between"),
        ({"type": "rating", "item": "a"}, "value", "required for ratings"),
        ({"type": "rating", "item": "a", "value": 0.4}, "value", "between 0.5 and 5"),
        ({"type": "rating", "item": "a", "value": 5.01}, "value", "between 0.5 and 5"),
        ({"type": "dwell", "item": "a"}, "value", "required: seconds"),
        ({"type": "dwell", "item": "a", "value": -1}, "value", "between 0 and 3600"),
        ({"type": "dwell", "item": "a", "value": 3601}, "value", "between 0 and 3600"),
        ({"type": "view", "item": "a", "timestamp": "yesterday"}, "timestamp", "ISO 8601"),
        ({"type": "view", "item": "a", "timestamp": "9" * 100}, "timestamp", "ISO 8601"),
        ({"type": "view", "item": "a", "timestamp": [2025]}, "timestamp", "Unix seconds"),
        ({"type": "view", "item": "a", "timestamp": 1e300}, "timestamp", "out of range"),
        ({"type": "view", "item": "a", "timestamp": -5}, "timestamp", "before 1970"),
        ({"type": "view", "item": "a", "timestamp": "2025-06-01T12:06:00Z"}, "timestamp",
         "more than 300 seconds in the future"),
        ({"type": "view", "item": "a", "context": "home"}, "context", "JSON object"),
        ({"type": "view", "item": "a", "context": {"a": {"b": 1}}}, "context", "flat object"),
        ({"type": "view", "item": "a", "context": {"a": [1]}}, "context", "flat object"),
        ({"type": "view", "item": "a", "context": {"k" * 65: 1}}, "context", "at most 64"),
        ({"type": "view", "item": "a", "context": {"a": "x" * 3000}}, "context", "2048 bytes"),
        ({"type": "view", "item": "a", "context": {"a": "\ud800"}}, "context",
         "invalid character"),
        ({"type": "view", "item": "a", "context": {"a": float("nan")}}, "context",
         "non-finite"),
        ({"type": "view", "item": "a", "context": {"a": "x\x00"}}, "context", "NUL"),
        ({"type": "view", "item": "a", "event_id": "not-a-uuid"}, "event_id", "UUID"),
        ({"type": "view", "item": "a", "event_id": 12}, "event_id", "UUID"),
        ({"type": "view", "item": "a", "subject": "abc"}, "subject", "server-to-server"),
    ],
)
def test_each_validation_error_names_field_and_reason(raw, field, reason):
    problem = clean(raw)
    assert isinstance(problem, Problem)
    assert problem.field == field
    assert reason in problem.reason


@pytest.mark.parametrize(
    ("subject", "reason"),
    [(True, "subject key"), (1.5, "subject key"), ("", "not a subject key"),
     ("a" * 33, "not a subject key"), ("ab-cd", "not a subject key"), ("é" * 4, "not a subject"),
     (0, "not a user id"), (-3, "not a user id"), (2**64, "not a user id")],
)
def test_server_subject_field_is_checked(subject, reason):
    problem = clean({"type": "view", "item": "a", "subject": subject}, allow_subject=True)
    assert isinstance(problem, Problem) and problem.field == "subject"
    assert reason in problem.reason


def test_valid_event_is_cleaned():
    uid = uuid.uuid4()
    event = clean({
        "event_id": str(uid), "type": "rating", "item": 42, "value": 4,
        "timestamp": "2025-06-01T11:00:00+00:00", "context": {"placement": "home", "pos": 2,
                                                             "häufig": "ja ✓", "x": None},
        "subject": "ab12", }, allow_subject=True)
    assert isinstance(event, CleanEvent)
    assert event.item_ref == "42" and event.value == 4.0 and event.event_id == str(uid)
    assert event.timestamp == datetime(2025, 6, 1, 11, tzinfo=UTC)
    assert event.subject_ref == "ab12"


def test_defaults_and_settings_are_honoured(settings):
    event = clean({"type": "search"})
    assert isinstance(event, CleanEvent)
    assert event.timestamp == NOW and event.context == {} and event.item_ref is None
    settings.PERSONALIZE = {
        **settings.PERSONALIZE, "EXTRA_EVENT_TYPES": {"stars": None, "wishlist": 3.0},
        "RATING_RANGE": (1, 10), "TIMESTAMP_SKEW_SECONDS": 3600, "MAX_CONTEXT_BYTES": 10,
    }
    assert isinstance(clean({"type": "stars", "item": "a", "value": 9}), CleanEvent)
    assert isinstance(clean({"type": "wishlist", "item": "a"}), CleanEvent)
    future = (NOW + timedelta(minutes=30)).isoformat()
    assert isinstance(clean({"type": "view", "item": "a", "timestamp": future}), CleanEvent)
    assert clean({"type": "view", "item": "a", "context": {"a": "0123456789"}}).field == "context"


def test_timestamps_parse_from_text_and_seconds():
    assert parse_timestamp("2025-01-02T03:04:05Z") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("2025-01-02T03:04:05") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_timestamp(1_700_000_000.5).microsecond == 500000


def test_item_known_satisfies_the_item_requirement():
    validator = EventValidator(NOW)
    assert isinstance(validator.clean_fields("view", None, None, None, None, None), Problem)
    assert isinstance(
        validator.clean_fields("view", None, None, None, None, None, item_known=True), CleanEvent
    )


def test_event_ids_are_compared_in_canonical_form():
    from personalize.tracking.validation import canonical_uuid

    uid = uuid.uuid4()
    forms = [str(uid), str(uid).upper(), "{" + str(uid) + "}", uid.hex, f"urn:uuid:{uid}", uid]
    assert {canonical_uuid(f) for f in forms} == {str(uid)}
    assert canonical_uuid("nope") is None and canonical_uuid(5) is None


# --- the block a click comes from: context.impression and context.position ---------


IMPRESSION = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


@pytest.mark.parametrize(
    ("context", "field", "reason"),
    [
        ({"impression": "not-a-uuid"}, "context.impression", "impression id of a block"),
        ({"impression": 42}, "context.impression", "impression id of a block"),
        ({"impression": ""}, "context.impression", "impression id of a block"),
        ({"impression": IMPRESSION, "position": 0}, "context.position", "1-based position"),
        ({"impression": IMPRESSION, "position": -3}, "context.position", "1-based position"),
        ({"impression": IMPRESSION, "position": 1.5}, "context.position", "1-based position"),
        ({"impression": IMPRESSION, "position": "2"}, "context.position", "1-based position"),
        ({"impression": IMPRESSION, "position": True}, "context.position", "1-based position"),
    ],
)
def test_a_click_names_its_block_with_an_impression_id_and_a_position(context, field, reason):
    problem = clean({"type": "click", "item": "a", "context": context})
    assert isinstance(problem, Problem)
    assert problem.field == field and reason in problem.reason


def test_impression_ids_are_stored_in_their_canonical_form():
    event = clean({"type": "click", "item": "a", "context": {
        "impression": "{" + IMPRESSION.upper() + "}", "position": 3.0, "placement": "home"}})
    assert isinstance(event, CleanEvent)
    assert event.context == {"impression": IMPRESSION, "position": 3, "placement": "home"}
    # a UUID object (from track()) is accepted too, and null means no block
    event = EventValidator(NOW).clean_fields("click", "a", None, None,
                                             {"impression": uuid.UUID(IMPRESSION)}, None)
    assert isinstance(event, CleanEvent) and event.context == {"impression": IMPRESSION}
    event = clean({"type": "click", "item": "a", "context": {"impression": None}})
    assert isinstance(event, CleanEvent) and event.context == {"impression": None}
