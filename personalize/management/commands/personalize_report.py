"""What recommendations earn, and how the experiments stand: ``manage.py personalize_report``.

Without ``--experiment``: the placement performance table of the last
``--days`` days (default 30, ending today in the site's ``TIME_ZONE``) and one
line per experiment with its verdict. With ``--experiment ID``: that
experiment's verdict, warnings, plan and per-variant table. ``--format json``
prints the same data as JSON: the placement performance (with the
experiments' lines), or the experiment's payload exactly as
``GET /api/personalize/experiments/<id>/results/`` answers it. The figures
come from the rollups: run ``personalize_rollup`` first for the latest.
See docs/outcomes.md and docs/experiments.md.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from personalize.experiments.results import experiment_payload, experiment_report
from personalize.management.reports import experiment_text, performance_text
from personalize.models import Experiment
from personalize.outcomes.performance import DEFAULT_DAYS, MAX_DAYS, placement_performance


def _days(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        raise CommandError(f"--days {value!r} is not a number of days from 1 to {MAX_DAYS}.")
    return int(value)


def experiment_summary(experiment: Experiment) -> dict[str, Any]:
    """An experiment's line of the overview: who it is and its verdict (or why it has none)."""
    try:
        verdict = experiment_report(experiment).verdict
    except ValueError as exc:
        verdict = f"cannot be analysed yet: {exc}"
    return {"id": experiment.pk, "name": experiment.name, "placement": experiment.placement,
            "status": experiment.status, "verdict": verdict}


class Command(BaseCommand):
    help = ("Report what the recommendation blocks earned per placement and strategy, and "
            "how the experiments stand; or one experiment's results with --experiment.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--experiment", metavar="ID", type=int,
                            help="Report this experiment (its id, as in the admin's URL).")
        parser.add_argument("--days", metavar="N", type=_days, default=None,
                            help=f"The placement table's window, ending today "
                                 f"(default {DEFAULT_DAYS}).")
        parser.add_argument("--format", choices=["table", "json"], default="table",
                            help="A text table (default) or JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        as_json = options["format"] == "json"
        if options["experiment"] is not None:
            if options["days"] is not None:
                raise CommandError("--days sets the placement table's window; an experiment's "
                                   "report covers all its days. Leave out --days or "
                                   "--experiment.")
            payload = self._payload(options["experiment"])
            self.stdout.write(json.dumps(payload, indent=2, allow_nan=False) if as_json
                              else experiment_text(payload), ending="\n" if as_json else "")
            return
        performance = placement_performance(options["days"] or DEFAULT_DAYS).as_dict()
        experiments = [experiment_summary(e) for e in
                       Experiment.objects.order_by("-created_at", "-pk")]
        if as_json:
            self.stdout.write(json.dumps({**performance, "experiments": experiments}, indent=2,
                                         allow_nan=False))
        else:
            self.stdout.write(performance_text(performance, experiments), ending="")

    def _payload(self, pk: int) -> dict[str, Any]:
        experiment = Experiment.objects.filter(pk=pk).first()
        if experiment is None:
            known = ", ".join(f"{e.pk} ({e.name})" for e in Experiment.objects.order_by("pk")[:20])
            raise CommandError(f"No experiment has the id {pk}. "
                               + (f"Known: {known}." if known else "There is none yet."))
        try:
            return experiment_payload(experiment)
        except ValueError as exc:
            raise CommandError(f"{experiment.name} cannot be analysed yet: {exc} Add its "
                               "variants in the admin.") from exc
