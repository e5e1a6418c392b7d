"""The exposure buffer: failed writes kept and retried, bounded memory, the thread, the exit."""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.template import Context, Template
from django.test import RequestFactory

from personalize.models import Event, Exposure, Subject
from personalize.outcomes.buffer import ExposureBuffer
from personalize.outcomes.exposures import exposures, flush_exposures, log_exposure
from personalize.serving.cache import Row
from personalize.serving.served import Served
from tests.experiments.factories import grant_analytics
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model

SERVICES = os.environ.get("PERSONALIZE_TEST_SERVICES") == "1"
REPO = Path(__file__).resolve().parents[2]


class FlakyWriter:
    """Writes batches into a list; fails while ``down`` (as a database outage would)."""

    def __init__(self) -> None:
        self.down = False
        self.batches: list[list[tuple[int, int]]] = []
        self.threads: set[str] = set()

    def __call__(self, batch):
        self.threads.add(threading.current_thread().name)
        if self.down:
            raise OperationalError("connection refused")
        self.batches.append(list(batch))

    @property
    def written(self) -> list[tuple[int, int]]:
        return [row for batch in self.batches for row in batch]


def buffer_with(writer: FlakyWriter) -> ExposureBuffer:
    return ExposureBuffer(writer, subject_of=lambda row: row[0])


def personalize(settings, **values) -> None:
    settings.PERSONALIZE = {**settings.PERSONALIZE, **values}


def test_a_failed_write_keeps_its_rows_for_the_next(settings, caplog):
    writer = FlakyWriter()
    buffer = buffer_with(writer)
    writer.down = True
    with caplog.at_level(logging.WARNING, logger="personalize.outcomes.buffer"):
        assert buffer.add((1, 1))  # written during the request (interval 0): fails, kept
        assert buffer.add((1, 2))  # the retry waits a moment: queued behind it
    assert len(buffer) == 2 and writer.batches == []
    assert "Cannot write exposures (OperationalError: connection refused); 1 kept" in caplog.text
    writer.down = False
    assert buffer.flush()
    assert writer.written == [(1, 1), (1, 2)] and len(buffer) == 0  # in order, none lost


def test_memory_is_bounded_and_what_is_dropped_is_counted(settings, caplog):
    personalize(settings, EXPOSURE_BUFFER_SIZE=3, EXPOSURE_BATCH_SIZE=2)
    writer = FlakyWriter()
    writer.down = True
    buffer = buffer_with(writer)
    with caplog.at_level(logging.WARNING, logger="personalize.outcomes.buffer"):
        results = [buffer.add((1, n)) for n in range(5)]
    assert results == [True, True, True, False, False]
    assert len(buffer) == 3 and buffer.dropped == 2
    writer.down = False
    buffer.flush()
    assert writer.written == [(1, 0), (1, 1), (1, 2)]
    assert [len(batch) for batch in writer.batches] == [2, 1]
    buffer.add((1, 9))
    assert buffer.dropped == 2


def test_the_full_buffer_warning_names_the_count(settings, caplog):
    personalize(settings, EXPOSURE_BUFFER_SIZE=1, EXPOSURE_FLUSH_INTERVAL=3600)
    writer = FlakyWriter()
    buffer = buffer_with(writer)
    try:
        with caplog.at_level(logging.WARNING, logger="personalize.outcomes.buffer"):
            assert buffer.add((1, 0)) and not buffer.add((1, 1))  # the thread waits an hour
        assert ("The exposure buffer is full (1 rows, EXPOSURE_BUFFER_SIZE): 1 exposures "
                "dropped since the last warning, 1 in all") in caplog.text
    finally:
        assert buffer.close()  # what a process exit does: the queue is written
    assert writer.written == [(1, 0)]


def test_the_thread_writes_in_batches_off_the_request(settings):
    personalize(settings, EXPOSURE_FLUSH_INTERVAL=0.05, EXPOSURE_BATCH_SIZE=2)
    writer = FlakyWriter()
    buffer = buffer_with(writer)
    try:
        for n in range(5):
            buffer.add((1, n))
        deadline = time.monotonic() + 5
        while len(writer.written) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.written == [(1, n) for n in range(5)]
        assert all(len(batch) <= 2 for batch in writer.batches)
        assert writer.threads == {"personalize-exposures"}
    finally:
        buffer.close()


def test_the_thread_retries_after_an_outage(settings):
    personalize(settings, EXPOSURE_FLUSH_INTERVAL=0.05)
    writer = FlakyWriter()
    writer.down = True
    buffer = buffer_with(writer)
    try:
        buffer.add((1, 1))
        time.sleep(0.3)
        assert writer.batches == [] and len(buffer) == 1
        writer.down = False
        deadline = time.monotonic() + 10  # the retry waits (1 s, then longer)
        while not writer.written and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.written == [(1, 1)]
    finally:
        buffer.close()


def test_an_erased_subject_is_discarded_from_the_queue(settings):
    writer = FlakyWriter()
    writer.down = True
    buffer = buffer_with(writer)
    for row in [(1, 1), (2, 1), (1, 2)]:
        buffer.add(row)
    assert buffer.discard_subject(1) == 2
    writer.down = False
    buffer.flush()
    assert writer.written == [(2, 1)]


# --- a real database outage --------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


class Outage:
    """The database unreachable from this thread (PostgreSQL: connections really refused)."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.wrapper = None

    def __enter__(self) -> Outage:
        if SERVICES:  # the server at a port nothing listens on: every connect is refused
            connection.close()
            self.monkeypatch.setitem(connection.settings_dict, "PORT", closed_port())
        else:  # an in-memory SQLite database cannot go away: every query is refused
            def refuse(execute, sql, params, many, context):
                raise OperationalError("unable to open database file")

            self.wrapper = connection.execute_wrapper(refuse)
            self.wrapper.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if SERVICES:
            self.monkeypatch.undo()
            connection.close()
        else:
            self.wrapper.__exit__(*exc)


def render_home(subject: Subject) -> str:
    from django.contrib.auth.models import AnonymousUser

    from personalize.identity import STATE_ATTR, VisitorState

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    state = VisitorState(request)
    state._anon_looked_up, state._anon_subject = True, subject
    setattr(request, STATE_ATTR, state)
    return Template('{% load personalize %}{% recommended_for_you "home" limit=1 %}').render(
        Context({"request": request}))


@pytest.mark.django_db(transaction=True)
def test_a_page_renders_during_an_outage_and_its_exposure_is_written_after(
        catalog_items, active_models, monkeypatch, caplog):
    subject = Subject.objects.create(visitor_id="v")
    grant(subject)
    grant_analytics(subject)
    Event.objects.create(subject=subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b3"].pk])
    render_home(subject)  # computes and caches the block
    flush_exposures()
    assert Exposure.objects.count() == 1
    with caplog.at_level(logging.WARNING, logger="personalize.outcomes.buffer"), \
            Outage(monkeypatch):
        html = render_home(subject)  # a cache hit: the page needs no database
    assert 'data-personalize-item="b3"' in html
    impression = uuid.UUID(html.split('data-personalize-impression="')[1].split('"')[0])
    assert "Cannot write exposures" in caplog.text and len(exposures) == 1
    assert not Exposure.objects.filter(pk=impression).exists()
    assert flush_exposures()  # the database is back
    row = Exposure.objects.get(pk=impression)
    assert (row.subject, row.items) == (subject, [catalog_items["b3"].pk])


@pytest.mark.services
@pytest.mark.skipif(not SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_waits_out_a_real_outage(db, settings, monkeypatch):
    personalize(settings, EXPOSURE_FLUSH_INTERVAL=0.05)
    subject = Subject.objects.create()
    served = Served([Row(7, 1.0, "ease", True, "", None, "sku-7", "", [], {})], None, "home",
                    "ease", subject_id=subject.pk, analytics=True)
    # the thread opens its own connections: from now on they are refused
    monkeypatch.setitem(connection.settings_dict, "PORT", closed_port())
    try:
        impression = log_exposure(served, "tag")
        time.sleep(0.5)
        assert len(exposures) == 1  # tried, refused, kept
        monkeypatch.undo()  # the server is back
        written = Exposure.objects.filter(pk=impression)
        deadline = time.monotonic() + 15  # the retry waits 1 s, then longer
        while not written.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert written.exists() and len(exposures) == 0
    finally:
        monkeypatch.undo()
        exposures.close()


# --- the process exits -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_nothing_is_lost_when_the_process_exits_normally(tmp_path):
    """A process logs exposures its thread never wrote, then exits: every row is there."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.testapp.settings",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "EXIT_COUNT": "25"}
    if SERVICES:
        from tests.database import database_url

        subject = Subject.objects.create()
        grant_analytics(subject)
        env.update(DATABASE_URL=database_url(), EXIT_SUBJECT=str(subject.pk))
    else:
        env["EXIT_SQLITE"] = str(tmp_path / "exit.sqlite3")
    completed = subprocess.run([sys.executable, "-m", "tests.outcomes.exit_script"], env=env,
                               cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    logged = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(logged["impressions"]) == 25
    if SERVICES:
        stored = {str(pk) for pk in Exposure.objects.values_list("id", flat=True)}
    else:
        with sqlite3.connect(env["EXIT_SQLITE"]) as db:
            stored = {str(uuid.UUID(pk)) for (pk,) in db.execute(
                "SELECT id FROM personalize_exposure")}
    assert stored == set(logged["impressions"])
