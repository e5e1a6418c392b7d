"""Experiment statistics simulated through the real code: A/A, power, SRM, peeking, bandit.

Every simulated subject is a key of a fixed pool whose bucket comes from the
real ``personalize.experiments.buckets.bucket`` (computed once per key and
reused), assigned by the real ``choose``; the daily counts go through the real
``personalize.experiments.analysis.analyse`` and the bandit's weights through
the real ``personalize.experiments.bandit.thompson_weights``. Outcomes are
drawn per subject (click, conversion, a log-normal basket for converters).
The rollup step (exposures and events to ``SubjectOutcome`` rows) is not part
of the simulation: the timeline is built from the simulated subjects directly.

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

Usage::

    .venv/bin/python benchmarks/experiment_stats.py [--experiments 5000] [--power-runs 2000]
        [--srm-runs 2000] [--peeking-runs 1000] [--bandit-runs 20] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
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
from personalize.experiments.stats import compare_rates, sample_size_for_rate

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
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
