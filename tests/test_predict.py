"""The prediction API and the `python -m nanoutils predict` command."""

import numpy as np
import pandas as pd
import pytest
import torch

from nanoutils import dspmde, ions, models, predict
from nanoutils.__main__ import main
from nanoutils.prediction import read_feeds_csv

FEEDS = [ions.Feed.from_salts("NaCl 10 mM + Na2SO4 5 mM"), ions.Feed.from_salts("MgCl2 20 mM")]
FLUXES = np.array([0.0, 5e-6, 2e-5])


def _charge_balance(frame: pd.DataFrame) -> pd.Series:
    z = frame["ion"].map(lambda n: ions.get(n).z)
    return (z * frame["c_perm"]).groupby([frame["feed_id"], frame["Jv_m_s"]]).sum()


def test_membrane_gives_the_dspmde_frame():
    frame = predict(FEEDS, FLUXES, dspmde.Membrane.nf270())
    expected = dspmde.solve(FEEDS, FLUXES, membrane=dspmde.Membrane.nf270()).to_frame()
    pd.testing.assert_frame_equal(frame, expected)


def test_neural_ode_predictions_are_electroneutral_and_start_at_the_feed():
    torch.manual_seed(0)
    model = models.build("neural_ode", "smoke").double()
    frame = predict(FEEDS, FLUXES, model)
    assert set(frame["ion"]) == {"Na+", "Mg2+", "Cl-", "SO4-2"}
    assert len(frame) == 3 * (3 + 2)  # absent ions are not reported
    assert np.abs(_charge_balance(frame)).max() < 1e-9
    at_zero = frame[frame["Jv_m_s"] == 0]
    np.testing.assert_allclose(at_zero["c_perm"], at_zero["c_feed"], rtol=1e-12)


def test_ensemble_reports_the_spread():
    torch.manual_seed(1)
    a, b = models.build("neural_ode", "smoke").double(), models.build("neural_ode", "smoke").double()
    same = predict(FEEDS, FLUXES, [a, a])
    assert (same["c_perm_std"] == 0).all()
    mixed = predict(FEEDS, FLUXES, [a, b])
    assert (mixed.loc[mixed["Jv_m_s"] > 0, "c_perm_std"] > 0).all()
    np.testing.assert_allclose(mixed["R_std"], mixed["c_perm_std"] / mixed["c_feed"])


@pytest.mark.parametrize("fluxes, fragment", [([-1e-6], "-1e-06"), ([np.nan], "nan"), ([], "non-empty")])
def test_bad_fluxes(fluxes, fragment):
    with pytest.raises(ValueError, match=fragment):
        predict(FEEDS, fluxes, dspmde.Membrane.nf270())


def test_cli_round_trips_a_feeds_csv(tmp_path):
    src = tmp_path / "feeds.csv"
    pd.DataFrame(
        {"feed_id": ["brackish", "single"], "Na+_mM": [15, 10], "Mg2+_mM": [2.5, 0], "Cl-_mM": [20, 10]}
    ).to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--feeds-csv", str(src), "--flux-lmh", "18", "72", "--out", str(out)]) == 0
    got = pd.read_csv(out)
    ids, feeds = read_feeds_csv(src)
    expected = predict(feeds, [5e-6, 2e-5], dspmde.Membrane.nf270())
    assert list(got.columns[:7]) == ["feed_id", "Jv_m_s", "Jv_LMH", "ion", "c_feed_mM", "c_perm_mM", "R"]
    assert list(got["feed_id"].unique()) == ids
    np.testing.assert_allclose(got["c_perm_mM"], expected["c_perm"], rtol=1e-12)
    np.testing.assert_allclose(got["Jv_LMH"].unique(), [18, 72])


@pytest.mark.parametrize(
    "header_row, fragment",
    [
        ("feed_id,Na+,Cl-\na,10,10", "Na+"),
        ("feed_id,Xx+_mM,Cl-_mM\na,10,10", "line 2"),
        ("feed_id,Na+_mM,Cl-_mM\na,10,9", "not electroneutral"),
        ("feed_id,salts\na,NaCl ten mM", "line 2"),
    ],
)
def test_cli_rejects_bad_feeds_with_a_clear_error(tmp_path, capsys, header_row, fragment):
    src = tmp_path / "bad.csv"
    src.write_text(header_row + "\n")
    assert main(["predict", "--feeds-csv", str(src), "--flux-lmh", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and fragment in err


def test_membrane_curves_through_the_measured_fluxes_give_the_scored_predictions():
    """Curves are evaluated as in scoring: each feed's temperature, and its film layer for observed rejections."""
    import glob

    from nanoutils import fitting, measurements, prediction

    virtual = measurements.load_measurements(
        sorted(glob.glob(str(measurements.MEASURED_DIR / "virtual_nf270_alzoubi2007*.csv")))
    )
    for meas in (virtual.subset(virtual.feed_keys[:2]), measurements.load_dataset("nf270_fdl2021")):
        arrays = meas.arrays()
        assert meas is not virtual or not arrays.intrinsic.any()  # the virtual feeds carry a film layer
        grid = np.unique(arrays.Jv[arrays.flux_mask])
        R = prediction.quantity_curves(meas, dspmde.Membrane.nf270(), grid)
        n, m, q = np.nonzero(arrays.mask)
        scored = fitting.predictions(meas, dspmde.Membrane.nf270())
        np.testing.assert_allclose(
            R[n, np.searchsorted(grid, arrays.Jv[n, m]), q], scored.R_pred, rtol=1e-9, atol=1e-12
        )
