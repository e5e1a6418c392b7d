from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PersonalizeConfig(AppConfig):
    name = "personalize"
    verbose_name = _("Personalization")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering checks and receivers is the only work done at start-up.
        from personalize import checks  # noqa: F401
        from personalize.catalog.signals import connect_catalog_signals
        from personalize.consent.receivers import connect_consent_signals
        from personalize.outcomes.receivers import connect_outcome_signals
        from personalize.serving.receivers import connect_serving_signals
        from personalize.tracking.receivers import connect_tracking_signals
        from personalize.training.receivers import connect_training_signals

        connect_catalog_signals()
        connect_consent_signals()
        connect_outcome_signals()
        connect_serving_signals()
        connect_tracking_signals()
        connect_training_signals()
