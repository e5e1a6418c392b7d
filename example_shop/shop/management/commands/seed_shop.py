"""``manage.py seed_shop``: fill the demo shop from the Amazon Scientific data set.

Idempotent: a second run creates nothing and says so. After seeding it syncs the
catalog, creates the shop's placements, trains the configured strategies (so
the recommendation blocks are filled right after ``make demo``), creates and
starts the home experiment (EASE vs popular) and, with ``--replay-days N``,
replays N days of simulated visits and rolls them up
(:mod:`example_shop.shop.replay`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from example_shop.shop.experiment_seeding import ensure_experiment
from example_shop.shop.replay import VISITS_PER_DAY, ReplayError, replay
from example_shop.shop.seeding import ensure_placements, seed
from personalize.conf import personalize_settings
from personalize.experiments.lifecycle import ExperimentError


class Command(BaseCommand):
    help = "Seed the demo shop (products, users, purchase histories) and train its recommenders."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--data-dir",
            help="Folder holding amazon-scientific/ (default: PERSONALIZE['DATA_DIR']).",
        )
        parser.add_argument(
            "--limit-users", type=int, metavar="N",
            help="Seed only the first N users and the products they bought (tests, quick demos).",
        )
        parser.add_argument(
            "--no-train", action="store_true", help="Skip training the strategies."
        )
        parser.add_argument(
            "--strategy", action="append", dest="strategies", metavar="NAME",
            help="Train only this strategy (repeatable; default: every configured strategy).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")
        parser.add_argument(
            "--replay-days", type=int, default=0, metavar="N",
            help="Replay N days of simulated home-page visits into the experiment (default 0).",
        )
        parser.add_argument(
            "--replay-visits", type=int, default=VISITS_PER_DAY, metavar="N",
            help=f"Shoppers visiting each replayed day (default {VISITS_PER_DAY}).",
        )
        parser.add_argument("--replay-seed", type=int, default=0,
                            help="Seed of the replay's random draws (default 0).")
        parser.add_argument(
            "--no-experiment", action="store_true",
            help="Do not create the home experiment (the home block serves its placement's "
                 "strategy to everyone; benchmarks).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = options["data_dir"] or personalize_settings.DATA_DIR
        if not data_dir:
            raise CommandError("No data directory: pass --data-dir or set PERSONALIZE_DATA_DIR.")
        if options["limit_users"] is not None and options["limit_users"] < 1:
            raise CommandError("--limit-users must be at least 1.")
        if options["replay_days"] < 0 or options["replay_visits"] < 1:
            raise CommandError("--replay-days must be 0 or more and --replay-visits at least 1.")
        if options["no_experiment"] and options["replay_days"]:
            raise CommandError("--replay-days needs the experiment: drop --no-experiment.")
        quiet = options["no_progress"] or options["verbosity"] == 0

        def progress(total: int, description: str) -> Callable[[int], None]:
            bar = tqdm(total=total, desc=description, unit="row", disable=quiet or total == 0,
                       file=self.stderr._out, leave=True)

            def advance(n: int) -> None:
                bar.update(n)
                if bar.n >= total:
                    bar.close()

            if total == 0:
                bar.close()
            return advance

        def log(message: str) -> None:
            if options["verbosity"] >= 1:
                self.stdout.write(message)

        try:
            report = seed(
                Path(data_dir), limit_users=options["limit_users"], progress=progress, log=log
            )
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc

        if report.changed:
            self.stdout.write(self.style.SUCCESS(f"Seeded: {report}."))
        else:
            self.stdout.write(self.style.SUCCESS("Already seeded: nothing to change."))

        from personalize.strategies.registry import strategy_names

        created = ensure_placements(strategy_names())
        if created:
            self.stdout.write(f"Placements created: {', '.join(created)}.")

        self.train(options)
        if options["no_experiment"]:
            return
        try:
            seeded = ensure_experiment()
        except ExperimentError as exc:
            # the shop's own experiment on the home block is left running
            message = f"The demo experiment was not created: {exc}"
            if options["replay_days"]:
                raise CommandError(f"{message} No traffic can be replayed.") from exc
            self.stdout.write(self.style.WARNING(message))
            return
        self.stdout.write(str(seeded))
        if options["replay_days"]:
            try:
                replayed = replay(
                    Path(data_dir), seeded.experiment, options["replay_days"],
                    limit_users=options["limit_users"], visits_per_day=options["replay_visits"],
                    seed=options["replay_seed"], progress=progress,
                )
            except ReplayError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(str(replayed)))

    def train(self, options: dict[str, Any]) -> None:
        if options["no_train"]:
            return
        if "personalize_train" not in get_commands():
            self.stdout.write(self.style.WARNING(
                "personalize_train is not available; the blocks show popular items until "
                "models are trained."
            ))
            return
        # Training is idempotent too: a strategy whose data did not change is skipped.
        call_command("personalize_train", *(options["strategies"] or []),
                     verbosity=options["verbosity"],
                     stdout=self.stdout._out, stderr=self.stderr._out)
