"""Train strategies now: ``manage.py personalize_train [NAME ...]``.

With a Celery worker running, the trainings are queued for it; without one
(or with ``--foreground``) they run here, one after the other, with a progress
bar. Either way each strategy is trained by
:func:`personalize.training.service.train_strategy`; see docs/training.md.
A strategy that fails is reported and the others still train; the command
then exits with an error that names the failed ones.
"""

from __future__ import annotations

import traceback
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from personalize.management.progress import ProgressFile, StepBars
from personalize.strategies.progress import reporting
from personalize.strategies.registry import StrategyConfigError, strategy_names
from personalize.training import service, tasks
from personalize.training.locks import TrainingInProgress

#: Metrics printed for each version, in this order, when present.
SHOWN_METRICS = ("ndcg@10", "hit_rate@10", "recall@10", "precision@10", "coverage@10")


class Command(BaseCommand):
    help = ("Train strategies (all configured by default): queued for a Celery worker when one "
            "is running, else here in the foreground with a progress bar.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME",
                            help="Strategy names (default: every configured strategy).")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--foreground", action="store_true",
                          help="Train in this process even if a worker is running.")
        mode.add_argument("--async", dest="queue", action="store_true",
                          help="Queue the trainings for a worker without checking for one.")
        parser.add_argument("--force", action="store_true",
                            help="Train even when nothing changed since the last version.")
        parser.add_argument("--ping-timeout", type=float, default=1.0,
                            help="Seconds to wait for a worker to answer (default 1).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            configured = strategy_names()
        except StrategyConfigError as exc:
            raise CommandError(str(exc)) from exc
        names = options["names"] or configured
        unknown = [name for name in names if name not in configured]
        if unknown:
            raise CommandError(
                f"No strategy named {', '.join(map(repr, unknown))}; "
                f"configured: {', '.join(configured) or '(none)'}."
            )
        if options["queue"]:
            queue = True
        elif options["foreground"]:
            queue = False
        else:
            queue = tasks.workers_running(options["ping_timeout"])
        if queue:
            self._queue(names, options["force"])
        else:
            self._foreground(names, options["force"], options["verbosity"])

    def _queue(self, names: list[str], force: bool) -> None:
        for name in names:
            result = tasks.train_strategy.delay(name, force=force)
            self.stdout.write(f"{name}: queued (task {result.id}).")

    def _foreground(self, names: list[str], force: bool, verbosity: int) -> None:
        failed: list[str] = []
        bar = tqdm(total=len(names) * len(service.STAGES), unit="step",
                   file=ProgressFile(self.stderr), disable=verbosity == 0, dynamic_ncols=True)
        try:
            for name in names:
                bar.set_description(name)
                started = timezone.now()
                done: list[str] = []

                def step(stage: str, done: list[str] = done) -> None:
                    done.append(stage)
                    bar.update(1)

                # long steps inside fit (encoding a catalog) get a bar of their own
                steps = StepBars(self.stderr, f"{name}: ", disable=verbosity == 0)
                try:
                    with reporting(steps.report):
                        version = service.train_strategy(name, force=force, progress=step)
                except TrainingInProgress:
                    bar.update(len(service.STAGES) - len(done))
                    bar.write(f"{name}: already running elsewhere; skipped.", file=self.stdout)
                    continue
                except Exception as exc:  # one strategy's failure never stops the others
                    bar.update(len(service.STAGES) - len(done))
                    bar.write(f"{name}: FAILED ({type(exc).__name__}: {exc})", file=self.stdout)
                    if verbosity > 1:
                        bar.write(traceback.format_exc(), file=self.stdout)
                    failed.append(name)
                    continue
                finally:
                    steps.close()
                bar.update(len(service.STAGES) - len(done))
                bar.write(self._describe(version, started), file=self.stdout)
                if version.status == "failed":
                    failed.append(name)
        finally:
            bar.close()
        if failed:
            raise CommandError(
                f"Training failed for {', '.join(failed)} ({len(failed)} of {len(names)} "
                "strategies; the others are listed above). A failed version's error holds "
                "the traceback (admin: Model versions)."
            )

    def _describe(self, version: Any, started: Any) -> str:
        head = f"{version.strategy} v{version.version}"
        if version.finished_at and version.finished_at < started:
            return f"{head}: unchanged, no new events since it was trained ({version.status})."
        shown = "  ".join(f"{key} {version.metrics[key]:.4f}" for key in SHOWN_METRICS
                          if isinstance(version.metrics.get(key), int | float))
        outcome = {"active": "activated", "rejected": "not activated",
                   "failed": "FAILED"}.get(version.status, version.status)
        timing = ""
        if version.fit_seconds is not None and version.total_seconds is not None:
            timing = f" (fit {version.fit_seconds:.2f}s, total {version.total_seconds:.2f}s)"
        lines = [f"{head}: {outcome}{timing}"]
        if shown:
            lines.append(f"  {shown}")
        if version.note:
            lines.append(f"  {version.note}")
        return "\n".join(lines)
