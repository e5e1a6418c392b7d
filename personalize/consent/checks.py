"""System checks for consent settings (registered in ``personalize.checks``).

personalize.E022
    ``CONSENT_PURPOSE_TEXTS`` is not a dict of configured purposes, each a dict
    of ``label`` / ``description`` / ``withdrawal`` strings.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils.functional import Promise

from personalize.conf import personalize_settings
from personalize.consent.preferences import TEXT_KEYS

OBJ = "PERSONALIZE['CONSENT_PURPOSE_TEXTS']"
HINT = ("Use {purpose: {'label': ..., 'description': ..., 'withdrawal': ...}} for purposes "
        "in CONSENT_PURPOSES, e.g. {'newsletter': {'label': _('Newsletter')}}.")


def consent_checks() -> list[CheckMessage]:
    """personalize.E022."""
    texts = personalize_settings.CONSENT_PURPOSE_TEXTS
    if not isinstance(texts, dict):
        return [Error(f"{OBJ} is {texts!r}, not a dict.", hint=HINT, obj=OBJ,
                      id="personalize.E022")]
    purposes = personalize_settings.CONSENT_PURPOSES
    configured = set(purposes) if isinstance(purposes, list | tuple) else set()
    errors: list[CheckMessage] = []
    for purpose, entry in texts.items():
        problem = _problem(purpose, entry, configured)
        if problem:
            errors.append(Error(f"{OBJ}[{purpose!r}]{problem}", hint=HINT, obj=OBJ,
                                id="personalize.E022"))
    return errors


def _problem(purpose: Any, entry: Any, configured: set[str]) -> str:
    if purpose not in configured:
        return " names a purpose that is not in CONSENT_PURPOSES."
    if not isinstance(entry, dict):
        return f" is {entry!r}, not a dict."
    unknown = sorted(str(key) for key in entry if key not in TEXT_KEYS)
    if unknown:
        return f" has unknown key {unknown[0]!r}; valid keys: {', '.join(TEXT_KEYS)}."
    for key, value in entry.items():
        if not isinstance(value, str | Promise):  # a lazy translation is a Promise
            return f"[{key!r}] is {value!r}, not a string."
    return ""
