"""static/personalize/consent.js: the banner's progressive enhancement, run in Node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent.parent / "personalize" / "static" / "personalize" / "consent.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run the script")


@pytest.fixture(scope="module")
def result():
    completed = subprocess.run(
        [NODE, str(HERE / "consent_js_harness.js"), str(SCRIPT)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return json.loads(completed.stdout)


def test_sends_the_form_with_fetch(result):
    ok = result["ok"]
    assert ok["prevented"] is True
    [call] = ok["fetchCalls"]
    assert call["url"] == "/personalize/consent/"
    assert call["method"] == "POST"
    assert call["credentials"] == "same-origin"
    assert call["headers"] == {"Accept": "application/json", "X-CSRFToken": "tok"}
    assert ["granted", "1"] in call["body"], "the clicked button's value is sent"


def test_updates_the_flag_removes_the_banner_and_announces(result):
    ok = result["ok"]
    assert ok["dataset"] == {"personalizeConsent": "granted",
                             "personalizeConsentAdMeasurement": "denied"}
    assert ok["removed"] is True
    assert [e["type"] for e in ok["events"]] == ["personalize:consent"]
    assert ok["events"][0]["detail"]["purposes"]["personalization"]["granted"] is True
    assert ok["submitted"] == 0


@pytest.mark.parametrize("case", ["failing", "serverError"])
def test_falls_back_to_the_plain_form(result, case):
    env = result[case]
    assert env["submitted"] == 1
    assert env["removed"] is False
    assert env["dataset"] == {"personalizeConsent": "denied"}
    assert env["events"] == []


def test_fallback_keeps_the_clicked_button(result):
    assert result["failing"]["appended"] == [{"name": "granted", "value": "0"}]


def test_other_forms_are_left_alone(result):
    other = result["other"]
    assert other["prevented"] is False
    assert other["fetchCalls"] == []
