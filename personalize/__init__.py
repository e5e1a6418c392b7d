"""django-personalize: track, consent, train, recommend, evaluate.

The public API, one function per verb. Each name is imported lazily so that
``import personalize`` works before Django's app registry is ready (settings
modules and ``INSTALLED_APPS`` import it).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0.dev0"

#: public name -> module that defines it
_API = {
    "track": "personalize.tracking.service",
    "grant_consent": "personalize.consent.service",
    "revoke_consent": "personalize.consent.service",
    "get_consent": "personalize.consent.service",
    "erase_subject": "personalize.consent.rights",
    "export_subject": "personalize.consent.rights",
    "recommend": "personalize.serving.service",
    "similar_items": "personalize.serving.service",
    "CannotRecommend": "personalize.strategies.base",
    "Strategy": "personalize.strategies.base",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'personalize' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
