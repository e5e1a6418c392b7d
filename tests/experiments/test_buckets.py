import numpy as np
import pytest

from personalize.experiments.buckets import bucket, choose


def test_a_bucket_is_fixed_and_salted():
    assert bucket("s1", "abc") == bucket("s1", "abc")
    assert bucket("s1", "abc") != bucket("s2", "abc")
    assert 0.0 <= bucket("s1", "abc") < 1.0


def test_buckets_are_uniform_over_keys():
    values = np.array([bucket("salt", f"subject-{n}") for n in range(20000)])
    counts, _ = np.histogram(values, bins=10, range=(0, 1))
    assert counts.min() > 1850 and counts.max() < 2150  # 2000 +- 3.5 sd


def test_choose_follows_the_weights():
    assert choose([1, 1], 0.0) == 0
    assert choose([1, 1], 0.4999) == 0
    assert choose([1, 1], 0.5) == 1
    assert choose([1, 0, 3], 0.25) == 2  # the zero-weight variant is never chosen
    assert choose([2, 2], 0.9999999) == 1
    shares = np.bincount([choose([1, 3], bucket("x", str(n))) for n in range(20000)]) / 20000
    assert abs(shares[1] - 0.75) < 0.015


@pytest.mark.parametrize("weights", [[0, 0], [1, -1], []])
def test_choose_refuses_weights_without_a_share(weights):
    with pytest.raises(ValueError):
        choose(weights, 0.5)
