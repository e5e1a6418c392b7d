"""Serializer fields of the REST API that accept exactly what the schema says."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html


class StrictCharField(serializers.CharField):
    """A ``CharField`` that refuses numbers instead of turning them into text.

    The schema says ``string``; ``{"policy_version": 3}`` is a client bug worth a 400.
    It keeps surrounding whitespace too, so ``max_length`` counts what the client sent
    (the schema's ``maxLength``), not what is left after trimming.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")  # CharField's own "Not a valid string."
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A boolean that is JSON ``true``/``false`` in a JSON body, and required in a form too.

    DRF's ``BooleanField`` also takes ``"yes"``, ``1`` or ``"0"`` from JSON, and
    reads a boolean left out of a form as ``false`` (an unticked checkbox): a
    consent decision without ``granted`` would be read as a withdrawal. A form
    still sends its ``true`` / ``1`` / ``on`` as text.
    """

    default_empty_html = empty

    def get_value(self, dictionary: Any) -> Any:
        # per request: DRF copies the declared fields for every serializer instance
        self.from_form = html.is_html_input(dictionary)
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool) and not getattr(self, "from_form", False):
            self.fail("invalid", input=data)
        return super().to_internal_value(data)
