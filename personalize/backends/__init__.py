"""The one place where databases or caches differ.

Everything else in the SDK talks to the database through the ORM and to the
cache through :mod:`django.core.cache`. What really differs lives here, each
with a portable default that every test pass exercises and a fast path chosen
by capability:

* :mod:`personalize.backends.database`: bulk event inserts and the snapshot
  reader, through the ORM; :mod:`personalize.backends.postgresql`: the same
  on PostgreSQL, as one ``INSERT ... ON CONFLICT ... RETURNING`` statement and
  (with psycopg 3) a binary reader that packs each page of events into one value.
* :mod:`personalize.backends.cache`: cache reads that treat a failure as a
  miss, batched writes (one pipeline on django-redis) and key listing where the
  backend can list keys.
"""
