"""Compare configured strategies offline: ``manage.py personalize_evaluate``.

A thin caller of :func:`personalize.evaluation.runner.evaluate`; see
docs/evaluation.md.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from personalize.conf import personalize_settings
from personalize.dataset import Dataset
from personalize.dataset.files import READERS
from personalize.evaluation.report import FORMATS, render
from personalize.evaluation.runner import evaluate
from personalize.evaluation.splits import PROTOCOLS
from personalize.evaluation.uncertainty import DEFAULT_RESAMPLES
from personalize.management.progress import ProgressFile
from personalize.strategies.base import Strategy
from personalize.strategies.registry import StrategyConfigError, get_strategy, strategy_names
from personalize.training.snapshot import database_snapshot


def file_formats() -> tuple[str, ...]:
    """The formats ``--from-file`` accepts."""
    return tuple(READERS)


def _resolve_path(raw: str, option: str = "--from-file") -> Path:
    """The path as given, else relative to ``PERSONALIZE["DATA_DIR"]``."""
    path = Path(raw).expanduser()
    if path.exists():
        return path
    data_dir = personalize_settings.DATA_DIR
    if data_dir and not path.is_absolute() and (Path(data_dir) / path).exists():
        return Path(data_dir) / path
    where = f" (nor under DATA_DIR {data_dir})" if data_dir and not path.is_absolute() else ""
    raise CommandError(f"{option}: no such file or folder {raw!r}{where}.")


def load_file(spec: str, items: str | None = None) -> Dataset:
    """A dataset from ``FORMAT:PATH`` (and an items file), with a CommandError per mistake."""
    fmt, sep, raw_path = spec.partition(":")
    if not sep or not fmt or not raw_path:
        raise CommandError(
            f"--from-file takes FORMAT:PATH, got {spec!r} "
            "(for example ml100k:../shared/data/movielens-100k/u.data)."
        )
    formats = file_formats()
    if fmt not in formats:
        raise CommandError(
            f"--from-file: unknown format {fmt!r}; choose one of {', '.join(formats)}."
        )
    if items is not None and fmt != "csv":
        raise CommandError(f"--items goes with --from-file csv:PATH, not {fmt} "
                           "(that format reads its own item files).")
    path = _resolve_path(raw_path)
    options: dict[str, Any] = {"items": _resolve_path(items, "--items")} if items else {}
    try:
        return Dataset.from_file(fmt, path, **options)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--from-file: cannot read {str(path)!r} as {fmt}: {exc}") from exc


class Command(BaseCommand):
    help = (
        "Compare configured strategies offline: split the site's events (or a file), "
        "fit each strategy, rank every unseen item for each held-out subject, and report "
        "precision/recall/NDCG/MAP/hit rate/MRR@k, coverage, diversity, novelty, "
        "RMSE/MAE for rating models, and fit time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--strategies", nargs="+", metavar="NAME",
                            help="Strategy names to compare (default: every configured one).")
        parser.add_argument("--from-file", metavar="FORMAT:PATH",
                            help=f"Read interactions from a file instead of the database; "
                                 f"FORMAT is one of {', '.join(file_formats())}.")
        parser.add_argument("--items", metavar="FILE",
                            help="With --from-file csv:PATH: an items CSV (id,title,text,"
                                 "categories; categories separated by |) for content strategies.")
        parser.add_argument("--protocol", choices=PROTOCOLS, default=None,
                            help="stratified (default), temporal, leave-last-n or kfold.")
        parser.add_argument("--ratio", type=float, default=0.75,
                            help="Train share for stratified and temporal (default 0.75).")
        parser.add_argument("--n", type=int, default=1,
                            help="Items held out per subject for leave-last-n (default 1).")
        parser.add_argument("--k", type=int, default=10,
                            help="List length and cut-off (default 10).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument("--folds", type=int, default=None,
                            help="Folds for kfold (default 5); implies --protocol kfold.")
        parser.add_argument("--max-subjects", type=int, default=None,
                            help="Evaluate at most this many randomly chosen subjects.")
        parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                            help=f"Bootstrap resamples for the 95%% intervals (default "
                                 f"{DEFAULT_RESAMPLES}; 0 for none).")
        parser.add_argument("--no-fallback", action="store_true",
                            help="Score a subject the strategy cannot answer as an empty list "
                                 "instead of serving it the popular fallback.")
        parser.add_argument("--drop-cold", action="store_true",
                            help="temporal and leave-last-n: drop subjects with no training "
                                 "history instead of evaluating them.")
        parser.add_argument("--format", choices=FORMATS, default="table", dest="fmt",
                            help="table (default) or json.")
        parser.add_argument("--output", metavar="FILE",
                            help="Write the report here instead of stdout.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def _protocol(self, options: dict[str, Any]) -> tuple[str, int]:
        protocol, folds = options["protocol"], options["folds"]
        if folds is not None and protocol not in (None, "kfold"):
            raise CommandError(f"--folds applies to --protocol kfold, not {protocol}.")
        if protocol is None:
            protocol = "kfold" if folds is not None else "stratified"
        return protocol, 5 if folds is None else folds

    def _strategies(self, names: list[str] | None) -> dict[str, Strategy]:
        try:
            configured = strategy_names()
            chosen = names or configured
            unknown = [name for name in chosen if name not in configured]
            if unknown:
                raise CommandError(
                    f"Unknown strategy {unknown[0]!r}; "
                    f"configured: {', '.join(configured) or '(none)'}."
                )
            if not chosen:
                raise CommandError("No strategy is configured (PERSONALIZE['STRATEGIES']).")
            return {name: get_strategy(name) for name in dict.fromkeys(chosen)}
        except StrategyConfigError as exc:
            raise CommandError(f"{exc} {exc.hint}".strip()) from exc

    def handle(self, *args: Any, **options: Any) -> None:
        protocol, folds = self._protocol(options)
        for name in ("k", "n", "max_subjects"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["resamples"] < 0:
            raise CommandError("--resamples must be 0 (no intervals) or more.")
        if options["items"] and not options["from_file"]:
            raise CommandError("--items goes with --from-file csv:PATH.")
        strategies = self._strategies(options["strategies"])
        from_file = options["from_file"]
        dataset = load_file(from_file, options["items"]) if from_file else database_snapshot()
        if dataset.interactions.nnz == 0:
            raise CommandError("The dataset has no interactions to evaluate on.")
        quiet = options["no_progress"] or options["verbosity"] == 0
        progress = (None if quiet else
                    functools.partial(tqdm, file=ProgressFile(self.stderr), leave=False))
        try:
            report = evaluate(
                strategies, dataset, protocol, k=options["k"], seed=options["seed"],
                ratio=options["ratio"], n=options["n"], folds=folds,
                max_subjects=options["max_subjects"], progress=progress,
                keep_cold=not options["drop_cold"],
                fallback=None if options["no_fallback"] else "popular",
                resamples=options["resamples"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        text = render(report, options["fmt"])
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"Report written to {options['output']}.")
        else:
            self.stdout.write(text, ending="")
        failed = [entry["strategy"] for entry in report["results"] if entry.get("failed")]
        if failed:
            # every result is printed first; the exit status still tells a script
            raise CommandError(f"{len(failed)} strategy evaluation(s) failed: "
                               f"{', '.join(failed)} (the error is in the report, the "
                               "traceback in the log).")
