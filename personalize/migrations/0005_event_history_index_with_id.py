"""Replace Event's (subject, -timestamp) index with (subject, -timestamp, -id).

Serving reads a subject's latest events ordered by time and then id (a
deterministic order for events of the same microsecond). With the id in the
index, both SQLite and PostgreSQL read them in index order; before, each query
sorted the rows once more (SQLite: a temporary B-tree per query, about half the
query's cost on a short history). The new index is built before the old one is
dropped, so that a subject's history always has an index to read.

On a large PostgreSQL events table, building the index holds off inserts for
its duration; see docs/operations.md for building it concurrently first.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("personalize", "0004_drop_event_type_time_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["subject", "-timestamp", "-id"], name="personalize_ev_subj_ts_id"
            ),
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="personalize_ev_subj_ts",
        ),
    ]
