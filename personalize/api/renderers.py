"""The renderers of the personalize endpoints.

The endpoints render with DRF's defaults (``REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]``)
unless ``PERSONALIZE["API_RENDERER_CLASSES"]`` lists others, as a site would
name third-party renderers in DRF's own settings; for example the orjson
renderer this package ships (:mod:`personalize.api.fastjson`).
"""

from __future__ import annotations

from rest_framework.renderers import BaseRenderer

from personalize.conf import personalize_settings


class ConfiguredRenderers:
    """Mixin for the API views: the renderers of ``PERSONALIZE["API_RENDERER_CLASSES"]``."""

    def get_renderers(self) -> list[BaseRenderer]:
        """DRF's own renderers, unless the setting lists others."""
        classes = personalize_settings.API_RENDERER_CLASSES
        if classes is None:
            return super().get_renderers()  # type: ignore[misc]
        return [renderer() for renderer in classes]
