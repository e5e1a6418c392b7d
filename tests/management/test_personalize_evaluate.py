"""manage.py personalize_evaluate: formats, options and the errors a user can make."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from personalize.models import Event, Item, Subject

STRATEGIES = {
    "fake_pop": "tests.evaluation.factories.FakePopular",
    "fake_short": "tests.evaluation.factories.FakeHistoryOnly",
    "fake_rating": "tests.evaluation.factories.FakeRating",
}
configured = override_settings(PERSONALIZE={
    **settings.PERSONALIZE, "STRATEGIES": STRATEGIES, "LOAD_ENTRY_POINTS": False,
})


@pytest.fixture
def csv_file(tmp_path):
    """40 users x 12 items of ratings with timestamps, in the generic CSV format."""
    lines = ["user,item,event_type,value,timestamp"]
    for user in range(40):
        for item in range(12):
            if (user * 7 + item * 3) % 5 < 3:
                stamp = 1_600_000_000 + user * 100 + item
                lines.append(f"u{user},i{item},rating,{1 + (user + item) % 5},{stamp}")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    call_command("personalize_evaluate", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@configured
def test_table_of_every_configured_strategy(csv_file):
    out, _ = run("--from-file", f"csv:{csv_file}", "--k", "5", "--no-progress")
    assert out.startswith("protocol: stratified   k: 5   seed: 42\n")
    rows = [line.split()[0] for line in out.splitlines()[4:] if line and not line.startswith("-")]
    assert rows[:3] == ["fake_pop", "fake_short", "fake_rating"]
    assert "ndcg@5" in out and "rmse" in out


@configured
def test_json_with_chosen_strategies_and_protocol(csv_file):
    out, _ = run("--from-file", f"csv:{csv_file}", "--strategies", "fake_rating", "fake_pop",
                 "--protocol", "leave-last-n", "--n", "2", "--k", "3", "--seed", "9",
                 "--format", "json", "--no-progress")
    report = json.loads(out)
    assert list(report)[:3] == ["protocol", "k", "seed"]
    assert (report["protocol"], report["k"], report["seed"]) == ("leave-last-n", 3, 9)
    assert [r["strategy"] for r in report["results"]] == ["fake_rating", "fake_pop"]
    assert report["results"][0]["rmse"] is not None
    assert report["results"][1]["rmse"] is None
    assert 0 <= report["results"][1]["ndcg@3"] <= 1


@configured
def test_folds_mean_kfold_and_output_file(csv_file, tmp_path):
    target = tmp_path / "report.json"
    out, err = run("--from-file", f"csv:{csv_file}", "--folds", "3", "--format", "json",
                   "--output", str(target), "--no-progress")
    assert out == ""
    assert f"Report written to {target}" in err
    report = json.loads(target.read_text())
    assert report["protocol"] == "kfold"
    assert report["results"][0]["folds"] == 3


@configured
def test_progress_bar_goes_to_stderr(csv_file):
    out, err = run("--from-file", f"csv:{csv_file}", "--strategies", "fake_pop")
    assert "fake_pop" in err and "subject" in err
    assert "fake_pop" in out


@configured
def test_temporal_protocol(csv_file):
    out, _ = run("--from-file", f"csv:{csv_file}", "--protocol", "temporal", "--ratio", "0.5",
                 "--format", "json", "--no-progress", "--strategies", "fake_pop")
    assert json.loads(out)["protocol"] == "temporal"


@configured
def test_data_dir_relative_path(data_dir):
    out, _ = run("--from-file", "ml100k:movielens-100k/u.data", "--strategies", "fake_pop",
                 "--max-subjects", "50", "--format", "json", "--no-progress")
    assert json.loads(out)["results"][0]["subjects"] == 50


@configured
@pytest.mark.django_db
def test_site_events_from_the_database():
    items = [Item.objects.create(external_id=f"sku-{n}", title=f"Item {n}") for n in range(8)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = []
    for n in range(12):
        subject = Subject.objects.create()
        for m, item in enumerate(items):
            if (n + m) % 3:
                events.append(Event(subject=subject, item=item, event_type="purchase",
                                    timestamp=start + timedelta(hours=n * 10 + m)))
    Event.objects.bulk_create(events)
    out, _ = run("--strategies", "fake_pop", "--format", "json", "--k", "3", "--no-progress")
    entry = json.loads(out)["results"][0]
    assert entry["subjects"] == 12
    assert entry["hit_rate@3"] is not None


@configured
@pytest.mark.django_db
def test_empty_database_is_an_error():
    with pytest.raises(CommandError, match="no interactions to evaluate on"):
        run("--no-progress")


@configured
@pytest.mark.parametrize(("args", "message"), [
    (["--strategies", "nope"],
     "Unknown strategy 'nope'; configured: fake_pop, fake_short, fake_rating."),
    (["--from-file", "parquet:x.pq"],
     "--from-file: unknown format 'parquet'; choose one of ml100k, ml-latest, ml1m, amazon, csv."),
    (["--from-file", "ml100k"], "--from-file takes FORMAT:PATH, got 'ml100k'"),
    (["--from-file", "ml100k:/no/such/u.data"],
     "--from-file: no such file or folder '/no/such/u.data'."),
    (["--protocol", "temporal", "--folds", "3"],
     "--folds applies to --protocol kfold, not temporal."),
    (["--k", "0"], "--k must be at least 1."),
    (["--resamples", "-1"], "--resamples must be 0 (no intervals) or more."),
    (["--items", "items.csv"], "--items goes with --from-file csv:PATH."),
    (["--from-file", "ml100k:/no/such/u.data", "--items", "items.csv"],
     "--items goes with --from-file csv:PATH, not ml100k"),
])
def test_user_errors(args, message):
    with pytest.raises(CommandError) as excinfo:
        run(*args, "--no-progress")
    assert str(excinfo.value).startswith(message)


@configured
def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match=r"cannot read .* as csv: .*header must name"):
        run("--from-file", f"csv:{bad}", "--no-progress")


@configured
def test_relative_missing_path_mentions_data_dir():
    message = r"no such file or folder 'nope/u.data' \(nor under DATA_DIR"
    with pytest.raises(CommandError, match=message):
        run("--from-file", "ml100k:nope/u.data", "--no-progress")


@override_settings(PERSONALIZE={
    **settings.PERSONALIZE, "LOAD_ENTRY_POINTS": False,
    "STRATEGIES": {"fake_broken": "tests.evaluation.factories.FakeBroken",
                   "fake_pop": "tests.evaluation.factories.FakePopular"},
})
def test_a_failing_strategy_is_reported_after_every_result(csv_file):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"1 strategy evaluation\(s\) failed: fake_broken"):
        call_command("personalize_evaluate", "--from-file", f"csv:{csv_file}", "--k", "5",
                     "--no-progress", stdout=out, stderr=err)
    table = out.getvalue()
    assert any(line.startswith("fake_pop ") for line in table.splitlines())
    assert "fake_broken: FAILED, OverflowError: cannot convert float infinity to integer" in table


@override_settings(PERSONALIZE={"STRATEGIES": {"broken": "no.such.Module"},
                                "LOAD_ENTRY_POINTS": False})
def test_misconfigured_strategy_is_a_command_error():
    with pytest.raises(CommandError, match=r"Strategy 'broken': cannot import 'no.such.Module'"):
        run("--no-progress")


@configured
def test_nothing_testable_is_an_error_not_an_empty_report(tmp_path):
    single = tmp_path / "single.csv"
    single.write_text("user,item,event_type,value,timestamp\n"
                      "u1,i1,purchase,,1\nu2,i2,purchase,,2\nu3,i1,purchase,,3\n")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("personalize_evaluate", "--from-file", f"csv:{single}", "--no-progress",
                     stdout=out, stderr=err)
    message = str(excinfo.value)
    assert message.startswith("Nothing to evaluate: under the stratified protocol")
    assert "all 3 subjects were dropped (3 too few items to hold one out)" in message
    assert out.getvalue() == ""


@configured
def test_cold_subjects_fallback_and_intervals_options(csv_file):
    args = ("--from-file", f"csv:{csv_file}", "--strategies", "fake_short", "--protocol",
            "leave-last-n", "--n", "7", "--format", "json", "--no-progress")
    served = json.loads(run(*args, "--resamples", "50")[0])
    assert served["fallback"] == "popular" and served["resamples"] == 50
    assert served["cold_subjects"] > 0 and not served["dropped"]
    entry = served["results"][0]
    assert entry["fallback"] == entry["cannot_recommend"] > 0
    assert list(entry["by_history"]) == ["0", "1-2", "3-5", "6-20", "21+"]
    assert entry["ci"]["ndcg@10"][0] <= entry["ndcg@10"] <= entry["ci"]["ndcg@10"][1]
    bare = json.loads(run(*args, "--no-fallback", "--drop-cold", "--resamples", "0")[0])
    assert bare["fallback"] is None and bare["cold_subjects"] == 0
    assert bare["dropped"] == {"7 items or fewer": served["cold_subjects"]}
    assert "ci" not in bare["results"][0]


@configured
def test_items_file_beside_a_csv(csv_file, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,title,text,categories\n"
                     + "".join(f"i{n},Item {n},,{'odd' if n % 2 else 'even'}\n"
                               for n in range(12)))
    out, _ = run("--from-file", f"csv:{csv_file}", "--items", str(items), "--strategies",
                 "fake_pop", "--format", "json", "--no-progress")
    assert json.loads(out)["results"][0]["diversity@10"] is not None  # categories were read
    items.write_text("id,title,text,categories\nzz,Gone,,\n")
    with pytest.raises(CommandError, match=r"cannot read .* 1 item id\(s\) are not in the "
                                           r"events \(zz\)"):
        run("--from-file", f"csv:{csv_file}", "--items", str(items), "--no-progress")
