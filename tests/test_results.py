import numpy as np
import pytest
import pandas as pd

from implicit_repro.results.reported import attach_reported
from implicit_repro.results.stats import bootstrap_ci, spearman, verdict


def test_verdict_follows_the_ci_and_the_claimed_sign():
    assert verdict(0.1, 0.3) == "replicated"
    assert verdict(-0.3, -0.1) == "not replicated"
    assert verdict(-0.1, 0.3) == "inconclusive"
    assert verdict(-0.3, -0.1, expected_sign=-1) == "replicated"
    assert verdict(float("nan"), float("nan")) == "inconclusive"


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 20), rng.normal(1.0, 1.0, 2000)
    lo_s, hi_s = bootstrap_ci((small,), np.mean)
    lo_l, hi_l = bootstrap_ci((large,), np.mean)
    assert lo_l < 1.0 < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4


def test_bootstrap_refuses_an_interval_when_the_statistic_is_mostly_undefined():
    # One positive example among many: most resamples have no variation in "correct".
    pairs = np.array([[0.9, 1.0]] + [[0.1 * i, 0.0] for i in range(40)])
    corr = lambda p: float(np.corrcoef(p[:, 0], p[:, 1])[0, 1]) if np.ptp(p[:, 1]) else float("nan")  # noqa: E731
    lo, hi = bootstrap_ci((pairs,), corr)
    assert np.isnan(lo) and np.isnan(hi)


def test_spearman_handles_ties_and_monotone_maps():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    # ties share their mean rank: ranks (0.5, 0.5, 2, 3) against (0, 1, 2, 3)
    assert spearman(np.array([1.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.9486833)
    assert np.isnan(spearman(x, np.ones(5)))


def test_reported_numbers_attach_to_matching_cells_only():
    frame = pd.DataFrame({"task": ["mazes", "mazes", "prefix_sums"], "metric": ["aa", "accuracy", "aa"]})
    cells = [{"task": "mazes", "metric": "aa", "value": 0.32, "provenance": "second-hand"}]
    out = attach_reported(frame, cells, keys=["task", "metric"])
    assert out["reported"].tolist()[0] == 0.32 and np.isnan(out["reported"].tolist()[1])
    assert out["reported_provenance"].tolist() == ["second-hand", "unknown", "unknown"]
