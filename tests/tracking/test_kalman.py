"""Generic linear Kalman filter: the math against closed forms, convergence, and dimension checks."""

from __future__ import annotations

import numpy as np
import pytest

from fancam.tracking.kalman import KalmanFilter

CV_F = [[1.0, 1.0], [0.0, 1.0]]  # 1-D constant velocity, unit time step
CV_H = [[1.0, 0.0]]  # position is observed


def test_scalar_update_matches_closed_form():
    # Scalar random walk: the posterior is the precision-weighted mean of prior and measurement.
    kf = KalmanFilter([2.0], [[4.0]], [[1.0]], [[1.0]])
    kf.predict([[0.0]])
    kf.update([5.0], [[1.0]])
    gain = 4.0 / (4.0 + 1.0)
    assert kf.x[0] == pytest.approx(2.0 + gain * 3.0)
    assert kf.P[0, 0] == pytest.approx((1 - gain) * 4.0)


def test_predict_applies_transition_and_adds_process_noise():
    kf = KalmanFilter([1.0, 2.0], np.eye(2), CV_F, CV_H)
    kf.predict(0.5 * np.eye(2))
    np.testing.assert_allclose(kf.x, [3.0, 2.0])
    f = np.array(CV_F)
    np.testing.assert_allclose(kf.P, f @ f.T + 0.5 * np.eye(2))


@pytest.mark.parametrize(
    ("r", "expected_x"),
    [
        (1e-9, 10.0),  # an exact measurement replaces the prediction
        (1e9, 0.0),  # a worthless measurement leaves the prediction unchanged
    ],
)
def test_measurement_noise_sets_the_trust(r, expected_x):
    kf = KalmanFilter([0.0, 0.0], np.eye(2), CV_F, CV_H)
    kf.update([10.0], [[r]])
    assert kf.x[0] == pytest.approx(expected_x, abs=1e-6)


def test_constant_velocity_converges_on_noisy_positions():
    rng = np.random.default_rng(0)
    kf = KalmanFilter([0.0, 0.0], np.diag([100.0, 100.0]), CV_F, CV_H)
    q = np.array([[0.25, 0.5], [0.5, 1.0]]) * 1e-4
    for k in range(1, 200):
        kf.predict(q)
        kf.update([3.0 * k + rng.normal(0, 2.0)], [[4.0]])
    assert kf.x[1] == pytest.approx(3.0, abs=0.05)
    assert kf.x[0] == pytest.approx(3.0 * 199, abs=2.0)


def test_covariance_stays_symmetric_positive_definite():
    rng = np.random.default_rng(1)
    kf = KalmanFilter(np.zeros(4), np.eye(4) * 1e6, np.eye(4), np.eye(2, 4))
    for _ in range(500):
        kf.predict(np.eye(4) * 1e-12)
        kf.update(rng.normal(size=2), np.eye(2) * 1e-6)
    p = kf.P
    np.testing.assert_array_equal(p, p.T)
    assert np.linalg.eigvalsh(p).min() > 0


def test_state_accessors_return_copies_and_set_state_rolls_back():
    kf = KalmanFilter([1.0, 0.0], np.eye(2), CV_F, CV_H)
    saved_x, saved_p = kf.x, kf.P
    saved_x[0] = 99.0  # editing a copy must not touch the filter
    assert kf.x[0] == 1.0
    kf.predict(np.eye(2))
    kf.update([4.0], [[1.0]])
    kf.set_state([1.0, 0.0], saved_p)
    np.testing.assert_array_equal(kf.x, [1.0, 0.0])
    np.testing.assert_array_equal(kf.P, np.eye(2))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([], np.eye(0), np.eye(0), np.zeros((1, 0))), "x0"),  # empty state
        (([0.0, 0.0], np.eye(3), CV_F, CV_H), "p0"),  # covariance of the wrong size
        (([0.0, 0.0], np.eye(2), np.eye(3), CV_H), "transition"),  # transition of the wrong size
        (([0.0, 0.0], np.eye(2), CV_F, [[1.0, 0.0, 0.0]]), "observation"),  # H has 3 columns for 2 states
        (([0.0, 0.0], np.eye(2), CV_F, [1.0, 0.0]), "observation"),  # H must be 2-D
        (([np.nan, 0.0], np.eye(2), CV_F, CV_H), "finite"),  # NaN in the state
    ],
)
def test_construction_validates_dimensions(args, message):
    with pytest.raises(ValueError, match=message):
        KalmanFilter(*args)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda kf: kf.predict(np.eye(3)), "process_noise"),  # Q of the wrong size
        (lambda kf: kf.update([1.0, 2.0], [[1.0]]), "z"),  # two values for a 1-D observation
        (lambda kf: kf.update([1.0], np.eye(2)), "observation_noise"),  # R of the wrong size
        (lambda kf: kf.set_state([1.0], np.eye(2)), "x"),  # state of the wrong size
        (lambda kf: kf.update([np.inf], [[1.0]]), "finite"),  # infinite measurement
    ],
)
def test_calls_validate_dimensions(call, message):
    kf = KalmanFilter([0.0, 0.0], np.eye(2), CV_F, CV_H)
    with pytest.raises(ValueError, match=message):
        call(kf)
    np.testing.assert_array_equal(kf.x, [0.0, 0.0])  # a rejected call changes nothing
