"""Forms for the experiment admin: each variant checked against what serving can serve.

The variants of an experiment are also checked together (two at least, one
control), and its placement must exist.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from personalize.conf import personalize_settings
from personalize.experiments.lifecycle import running_on
from personalize.models import Experiment, Placement, Variant
from personalize.serving.filters import FilterError, parse_filters
from personalize.serving.forms import strategy_choices
from personalize.strategies.registry import StrategyConfigError, configured_strategy_specs

#: What a "config" variant may override of its placement's configuration.
VARIANT_CONFIG_KEYS = ("strategy", "fallback", "diversity", "limit", "filters")


def _configured() -> set[str]:
    try:
        return set(configured_strategy_specs())
    except StrategyConfigError:  # reported by the personalize.E002 system check
        return set()


def config_errors(config: Any) -> list[str]:
    """Why a variant's ``config`` cannot be served (empty when it can)."""
    if not isinstance(config, dict) or not config:
        return [str(_("A configuration variant needs a JSON object with any of: %(keys)s.")
                    % {"keys": ", ".join(VARIANT_CONFIG_KEYS)})]
    errors = [str(_("%(key)s: unknown key; valid keys: %(keys)s.")
                  % {"key": key, "keys": ", ".join(VARIANT_CONFIG_KEYS)})
              for key in sorted(set(config) - set(VARIANT_CONFIG_KEYS))]
    configured = _configured()
    for key in ("strategy", "fallback"):
        if key in config and config[key] not in configured:
            errors.append(str(_("%(key)s: %(name)r is not a configured strategy.")
                              % {"key": key, "name": config[key]}))
    if "diversity" in config:
        value = config["diversity"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            errors.append(str(_("diversity: a number from 0 to 1.")))
    if "limit" in config:
        value, most = config["limit"], int(personalize_settings.MAX_LIMIT)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            errors.append(str(_("limit: a whole number from 1 to %(most)d (MAX_LIMIT).")
                              % {"most": most}))
    if "filters" in config:
        try:
            parse_filters(config["filters"])
        except FilterError as exc:
            errors.append(f"filters: {exc}")
    return errors


class VariantForm(forms.ModelForm):
    """One variant: the fields its kind needs, and nothing its kind ignores."""

    strategy: forms.ChoiceField = forms.ChoiceField(required=False, label=_("strategy"))

    class Meta:
        model = Variant
        fields = ["key", "kind", "strategy", "config", "weight", "is_control"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: Any = self.fields["strategy"]
        choices.choices = [("", "-"), *strategy_choices(self.instance.strategy or "")[1:]]
        self.fields["config"].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == Variant.Kind.STRATEGY and not data.get("strategy"):
            self.add_error("strategy", _("A strategy variant names the strategy it serves."))
        if kind == Variant.Kind.CONFIG:
            for message in config_errors(data.get("config")):
                self.add_error("config", message)
        if kind != Variant.Kind.STRATEGY:
            data["strategy"] = ""
        if kind != Variant.Kind.CONFIG:
            data["config"] = {}
        return data


class VariantFormSet(forms.BaseInlineFormSet):
    """An experiment's variants together: at least two, exactly one control, some traffic."""

    def clean(self) -> None:
        super().clean()
        kept = [form.cleaned_data for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if any(self.errors):
            return
        if len(kept) < 2:
            raise forms.ValidationError(_("An experiment compares at least two variants."))
        controls = [data for data in kept if data.get("is_control")]
        if len(controls) != 1:
            raise forms.ValidationError(
                _("Mark exactly one variant as the control (the others are compared with it)."))
        holdout = any(data.get("kind") == Variant.Kind.HOLDOUT for data in kept)
        if holdout and self.instance.primary_metric == Experiment.Metric.CTR:
            raise forms.ValidationError(_(
                "A holdout shows no block, so its click-through rate is 0 by construction: "
                "choose conversion rate or revenue per subject as the primary metric."))
        if self.instance.allocation == Experiment.Allocation.FIXED and (
            controls[0].get("weight", 0) <= 0 or sum(d.get("weight", 0) for d in kept) <= 0
        ):
            raise forms.ValidationError(_("The control needs a traffic weight above 0."))


class ExperimentForm(forms.ModelForm):
    """An experiment: its placement must exist, and only one runs per placement."""

    class Meta:
        model = Experiment
        fields = ["name", "description", "placement", "primary_metric",
                  "minimum_detectable_effect", "alpha", "power", "allocation", "bandit_floor"]

    def clean_placement(self) -> str:
        name = self.cleaned_data["placement"]
        if not Placement.objects.filter(name=name).exists():
            raise forms.ValidationError(
                _("No placement is named %(name)r. Create it in the admin, or render its "
                  "template tag once."), params={"name": name}, code="unknown_placement")
        if self.instance.status == Experiment.Status.RUNNING:
            other = running_on(name, exclude=self.instance.pk)
            if other is not None:
                raise forms.ValidationError(
                    _("%(other)r already runs on %(name)r."),
                    params={"other": other.name, "name": name}, code="placement_busy")
        return name
