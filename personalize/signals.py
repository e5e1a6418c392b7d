"""Signals that connect the verbs without importing each other.

``event_recorded``
    Sent after events are committed to the database, with ``subject_ids``
    (set of Subject pks) and ``item_ids`` (set of Item pks) and ``count``.
    Serving invalidates the subjects' cached blocks; training counts towards
    the retrain threshold. The app's own senders also pass ``cache_writes``, a
    :class:`personalize.backends.cache.CacheBatch` on which receivers queue writes
    to the personalize cache so that they travel in one round trip after the
    last receiver; it is ``None`` when someone else sends the signal, and a
    receiver then writes directly.
``subject_erased``
    Sent after a subject's data was erased, with ``subject_id`` and ``key``.
    Serving drops cached blocks; loaded artifacts forget the subject's vector.
``items_changed``
    Sent after catalog items were created, changed or deleted, with ``item_ids``.
``model_activated``
    Sent after a ModelVersion became the live one, with ``strategy`` and ``version``.
"""

from django.dispatch import Signal

event_recorded = Signal()
subject_erased = Signal()
items_changed = Signal()
model_activated = Signal()
