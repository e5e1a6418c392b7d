"""Bootstrap intervals over subjects and ties with the best strategy."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.evaluation import uncertainty


def test_resampled_means_are_the_means_of_seeded_resamples():
    values = np.array([[0.0, 1.0, 0.5, 0.25], [1.0, 1.0, 0.0, 0.0]])
    means = uncertainty.resampled_means(values, 50, seed=3)
    draws = np.random.default_rng(3).integers(0, 4, size=(50, 4))
    # one set of draws, shared by both rows (what makes differences paired)
    assert means == pytest.approx(values[:, draws].mean(axis=-1))
    assert np.array_equal(means, uncertainty.resampled_means(values, 50, seed=3))


def test_resampled_means_in_blocks_equal_one_block(monkeypatch):
    values = np.random.default_rng(0).random((3, 7))
    whole = uncertainty.resampled_means(values, 20, seed=1)
    monkeypatch.setattr(uncertainty, "_BLOCK_CELLS", 7 * 3)  # 3 resamples per block
    # the generator draws the same stream in blocks, so the result is unchanged
    assert uncertainty.resampled_means(values, 20, seed=1) == pytest.approx(whole)


def test_no_subject_gives_nan():
    assert np.isnan(uncertainty.resampled_means(np.empty((2, 0)), 5, seed=0)).all()


def test_interval_is_the_central_percentiles():
    samples = np.arange(101, dtype=np.float64)[None, :]
    assert uncertainty.interval(samples)[0] == pytest.approx([2.5, 97.5])
    assert uncertainty.interval(np.ones((2, 3, 10))).shape == (2, 3, 2)


def test_tied_with_the_best_when_the_paired_difference_straddles_zero():
    rng = np.random.default_rng(5)
    subjects = rng.random(400)
    values = np.stack([
        subjects,  # the best
        subjects - 0.001 + rng.normal(0, 0.05, 400),  # within noise
        subjects - 0.2,  # clearly worse
    ])
    samples = uncertainty.resampled_means(values, 500, seed=0)
    assert uncertainty.tied_with(samples, best=0).tolist() == [True, True, False]
