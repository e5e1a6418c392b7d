"""Roll up exposures and events now: ``manage.py personalize_rollup [--since DAY [--until DAY]]``.

Without arguments it does what the scheduled task does (the days whose
figures may have changed since the last run). ``--since`` rebuilds the daily
rows of a range of days (``--until``, default today, in the site's
``TIME_ZONE``) and the experiment outcomes of the subjects shown a block
since then; run it after importing old events, changing the attribution
settings or erasing many subjects. Each step shows a progress bar; a summary
line ends the run. See docs/outcomes.md.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from personalize.management.progress import ProgressFile
from personalize.outcomes.rollup import RollupInProgress, run_rollup


def _day(option: str) -> Any:
    def parse(value: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise CommandError(f"{option} {value!r} is not a day; use YYYY-MM-DD.") from exc
    return parse


class Bars:
    """One progress bar per step of the run, on the command's stderr."""

    def __init__(self, command: BaseCommand, *, disable: bool) -> None:
        self.file = ProgressFile(command.stderr)
        self.disable = disable
        self.bar: tqdm[Any] | None = None
        self.step = ""

    def report(self, step: str, done: int, total: int) -> None:
        if self.disable:
            return
        if self.bar is None or step != self.step:
            self.close()
            unit = "exposure" if step == "daily rollups" else "subject"
            self.bar = tqdm(total=total, desc=step, unit=unit, file=self.file,
                            dynamic_ncols=True)
            self.step = step
        self.bar.update(max(done - self.bar.n, 0))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None


class Command(BaseCommand):
    help = ("Roll up recommendation exposures, clicks and conversions into daily rows and "
            "experiment outcomes: what changed since the last run, or the days from --since.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", metavar="YYYY-MM-DD", type=_day("--since"),
                            help="Rebuild from this day on (in TIME_ZONE).")
        parser.add_argument("--until", metavar="YYYY-MM-DD", type=_day("--until"),
                            help="The last day to rebuild (default: today); needs --since.")

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = options["since"], options["until"]
        if until is not None and since is None:
            raise CommandError("--until needs --since: the first day to rebuild.")
        if since is not None and until is not None and until < since:
            raise CommandError(f"--until {until} is before --since {since}.")
        bars = Bars(self, disable=options["verbosity"] == 0)
        try:
            report = run_rollup(since, until, progress=bars.report)
        except RollupInProgress as exc:
            raise CommandError(f"{exc} Try again when it has finished.") from exc
        finally:
            bars.close()
        self.stdout.write(self.style.SUCCESS(str(report)))
