"""Experiment statistics simulated through the real code: A/A, power, SRM, peeking, bandit.

Every simulated subject is a key of a fixed pool whose bucket comes from the
real ``personalize.experiments.buckets.bucket`` (computed once per key and
reused), assigned by the real ``choose``; the daily counts go through the real
``personalize.experiments.analysis.analyse`` and the bandit's weights through
the real ``personalize.experiments.bandit.thompson_weights``. Outcomes are
drawn per subject (click, conversion, a log-normal basket for converters).
This fast path builds each timeline from the simulated subjects directly.

The **end-to-end figure** (``--e2e-experiments``, on a temporary SQLite file or
the PostgreSQL database of ``--e2e-database``) takes the whole real path for a
few hundred smaller experiments, half A/A and half A/B: each is an
``Experiment`` with two ``Variant`` rows, started by
``personalize.experiments.lifecycle.start``; its simulated subjects are
``Subject`` rows with both consents, assigned by the real ``assign``, their
blocks logged by ``log_exposure`` (dated on the simulated day), their clicks
and purchases recorded by ``personalize.track`` with the block's impression
id; then one ``run_rollup`` and each experiment's ``experiment_report``. The
same subjects' draws go through the fast path too, and the figure is the
share of experiments whose verdicts are identical (target 100%), with the
false-positive rate and the power measured on the database path.

Figures and targets:

* A/A: the share of experiments whose report declares a winner or loser (at
  alpha 0.05), over >= 5,000 experiments: 4-6%.
* Power: CTR 3% -> 4% at the sample the report plans (the calculator's for
  80% power): detected in 75-85% of experiments.
* SRM: a 52/48 split of 20,000 subjects (weights say 50/50) is flagged, both
  exactly 10,400 / 9,600 and in >= 99% of runs assigned 52/48 by ``choose``; a
  true 50/50 is flagged in under 1% of runs.
* Peeking: looking at the report every day, the false-positive rate of the
  decision taken stays within the documented bound (6%), and no later look
  changes a verdict once given; a peeker who stops at the first daily p < 0.05
  without the horizon is shown for contrast.
* Bandit: arms at CTR 3% / 4% / 5%, weights updated every 1,000 exposures:
  the best arm's share after 50,000 exposures is >= 70% (mean over runs).

* End to end: the verdicts of the database path equal the fast path's in 100%
  of the experiments; its A/A false-positive rate and A/B power are printed.

Usage::

    .venv/bin/python benchmarks/experiment_stats.py [--experiments 5000] [--power-runs 2000]
        [--srm-runs 2000] [--peeking-runs 1000] [--bandit-runs 20] [--seed 0] [--json out.json]
        [--e2e-experiments 300] [--e2e-database postgres://postgres@127.0.0.1:5432/bench]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personalize.experiments.analysis import analyse
from personalize.experiments.bandit import thompson_weights
from personalize.experiments.buckets import bucket, choose
from personalize.experiments.report import Arm, Design, Report, Timeline
from personalize.experiments.stats import compare_rates, rate_estimate, sample_size_for_rate

ALPHA = 0.05
#: CTR 3% -> 4%: the effect the power figure detects, and the one every run plans for.
BASE_CTR, LIFTED_CTR = 0.03, 0.04
DESIGN = Design(metric="ctr", mde=LIFTED_CTR / BASE_CTR - 1, alpha=ALPHA, power=0.8)
CONVERSION = 0.01
#: Subjects arriving per day (Poisson mean) and the days an experiment runs: the planned
#: ~10,550 subjects arrive in about 15 days, so every run reaches its horizon.
PER_DAY, DAYS = 700, 30
PEEKING_BOUND = 0.06
TWO_ARMS = (Arm("a", True), Arm("b"))


class Pool:
    """Subject keys with their real buckets, computed once; experiments take slices."""

    def __init__(self, size: int, salt: str, rng: np.random.Generator) -> None:
        self.u = np.array([bucket(salt, f"subject-{n}") for n in range(size)])
        self.order = rng.permutation(size)
        self._arms: dict[tuple[float, ...], np.ndarray] = {}

    def arms(self, weights: tuple[float, ...]) -> np.ndarray:
        """Every pool subject's variant under ``weights`` (the real ``choose``), cached."""
        if weights not in self._arms:
            self._arms[weights] = np.array([choose(weights, u) for u in self.u], dtype=np.int64)
        return self._arms[weights]

    def subjects(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` distinct pool indices: a window of the shuffled pool at a random offset."""
        start = int(rng.integers(len(self.order)))
        return self.order[(start + np.arange(n)) % len(self.order)]


@dataclass
class Outcomes:
    """What each simulated subject did."""

    clicked: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray


def draw_outcomes(rng: np.random.Generator, arm: np.ndarray, ctr: np.ndarray) -> Outcomes:
    n = len(arm)
    converted = rng.random(n) < CONVERSION
    revenue = np.where(converted, rng.lognormal(3.5, 0.8, n), 0.0)
    return Outcomes(rng.random(n) < ctr[arm], converted, revenue)


def timeline(arm: np.ndarray, day: np.ndarray, outcomes: Outcomes, days: int,
             arms: tuple[Arm, ...] = TWO_ARMS) -> Timeline:
    """Per day and variant: subjects, clicked, converted, revenue and its squares."""
    k = len(arms)
    cell = day * k + arm
    columns = [np.ones(len(arm)), outcomes.clicked, outcomes.converted, outcomes.revenue,
               outcomes.revenue**2]
    counts = np.stack([np.bincount(cell, weights=c, minlength=days * k) for c in columns],
                      axis=-1)
    return Timeline(arms, counts.reshape(days, k, len(columns)))


def simulate(pool: Pool, rng: np.random.Generator, ctr: tuple[float, ...],
             weights: tuple[float, ...] = (1.0, 1.0), days: int = DAYS,
             per_day: int = PER_DAY) -> Timeline:
    """One experiment: Poisson arrivals per day, real assignment, drawn outcomes."""
    arrivals = rng.poisson(per_day, days)
    day = np.repeat(np.arange(days), arrivals)
    arm = pool.arms(weights)[pool.subjects(rng, len(day))]
    return timeline(arm, day, draw_outcomes(rng, arm, np.asarray(ctr)), days)


def decided(report: Report) -> str | None:
    """``"win"``, ``"loss"`` or ``"none"`` once the report gives a verdict, else ``None``."""
    if report.horizon_day is None:
        return None
    comparison = report.primary()[0]
    if not comparison.significant:
        return "none"
    return "win" if (comparison.comparison.lift or 0) > 0 else "loss"


def figure(name: str, value: float, target: str, met: bool, **extra: object) -> dict:
    print(f"{name:<44} {value:8.2%}   target {target:<22} {'met' if met else 'MISSED'}")
    for key, item in extra.items():
        print(f"    {key}: {item}")
    return {"name": name, "value": value, "target": target, "met": met, **extra}


def timed(label: str, fn: Callable[[], dict]) -> dict:
    start = time.perf_counter()
    result = fn()
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"    ({label}: {result['seconds']} s)")
    return result


def aa_false_positives(pool: Pool, rng: np.random.Generator, runs: int) -> dict:
    outcomes = [decided(analyse(DESIGN, simulate(pool, rng, (BASE_CTR, BASE_CTR))))
                for _ in range(runs)]
    rate = sum(o in ("win", "loss") for o in outcomes) / runs
    return figure("A/A false-positive rate", rate, "4-6%", 0.04 <= rate <= 0.06,
                  experiments=runs, without_verdict=outcomes.count(None))


def power(pool: Pool, rng: np.random.Generator, runs: int) -> dict:
    planned = []
    wins = 0
    for _ in range(runs):
        report = analyse(DESIGN, simulate(pool, rng, (BASE_CTR, LIFTED_CTR)))
        wins += decided(report) == "win"
        if report.plan is not None:
            planned.append(report.plan.planned["a"])
    rate = wins / runs
    calculated = sample_size_for_rate(BASE_CTR, DESIGN.mde, alpha=ALPHA, power=DESIGN.power)
    return figure("Power, CTR 3% -> 4%", rate, "75-85%", 0.75 <= rate <= 0.85,
                  experiments=runs, calculated_per_variant=calculated,
                  planned_per_variant_median=int(np.median(planned)))


def srm(pool: Pool, rng: np.random.Generator, runs: int) -> list[dict]:
    def flagged(weights: tuple[float, ...]) -> float:
        hits = 0
        for _ in range(runs):
            report = analyse(DESIGN, simulate(pool, rng, (BASE_CTR, BASE_CTR), weights,
                                              days=1, per_day=20_000))
            hits += report.srm is not None and report.srm.mismatch
        return hits / runs

    skewed, fair = flagged((0.52, 0.48)), flagged((0.5, 0.5))
    # exactly 10,400 / 9,600 observed against planned 50/50
    exact = analyse(DESIGN, Timeline.from_totals(TWO_ARMS, [[10_400, 312, 0, 0, 0],
                                                            [9_600, 288, 0, 0, 0]])).srm
    return [
        figure("SRM: 52/48 at 20,000 subjects flagged", skewed, "flagged (>= 99%)",
               skewed >= 0.99 and exact is not None and exact.mismatch, runs=runs,
               exactly_10400_9600=f"p = {exact.p_value:.1e}, flagged: {exact.mismatch}"
               if exact is not None else "not checked"),
        figure("SRM: true 50/50 at 20,000 flagged", fair, "< 1%", fair < 0.01, runs=runs),
    ]


def peeking(pool: Pool, rng: np.random.Generator, runs: int) -> list[dict]:
    horizon_fp = naive_fp = changed = 0
    for _ in range(runs):
        full = simulate(pool, rng, (BASE_CTR, BASE_CTR))
        first: str | None = None
        naive_stopped = moved = False
        for day in range(1, DAYS + 1):
            look = Timeline(full.arms, full.counts[:day])
            verdict = decided(analyse(DESIGN, look))
            first = first or verdict
            moved = moved or (verdict is not None and verdict != first)
            # the same test on everything so far, acted on at once: what the horizon prevents
            a, b = look.counts.sum(axis=0)[:, :2].astype(int)
            p = compare_rates(int(b[1]), int(b[0]), int(a[1]), int(a[0])).p_value
            naive_stopped = naive_stopped or (p is not None and p < ALPHA)
        horizon_fp += first in ("win", "loss")
        naive_fp += naive_stopped
        changed += moved
    rate, naive = horizon_fp / runs, naive_fp / runs
    return [
        figure("Peeking daily, fixed horizon: false positives", rate,
               f"<= {PEEKING_BOUND:.0%}, no change", rate <= PEEKING_BOUND and changed == 0,
               runs=runs, looks_per_run=DAYS, verdicts_changed_by_a_later_look=changed),
        figure("Peeking daily without the horizon (contrast)", naive, "none (for contrast)",
               True, runs=runs),
    ]


def bandit(pool: Pool, rng: np.random.Generator, runs: int, exposures: int = 50_000,
           batch: int = 1_000) -> dict:
    ctr = np.array([0.03, 0.04, 0.05])
    final, traffic = [], []
    for _ in range(runs):
        weights = [1 / 3] * 3
        successes, trials = np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
        for _ in range(exposures // batch):
            u = pool.u[pool.subjects(rng, batch)]
            arm = np.array([choose(weights, x) for x in u], dtype=np.int64)
            clicked = rng.random(batch) < ctr[arm]
            trials += np.bincount(arm, minlength=3)
            successes += np.bincount(arm, weights=clicked, minlength=3).astype(np.int64)
            # the rollup's update: the arms' cumulative counts, a seeded generator
            weights = thompson_weights(successes.tolist(), trials.tolist(), 0.05, rng=rng)
        final.append(weights[2])
        traffic.append(trials[2] / trials.sum())
    share = float(np.mean(final))
    return figure("Bandit: best arm's share after 50,000", share, ">= 70%", share >= 0.70,
                  runs=runs, lowest_run=round(min(final), 3),
                  best_arm_share_of_all_50000=round(float(np.mean(traffic)), 3))


E2E_DESIGN = Design(metric="ctr", mde=0.75, alpha=ALPHA, power=0.8, running=False)
#: End-to-end experiments: CTR 20% (A/A) or 20% -> 35% (A/B, the MDE), a purchase
#: after 30% of clicks; ~30 new subjects a day for 12 days, ~135 planned per variant.
E2E_CTR, E2E_LIFTED, E2E_BUY, E2E_PER_DAY, E2E_DAYS = 0.20, 0.35, 0.3, 30, 12


def setup_django(database: str | None) -> None:
    """Django with the test settings, on ``database`` or a temporary SQLite file; migrated."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.testapp.settings"
    os.environ["PERSONALIZE_TEST_SERVICES"] = "1" if database else "0"
    if database:
        os.environ["DATABASE_URL"] = database
    import django
    from django.conf import settings

    if not database:
        folder = tempfile.mkdtemp(prefix="experiment-stats-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        settings.DATABASES = {"default": {
            "ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(folder) / "bench.sqlite3"),
            # a throw-away file: no fsync per commit
            "OPTIONS": {"init_command": "PRAGMA synchronous=OFF"},
        }}
    # the production default: exposures written in batches by the buffer's thread
    settings.PERSONALIZE = {**settings.PERSONALIZE, "EXPOSURE_FLUSH_INTERVAL": 2.0}
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@dataclass
class Simulated:
    """One end-to-end experiment's subjects and what they did (both paths read it)."""

    keys: list[str]
    day: np.ndarray
    seconds: np.ndarray
    arm: np.ndarray
    outcomes: Outcomes


def simulate_subjects(n: int, salt: str, rng: np.random.Generator,
                      ctr: tuple[float, float]) -> Simulated:
    """Arrivals, the real bucket and ``choose`` of each key, clicks and purchases after them."""
    arrivals = rng.poisson(E2E_PER_DAY, E2E_DAYS)
    day = np.repeat(np.arange(E2E_DAYS), arrivals)
    keys = [f"e{n}-{i}" for i in range(len(day))]
    arm = np.array([choose((1.0, 1.0), bucket(salt, key)) for key in keys], dtype=np.int64)
    clicked = rng.random(len(day)) < np.asarray(ctr)[arm]
    converted = clicked & (rng.random(len(day)) < E2E_BUY)
    revenue = np.where(converted, np.round(rng.lognormal(3.5, 0.8, len(day)), 2), 0.0)
    seconds = rng.integers(3600, 20 * 3600, len(day))
    return Simulated(keys, day, seconds, arm, Outcomes(clicked, converted, revenue))


def log_through_the_database(n: int, salt: str, sim: Simulated, first_day: object,
                             item: object) -> object:
    """The experiment and its subjects in the database, every step through the real code."""
    from datetime import datetime, timedelta

    from django.utils import timezone

    import personalize
    from personalize.conf import personalize_settings
    from personalize.experiments.assignment import assign, running_experiment
    from personalize.experiments.lifecycle import start
    from personalize.models import ConsentRecord, Experiment, Subject, Variant
    from personalize.outcomes.exposures import TAG, flush_exposures, log_exposure
    from personalize.serving.cache import Row
    from personalize.serving.served import Served

    experiment = Experiment.objects.create(
        name=f"bench {n}", placement=f"bench-{n}", primary_metric="ctr",
        minimum_detectable_effect=E2E_DESIGN.mde, alpha=ALPHA, salt=salt)
    for key, control in (("a", True), ("b", False)):
        Variant.objects.create(experiment=experiment, key=key, kind=Variant.Kind.POPULAR,
                               is_control=control)
    start(experiment)
    subjects = Subject.objects.bulk_create(Subject(key=key) for key in sim.keys)
    version = str(personalize_settings.CONSENT_POLICY_VERSION)
    ConsentRecord.objects.bulk_create(
        ConsentRecord(subject=s, purpose=purpose, granted=True, policy_version=version,
                      source="server")
        for s in subjects for purpose in ("personalization", "analytics"))
    config = running_experiment(experiment.placement)
    assert config is not None
    row = Row(item.pk, 1.0, "popular", False, "", None, item.external_id, item.title,  # type: ignore[attr-defined]
              [], {})
    zone = timezone.get_current_timezone()
    opening = datetime.combine(first_day, datetime.min.time(), tzinfo=zone)  # type: ignore[arg-type]
    shown = []
    for i, subject in enumerate(subjects):
        arm = assign(config, subject.pk, subject.key, enrolled=True)
        assert arm.variant.key == "ab"[sim.arm[i]], "assignment differs from the fast path"
        at = opening + timedelta(days=int(sim.day[i]), seconds=int(sim.seconds[i]))
        served = Served([row], None, experiment.placement, "popular", None, subject.pk, True,
                        experiment_id=config.id, variant_id=arm.variant.id,
                        assignment_recorded=arm.recorded)
        shown.append((at, log_exposure(served, TAG, at=at)))
    flush_exposures()
    for i, (subject, (at, impression)) in enumerate(zip(subjects, shown, strict=True)):
        if sim.outcomes.clicked[i]:
            personalize.track(subject, "click", item=item, impression=str(impression),
                              position=1, timestamp=at + timedelta(seconds=30))
        if sim.outcomes.converted[i]:
            personalize.track(subject, "purchase", item=item,
                              value=float(sim.outcomes.revenue[i]),
                              timestamp=at + timedelta(seconds=90))
    return experiment


def end_to_end(rng: np.random.Generator, runs: int, database: str | None) -> list[dict]:
    """A/A and A/B experiments through the database path, checked against the fast path."""
    setup_django(database)
    from datetime import timedelta

    from django.utils import timezone

    from personalize.experiments.lifecycle import stop
    from personalize.experiments.results import experiment_report
    from personalize.models import Item
    from personalize.outcomes.exposures import flush_exposures
    from personalize.outcomes.rollup import run_rollup

    first_day = timezone.localdate() - timedelta(days=E2E_DAYS)
    item = Item.objects.create(external_id="bench-item", title="Benchmark item")
    planned = []
    for n in range(runs):
        ctr = (E2E_CTR, E2E_CTR if n % 2 == 0 else E2E_LIFTED)
        salt = f"bench-e2e-{n}"
        sim = simulate_subjects(n, salt, rng, ctr)
        fast = analyse(E2E_DESIGN, timeline(sim.arm, sim.day, sim.outcomes, E2E_DAYS))
        planned.append((ctr, fast, log_through_the_database(n, salt, sim, first_day, item)))
        if (n + 1) % 50 == 0:
            print(f"    {n + 1} experiments logged")
    flush_exposures()
    for _, _, experiment in planned:
        stop(experiment)  # the timeline ends at its last day with subjects, as the fast one
    started = time.perf_counter()
    rolled = run_rollup(since=first_day)
    print(f"    rollup: {rolled} ({time.perf_counter() - started:.1f} s)")
    same = aa_hits = ab_hits = 0
    differ = []
    for ctr, fast, experiment in planned:
        report = experiment_report(experiment)
        if report.verdict == fast.verdict and decided(report) == decided(fast):
            same += 1
        else:
            differ.append((experiment.name, report.verdict, fast.verdict))
        if ctr[0] == ctr[1]:
            aa_hits += decided(report) in ("win", "loss")
        else:
            ab_hits += decided(report) == "win"
    agreement = same / runs
    aa, ab = runs - runs // 2, runs // 2

    def interval(hits: int, n: int) -> str:
        estimate = rate_estimate(hits, max(n, 1))
        return f"[{estimate.interval.low:.1%}, {estimate.interval.high:.1%}]"

    # The rates are measured, not targets: a few hundred runs estimate them within
    # several points (the 95% interval); the fast path above has the precise ones.
    return [
        figure("End to end: verdicts equal to the fast path's", agreement, "100%",
               agreement == 1.0, experiments=runs, differing=differ[:5]),
        figure("End to end: A/A false-positive rate", aa_hits / aa, "(measured)", True,
               experiments=aa, interval_95=interval(aa_hits, aa)),
        figure("End to end: power, CTR 20% -> 35%", ab_hits / max(ab, 1), "(measured)", True,
               experiments=ab, interval_95=interval(ab_hits, ab)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=5_000, help="A/A experiments")
    parser.add_argument("--power-runs", type=int, default=2_000)
    parser.add_argument("--srm-runs", type=int, default=2_000)
    parser.add_argument("--peeking-runs", type=int, default=1_000)
    parser.add_argument("--bandit-runs", type=int, default=20)
    parser.add_argument("--pool", type=int, default=400_000, help="subject keys bucketed once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--e2e-experiments", type=int, default=300,
                        help="experiments through the database path (0: skip)")
    parser.add_argument("--e2e-database", help="a throw-away PostgreSQL database URL "
                        "(default: a temporary SQLite file)")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    pool = Pool(args.pool, salt=f"benchmark-{args.seed}", rng=rng)
    print(f"{args.pool:,} subject keys bucketed in {time.perf_counter() - start:.1f} s; "
          f"design: CTR, MDE {DESIGN.mde:+.1%}, alpha {ALPHA}, power {DESIGN.power}; "
          f"~{PER_DAY} new subjects a day for {DAYS} days")
    figures = [
        timed("A/A", lambda: aa_false_positives(pool, rng, args.experiments)),
        timed("power", lambda: power(pool, rng, args.power_runs)),
    ]
    figures += srm(pool, rng, args.srm_runs)
    figures += peeking(pool, rng, args.peeking_runs)
    figures.append(timed("bandit", lambda: bandit(pool, rng, args.bandit_runs)))
    if args.e2e_experiments:
        e2e_rng = np.random.default_rng(args.seed)
        started = time.perf_counter()
        figures += end_to_end(e2e_rng, args.e2e_experiments, args.e2e_database)
        print(f"    (end to end: {time.perf_counter() - started:.0f} s)")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
