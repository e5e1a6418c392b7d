"""Drop the (event_type, timestamp) index of Event.

The timestamp index serves every time-window query on its own (the type filter
is not selective), so this index only cost insert throughput, and PostgreSQL
combined it with the subject index when reading one subject's history.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("personalize", "0003_event_fk_indexes_covered"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="event",
            name="personalize_ev_type_ts",
        ),
    ]
