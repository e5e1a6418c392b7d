"""Model versions: quality side by side, trends, and the training actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from personalize.admin.common import ReadOnlyAdmin, datetime_column
from personalize.models import ModelVersion
from personalize.training import service
from personalize.training.plots import sparkline_svg
from personalize.training.tasks import train_strategy


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    """Training history: metrics side by side, train / activate / roll back, a trend plot.

    Every action calls the training service (``personalize.training``); none
    holds logic of its own.
    """

    #: Metrics shown as columns, in order.
    METRIC_COLUMNS = ("ndcg@10", "hit_rate@10", "recall@10", "precision@10", "coverage@10")
    #: Versions per strategy in the trend plots.
    TREND_LENGTH = 30

    list_display = ["strategy", "version", "status_badge", "ndcg_10", "hit_rate_10",
                    "recall_10", "precision_10", "coverage_10", "n_events", "fit_time",
                    "total_time", "artifact_size_display", "created"]
    list_display_links = ["strategy", "version"]
    list_filter = ["strategy", "status"]
    search_fields = ["strategy", "note", "error"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields] + [
        "ndcg_trend", "metrics_table", "artifact_size_display"]
    fieldsets = [
        (None, {"fields": ["strategy", "version", "status", "note", "ndcg_trend"]}),
        (_("Quality on the holdout"), {"fields": ["metrics_table", "parameters"]}),
        (_("Data"), {"fields": ["data_start", "data_end", "n_subjects", "n_items", "n_events"]}),
        (_("Artifact and timing"), {"fields": ["artifact", "artifact_size_display",
                                               "fit_seconds", "total_seconds"]}),
        (_("History"), {"fields": ["created_at", "started_at", "finished_at", "activated_at"]}),
        (_("Error"), {"fields": ["error"], "classes": ["collapse"]}),
    ]
    actions = ["train_now", "activate", "roll_back"]
    change_list_template = "admin/personalize/modelversion/change_list.html"

    # --- columns --------------------------------------------------------------

    @staticmethod
    def _column(key: str, label: str) -> Any:
        """A list_display column showing one metric."""
        @admin.display(description=label)
        def column(self: Any, obj: ModelVersion) -> str:
            value = (obj.metrics or {}).get(key)
            return f"{value:.3f}" if isinstance(value, int | float) else "-"

        return column

    ndcg_10 = _column("ndcg@10", "NDCG@10")
    hit_rate_10 = _column("hit_rate@10", "Hit rate@10")
    recall_10 = _column("recall@10", "Recall@10")
    precision_10 = _column("precision@10", "Precision@10")
    coverage_10 = _column("coverage@10", "Coverage@10")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: ModelVersion) -> str:
        colours = {"active": "#2e7d32", "failed": "#c62828", "rejected": "#ef6c00"}
        return format_html(
            '<b style="color:{}">{}</b>', colours.get(obj.status, "inherit"),
            obj.get_status_display(),
        )

    @staticmethod
    def _seconds(field: str, label: str) -> Any:
        """A list_display column showing a duration field to the hundredth of a second."""
        @admin.display(description=label, ordering=field)
        def column(self: Any, obj: ModelVersion) -> str:
            value = getattr(obj, field)
            return "-" if value is None else f"{value:.2f} s"

        return column

    fit_time = _seconds("fit_seconds", "Fit time")
    total_time = _seconds("total_seconds", "Total time")
    created = datetime_column("created_at", _("created"))

    @admin.display(description=_("artifact size"), ordering="artifact_size")
    def artifact_size_display(self, obj: ModelVersion) -> str:
        from django.template.defaultfilters import filesizeformat

        return filesizeformat(obj.artifact_size) if obj.artifact_size else "-"

    @admin.display(description=_("ndcg@10 across versions"))
    def ndcg_trend(self, obj: ModelVersion) -> str:
        from django.utils.safestring import mark_safe


        rows = list(ModelVersion.objects.filter(strategy=obj.strategy)
                    .order_by("-version").values_list("version", "metrics")[:self.TREND_LENGTH])
        rows.reverse()
        values = [(metrics or {}).get("ndcg@10") for _, metrics in rows]
        versions = [number for number, _ in rows]
        highlight = versions.index(obj.version) if obj.version in versions else None
        svg = sparkline_svg(values, highlight=highlight, width=240, height=48,
                            label=f"ndcg@10 of {obj.strategy} v{versions[0]}-v{versions[-1]}"
                            if versions else "")
        return mark_safe(svg) if svg else "-"  # noqa: S308 - numbers only, see sparkline_svg

    @admin.display(description=_("metrics"))
    def metrics_table(self, obj: ModelVersion) -> str:
        from django.utils.html import format_html_join

        metrics = obj.metrics or {}
        if not metrics:
            return "-"
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>",
            ((key, f"{value:.4f}" if isinstance(value, float) else value)
             for key, value in metrics.items()),
        )
        return format_html("<table>{}</table>", rows)

    # --- the trend plots above the list ------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
                        ) -> Any:
        from django.utils.safestring import mark_safe


        series: dict[str, list[float | None]] = {}
        for strategy, metrics in (ModelVersion.objects.order_by("strategy", "version")
                                  .values_list("strategy", "metrics")):
            series.setdefault(strategy, []).append((metrics or {}).get("ndcg@10"))
        trends = []
        for strategy, values in series.items():
            values = values[-self.TREND_LENGTH:]
            svg = sparkline_svg(values, label=f"ndcg@10 of {strategy}")
            if svg:
                last = next((v for v in reversed(values) if v is not None), None)
                trends.append((strategy, mark_safe(svg), last))  # noqa: S308 - numbers only
        return super().changelist_view(request, {**(extra_context or {}), "ndcg_trends": trends})

    # --- actions ------------------------------------------------------------------

    def has_train_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("personalize.change_modelversion")

    @admin.action(description=_("Train now (queue a training of these strategies)"),
                  permissions=["train"])
    def train_now(self, request: HttpRequest, queryset: Any) -> None:
        from django.contrib import messages


        names = sorted(set(queryset.values_list("strategy", flat=True)))
        queued = []
        for name in names:
            try:
                train_strategy.delay(name, force=True)
            except Exception as exc:  # broker down: say so instead of a 500
                self.message_user(request, _("Could not queue %(name)s: %(error)s")
                                  % {"name": name, "error": exc}, messages.ERROR)
            else:
                queued.append(name)
        if queued:
            self.message_user(request, _("Training queued for %(names)s.")
                              % {"names": ", ".join(queued)}, messages.SUCCESS)

    @admin.action(description=_("Activate (make live, overriding the quality gate)"),
                  permissions=["train"])
    def activate(self, request: HttpRequest, queryset: Any) -> None:
        self._activate(request, queryset, rollback=False)

    @admin.action(description=_("Roll back to this version"), permissions=["train"])
    def roll_back(self, request: HttpRequest, queryset: Any) -> None:
        self._activate(request, queryset, rollback=True)

    def _activate(self, request: HttpRequest, queryset: Any, *, rollback: bool) -> None:
        from django.contrib import messages


        chosen = list(queryset.order_by("strategy", "version"))
        strategies = [v.strategy for v in chosen]
        if len(set(strategies)) != len(strategies):
            self.message_user(request, _("Choose one version per strategy."), messages.ERROR)
            return
        for version in chosen:
            live = ModelVersion.objects.filter(strategy=version.strategy,
                                               status="active").first()
            if rollback and (live is None or version.version >= live.version):
                self.message_user(
                    request, _("%(v)s is not older than the live version; use Activate.")
                    % {"v": version}, messages.ERROR)
                continue
            who = request.user.get_username()
            verb = f"Rolled back to v{version.version}" if rollback else "Activated"
            was = f" (live was v{live.version})" if live else ""
            note = f"{verb} by {who} in the admin{was}. Before: {version.note}".strip()
            try:
                service.activate_version(version, note=note)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, _("Now live: %(name)s v%(n)s.")
                                  % {"name": version.strategy, "n": version.version},
                                  messages.SUCCESS)
