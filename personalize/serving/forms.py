"""Forms for the placement admin: strategy choices, validated filters, the preview query."""

from __future__ import annotations

import difflib
import logging
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from personalize.models import Placement, Subject
from personalize.serving import cache as block_cache
from personalize.serving.catalog import CatalogIndex, catalog_index
from personalize.serving.filters import FILTER_KEYS, FilterConfig, FilterError, parse_filters
from personalize.strategies.registry import StrategyConfigError, configured_strategy_specs

logger = logging.getLogger(__name__)


def strategy_choices(current: str = "") -> list[tuple[str, str]]:
    """The configured strategies as form choices, "(default)" first.

    A stored name that is no longer configured stays selectable (marked), so
    opening an old placement does not silently change it.
    """
    try:
        names = list(configured_strategy_specs())
    except StrategyConfigError:  # reported by the personalize.E002 system check
        logger.warning("Strategies are misconfigured; the admin lists none", exc_info=True)
        names = []
    choices: list[tuple[str, str]] = [("", str(_("(default)")))]
    choices += [(name, name) for name in names]
    if current and current not in names:
        choices.append((current, f"{current} ({_('not configured')})"))
    return choices


class PlacementForm(forms.ModelForm):
    """The placement form: strategies chosen from the installed ones, filters checked."""

    strategy: forms.ChoiceField = forms.ChoiceField(required=False, label=_("strategy"))
    fallback: forms.ChoiceField = forms.ChoiceField(required=False, label=_("fallback strategy"))

    class Meta:
        model = Placement
        fields = ["name", "heading", "enabled", "strategy", "fallback", "limit", "diversity",
                  "filters", "cache_ttl"]
        help_texts = {
            "filters": _(
                "A JSON object with any of: %(keys)s. See docs/serving.md."
            ) % {"keys": ", ".join(sorted(FILTER_KEYS))},
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built here, not at import: plugins and settings may change which exist.
        instance = self.instance
        choice_fields: Any = self.fields
        choice_fields["strategy"].choices = strategy_choices(instance.strategy or "")
        self.fields["strategy"].help_text = _(
            "Empty uses PERSONALIZE['DEFAULT_STRATEGY'].")
        choice_fields["fallback"].choices = strategy_choices(instance.fallback or "")
        self.fields["fallback"].help_text = _(
            "Fills the block before popular items; empty uses PERSONALIZE['FALLBACK_STRATEGY'].")
        # a placement a template tag created has none: the translated default heading shows
        self.fields["heading"].required = False
        self.fields["heading"].help_text = _("Empty uses PERSONALIZE['DEFAULT_HEADING'].")

    def clean_filters(self) -> Any:
        value = self.cleaned_data.get("filters")
        try:
            parsed = parse_filters(value)
        except FilterError as exc:
            raise forms.ValidationError(str(exc), code="invalid_filter") from exc
        problems = unknown_references(parsed, current_index())
        if problems:
            raise forms.ValidationError(problems)
        return value or {}


def current_index() -> CatalogIndex:
    """The catalog as serving sees it now (this process's index, rebuilt if out of date)."""
    return catalog_index(block_cache.global_generation(
        block_cache.read([block_cache.GLOBAL_GEN_KEY])))


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_references(filters: FilterConfig, index: CatalogIndex) -> list[forms.ValidationError]:
    """Errors for pinned items and categories that nothing in the catalog matches.

    A pinned item that does not exist would silently never show, and a
    misspelt category would empty (``include_categories``) or not filter
    (``exclude_categories``) the block. Blocked items may name items that do
    not exist yet.
    """
    errors = []
    for external_id in dict.fromkeys(filters.pinned):
        if external_id not in index.external_ids:
            errors.append(forms.ValidationError(
                _("pinned: no catalog item has the external id %(id)s%(hint)s."),
                code="unknown_item",
                params={"id": repr(external_id), "hint": _suggest(external_id, index.external_ids)},
            ))
    categories = set(index.category_names)
    for key in ("include_categories", "exclude_categories"):
        for name in dict.fromkeys(getattr(filters, key)):
            if name not in categories:
                errors.append(forms.ValidationError(
                    _("%(key)s: no catalog item is in the category %(name)s%(hint)s."),
                    code="unknown_category",
                    params={"key": key, "name": repr(name), "hint": _suggest(name, categories)},
                ))
    return errors


def find_subject(query: str) -> Subject | None:
    """A subject by its key, its user's username or e-mail, or its user id."""
    query = query.strip()
    if not query:
        return None
    subject = Subject.objects.filter(key=query).first()
    if subject is not None:
        return subject
    user_model = get_user_model()
    lookups: list[dict[str, Any]] = [{user_model.USERNAME_FIELD: query}]
    if "@" in query and hasattr(user_model, "email"):
        lookups.append({"email__iexact": query})
    if query.isdigit():
        lookups.append({"pk": int(query)})
    for lookup in lookups:
        user = user_model._default_manager.filter(**lookup).first()
        if user is not None:
            return Subject.objects.filter(user_id=user.pk).first()
    return None


class PreviewForm(forms.Form):
    """What the "preview as subject" page asks for."""

    subject = forms.CharField(
        required=False, label=_("subject"),
        help_text=_("A subject key, a username, an e-mail address or a user id. "
                    "Empty previews an anonymous visitor."),
    )
    item = forms.CharField(required=False, label=_("page item"),
                           help_text=_("External id of the product page's item, if any."))
    limit = forms.IntegerField(required=False, min_value=1, max_value=100, label=_("limit"))

    def clean_subject(self) -> Subject | None:
        query = self.cleaned_data.get("subject") or ""
        if not query.strip():
            return None
        subject = find_subject(query)
        if subject is None:
            raise forms.ValidationError(_("No subject matches %(query)s."),
                                        params={"query": query})
        return subject
