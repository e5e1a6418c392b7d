"""From events to trained artifacts: dataset snapshots, artifact storage, Celery tasks."""
