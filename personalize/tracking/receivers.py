"""Signal receivers of the tracking package, connected from ``AppConfig.ready``."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out

from personalize.tracking.merge import on_user_logged_in, on_user_logged_out


def connect_tracking_signals() -> None:
    """Merge the anonymous subject on login and start a fresh one on logout."""
    user_logged_in.connect(on_user_logged_in, dispatch_uid="personalize.tracking.login")
    user_logged_out.connect(on_user_logged_out, dispatch_uid="personalize.tracking.logout")
