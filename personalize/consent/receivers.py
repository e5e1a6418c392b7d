"""Deleting a user account erases the user's subject (the GDPR erasure, not a cascade).

``Subject.user`` cascades, so without this receiver deleting an account would
remove the rows but leave the cached blocks (with their "Because you viewed
..." text), the cached consent state and the loaded models' user vectors
behind, and send no ``subject_erased``. The receiver runs
:func:`~personalize.consent.rights.erase_subject` inside the deletion's
transaction, before the cascade: what the cascade then deletes is already
gone, and ``subject_erased`` goes out once the account's deletion commits.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import pre_delete

from personalize.consent.rights import erase_subjects
from personalize.models import Subject


def on_user_deleted(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    """``pre_delete`` of the user model: erase the subjects of the account."""
    if instance is None or instance.pk is None:
        return
    erase_subjects(Subject.objects.filter(user_id=instance.pk))


def connect_consent_signals() -> None:
    """Connect the account-deletion receiver (idempotent)."""
    pre_delete.connect(on_user_deleted, sender=settings.AUTH_USER_MODEL,
                       dispatch_uid="personalize.consent.user_deleted")
