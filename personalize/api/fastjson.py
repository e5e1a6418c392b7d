"""An opt-in JSON renderer backed by orjson (``pip install django-personalize[orjson]``).

Name it in the settings to render the personalize endpoints with it::

    PERSONALIZE = {"API_RENDERER_CLASSES": ["personalize.api.fastjson.FastJSONRenderer"]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer

#: U+2028 and U+2029 in UTF-8: DRF escapes them so that the output is also JavaScript.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class FastJSONRenderer(JSONRenderer):
    """``JSONRenderer`` with orjson for compact UTF-8 output.

    Falls back to DRF's own rendering for what orjson would write differently:
    indented output (``; indent=`` in the Accept header), ``UNICODE_JSON`` or
    ``COMPACT_JSON`` turned off, ``STRICT_JSON`` off (DRF writes ``NaN``), and
    any value orjson cannot encode (an integer beyond 64 bits, or a type DRF's
    encoder rejects too, which then raises as before). Other types orjson
    does not know (``Decimal``, lazy translations, NumPy values, datetimes)
    are encoded by DRF's encoder. One difference remains: a NaN or infinite
    float becomes ``null``, where DRF's strict encoder raises.
    """

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if data is None:
            return b""
        if (self.ensure_ascii or not self.compact or not self.strict
                or self.get_indent(accepted_media_type or "", renderer_context or {}) is not None):
            return super().render(data, accepted_media_type, renderer_context)
        options = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                   | orjson.OPT_NON_STR_KEYS)
        try:
            rendered = orjson.dumps(data, default=self.encoder_class().default, option=options)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _LINE_SEPARATORS:
            if raw in rendered:
                rendered = rendered.replace(raw, escaped)
        return rendered
