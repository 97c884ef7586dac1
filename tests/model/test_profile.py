"""The drift math of model/profile.py on crafted distributions: PSI, KS, the bins."""

import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from upvote.model.profile import (
    CATEGORICAL,
    CONTINUOUS,
    FeatureProfile,
    Profile,
    continuous_feature,
    psi,
)
from upvote.model.profile import ks as ks_statistic


def test_psi_of_a_hand_made_example():
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert expected == pytest.approx(0.2747, abs=1e-4)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_is_finite_for_an_empty_bin_and_symmetric():
    assert math.isfinite(psi([0.5, 0.5], [1.0, 0.0])) and psi([0.5, 0.5], [1.0, 0.0]) > 1
    assert psi([0.1, 0.9], [0.4, 0.6]) == pytest.approx(psi([0.4, 0.6], [0.1, 0.9]))


def test_ks_matches_scipy_and_tells_identical_from_shifted():
    rng = np.random.default_rng(1)
    ref, same, shifted = rng.normal(size=3000), rng.normal(size=2000), rng.normal(1, 1, 2000)
    for current in (same, shifted, np.round(shifted)):  # ties too
        assert ks_statistic(np.sort(ref), current) == pytest.approx(
            ks_2samp(ref, current).statistic
        )
    assert ks_statistic(np.sort(ref), same) < 0.06
    # a shift of 1 sd: the CDFs part by 2 * Phi(0.5) - 1 = 0.383
    assert ks_statistic(np.sort(ref), shifted) == pytest.approx(0.383, abs=0.04)


def test_quantile_bins_stay_near_zero_for_the_same_distribution_and_grow_with_a_shift():
    rng = np.random.default_rng(2)
    feature = continuous_feature("x", rng.lognormal(size=4000), rng)
    assert feature.kind == CONTINUOUS and len(feature.props) == 10
    assert np.allclose(feature.props, 0.1, atol=0.005)
    same = psi(feature.props, feature.proportions(rng.lognormal(size=2000)))
    shifted = psi(feature.props, feature.proportions(rng.lognormal(0.5, 1, 2000)))
    assert same < 0.02 and shifted > 0.2


def test_a_mass_of_ties_keeps_its_own_bin_and_values_above_it_are_seen():
    """Most titles have no piece without a vector: the quantiles are all 0."""
    rng = np.random.default_rng(3)
    reference = np.where(rng.random(3000) < 0.95, 0.0, rng.random(3000))
    feature = continuous_feature("oov_share", reference, rng)
    assert feature.edges[0] == 0.0 and feature.props[0] == pytest.approx(0.95, abs=0.02)
    assert feature.proportions([0.0, 0.0, 0.0, 0.0])[0] == 1.0
    assert psi(feature.props, feature.proportions(np.full(500, 0.3))) > 1


def test_categories_outside_the_reference_count_as_other():
    feature = FeatureProfile("domain", CATEGORICAL, [], 0, categories=["a.com", "none", "other"])
    assert feature.proportions(["a.com", "b.com", "c.com", "none"]).tolist() == [0.25, 0.25, 0.5]


def test_a_profile_round_trips_through_json():
    rng = np.random.default_rng(4)
    continuous = continuous_feature("title_chars", rng.integers(5, 80, 500), rng)
    categorical = FeatureProfile("form", CATEGORICAL, [0.1, 0.9], 40, categories=["ask", "plain"])
    profile = Profile({"title_chars": continuous, "form": categorical}, "crafted: 500 stories")
    again = Profile.from_json(profile.to_json())
    assert again.to_json() == profile.to_json() and again.source == "crafted: 500 stories"
    assert np.array_equal(again.features["title_chars"].sample, continuous.sample)
    values = {"title_chars": rng.integers(5, 80, 300).tolist(), "form": ["plain"] * 300}
    assert [vars(d) for d in again.compare(values)] == [vars(d) for d in profile.compare(values)]
