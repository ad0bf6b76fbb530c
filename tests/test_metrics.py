"""The Table 1 test error on hand-computed cases."""

import numpy as np
import pandas as pd
import pytest

from nanoutils import metrics


def _frame():
    return pd.DataFrame(
        {
            "study": ["a", "a", "a", "b"],
            "feed_id": ["f1", "f1", "f2", "f3"],
            "ion": ["Na+", "Cl-", "Na+", "Cl-"],
            "R_meas": [0.50, 0.40, -0.20, 0.90],
            "R_pred": [0.55, 0.30, -0.20, 0.70],
        }
    )


def test_rejection_error_hand_computed():
    score = metrics.rejection_error(_frame(), n_boot=500)
    # |Δ| = 5, 10, 0, 20 pp → mean 8.75 pp
    assert score.value == pytest.approx(8.75)
    assert score.n_points == 4 and score.n_feeds == 3
    assert score.per_ion.to_dict() == pytest.approx({"Cl-": 15.0, "Na+": 2.5})
    assert score.per_study.to_dict() == pytest.approx({"a": 5.0, "b": 20.0})
    assert score.per_feed.to_dict() == pytest.approx({"f1": 7.5, "f2": 0.0, "f3": 20.0})


def test_rejection_error_by_groups_like_the_score():
    frame = _frame()
    by_feed_ion = metrics.rejection_error_by(frame, ["feed_id", "ion"])
    assert by_feed_ion.to_dict() == pytest.approx(
        {("f1", "Cl-"): 10.0, ("f1", "Na+"): 5.0, ("f2", "Na+"): 0.0, ("f3", "Cl-"): 20.0}
    )
    pd.testing.assert_series_equal(metrics.rejection_error_by(frame, "ion"), metrics.rejection_error(frame).per_ion)
    with pytest.raises(ValueError, match="R_pred"):
        metrics.rejection_error_by(frame.drop(columns="R_pred"), "ion")


def test_bootstrap_interval_brackets_value_and_resamples_whole_feeds():
    score = metrics.rejection_error(_frame(), n_boot=4000)
    assert score.ci[0] <= score.value <= score.ci[1]
    # Feed means are 7.5 (two points), 0 and 20: no resample of whole feeds can leave [0, 20].
    assert -1e-9 <= score.ci[0] and score.ci[1] <= 20.0 + 1e-9
    assert score.ci[1] - score.ci[0] > 1.0


def test_one_feed_gives_zero_width_interval():
    frame = _frame().assign(feed_id="f1")
    score = metrics.rejection_error(frame, n_boot=200)
    assert score.ci == pytest.approx((8.75, 8.75))


def test_permeate_error_relative():
    frame = pd.DataFrame({"feed_id": ["f1", "f2"], "ion": ["Na+", "Na+"], "c_meas": [10.0, 2.0], "c_pred": [12.0, 1.0]})
    assert metrics.permeate_error(frame, n_boot=100).value == pytest.approx(35.0)  # (20 % + 50 %) / 2


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda f: f.drop(columns="R_pred"), "R_pred"),
        (lambda f: f.assign(R_pred=[0.1, np.nan, 0.2, 0.3]), "row 1"),
        (lambda f: f.iloc[:0], "empty"),
    ],
)
def test_bad_frames_are_refused(change, fragment):
    with pytest.raises(ValueError, match=fragment):
        metrics.rejection_error(change(_frame()))
