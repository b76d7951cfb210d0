import numpy as np
import pytest
import tensorflow as tf

from kd_keras.synthesis import mix, mixup_dataset, plan_mixup
from kd_keras.synthesis.mixup import sample_lambdas


def test_lambdas_are_rounded_beta_draws():
    lam = sample_lambdas(20000, 1.0, 2, [1, 2]).numpy()
    assert lam.min() >= 0 and lam.max() <= 1
    np.testing.assert_allclose(lam * 100, np.round(lam * 100), atol=1e-4)
    assert abs(lam.mean() - 0.5) < 0.02 and abs(lam.var() - 1 / 12) < 0.01  # Beta(1,1) = U(0,1)
    peaked = sample_lambdas(20000, 5.0, 2, [1, 2]).numpy()
    assert peaked.var() < lam.var() / 2  # Beta(5,5) concentrates around 0.5


def test_paper_rule_drops_near_copies_and_counts_them():
    plan = plan_mixup(100, 10000, low=0.05, high=0.95, seed=0)
    assert np.all((plan.lam > 0.05) & (plan.lam < 0.95))
    assert len(plan) + plan.dropped == 10000
    assert 0.08 < plan.dropped / 10000 < 0.14  # rounding: lambda < .055 or >= .945, ~11%
    assert np.all(plan.first != plan.second)
    assert plan.first.max() < 100 and plan.second.max() < 100


def test_fill_replaces_dropped_pairs_and_seed_reproduces():
    a = plan_mixup(50, 3000, fill=True, seed=3)
    b = plan_mixup(50, 3000, fill=True, seed=3)
    c = plan_mixup(50, 3000, fill=True, seed=4)
    assert len(a) == 3000 and a.dropped > 0
    np.testing.assert_array_equal(a.lam, b.lam)
    np.testing.assert_array_equal(a.first, b.first)
    assert not np.array_equal(a.lam, c.lam)


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match="low < high"):
        plan_mixup(10, 10, low=0.9, high=0.1)
    with pytest.raises(ValueError, match="two real images"):
        plan_mixup(1, 10)


def test_mix_matches_numpy_and_dataset_streams_the_plan():
    real = np.random.default_rng(0).random((20, 4, 4, 1)).astype(np.float32)
    plan = plan_mixup(20, 333, fill=True, seed=1)
    expected = (plan.lam[:, None, None, None] * real[plan.first]
                + (1 - plan.lam[:, None, None, None]) * real[plan.second])
    got = mix(tf.constant(real), plan.first, plan.second, plan.lam).numpy()
    np.testing.assert_allclose(got, expected, atol=0.5 / 255 + 1e-6)  # 8-bit levels
    np.testing.assert_allclose(got * 255, np.round(got * 255), atol=1e-3)
    streamed = np.concatenate(list(mixup_dataset(real, plan, batch_size=100).as_numpy_iterator()))
    np.testing.assert_array_equal(streamed, got)
