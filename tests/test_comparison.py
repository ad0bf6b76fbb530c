"""nanoutils.comparison: Table 1 (issue 8)."""

import glob

import numpy as np
import pandas as pd
import pytest

from nanoutils import comparison, fitting, measurements, models, prediction, sampling, training
from nanoutils.training_data import TransportData


def _frame(errors, feeds, study="s", converged=None):
    """A scored frame whose predictions miss R_meas = 0.5 by ``errors`` (fractions)."""
    f = pd.DataFrame(
        {"feed_id": feeds, "study": study, "ion": "Na+", "R_meas": 0.5, "R_pred": 0.5 + np.asarray(errors)}
    )
    if converged is not None:
        f["converged"] = converged
    return f


def test_table1_keeps_the_paper_order_scores_with_the_metric_and_marks_missing_rows():
    rows = [
        comparison.RowResult("resnet", "1,000", _frame([0.1, -0.3], ["a", "b"], "v1"), None, 2.0),
        comparison.RowResult(
            "dspmde",
            "4",
            _frame([0.02, 0.04, 9.0], ["a", "a", "b"], "v2", [True, True, False]),
            _frame([-0.2], ["r"], "fdl"),
            1.0,
        ),
        comparison.not_run("sf", "friction model missing"),
    ]
    t = comparison.table1(rows, n_boot=50)
    assert list(t.index) == [comparison.LABELS[n] for n in comparison.ROWS]
    extra = comparison.table1([*rows, comparison.RowResult("hybrid_dspmde", "1 + 4", _frame([0.1], ["a"]), None, 1.0)])
    assert list(extra.index)[-1] == comparison.LABELS["hybrid_dspmde"] and len(extra) == len(t) + 1
    resnet, dspm, sf, node = (t.loc[comparison.LABELS[n]] for n in ("resnet", "dspmde", "sf", "neural_ode"))
    assert resnet["virtual test error (pp)"] == pytest.approx(20.0) and resnet["virtual points"] == 2
    assert np.isnan(resnet["real test error (pp)"]) and resnet["error v1 (pp)"] == pytest.approx(20.0)
    assert dspm["virtual test error (pp)"] == pytest.approx(3.0) and dspm["virtual points"] == 2
    assert "1 unconverged virtual points left out" in dspm["note"]
    assert dspm["real test error (pp)"] == pytest.approx(20.0) and dspm["error fdl (pp)"] == pytest.approx(20.0)
    assert np.isnan(dspm["real CI low (pp)"]), "no interval from a single feed"
    assert (resnet["virtual CI low (pp)"], resnet["virtual CI high (pp)"]) == pytest.approx(
        (10.0, 30.0)
    )  # feeds of 10 and 30 pp
    assert sf["note"] == "not run: friction model missing" and np.isnan(sf["virtual test error (pp)"])
    assert node["note"].startswith("not run") and node["paper test error (%)"] == 7.1
    with pytest.raises(ValueError, match="unknown Table 1 row"):
        comparison.table1([comparison.not_run("mlp", "x")])


def _simulated(n=24, seed=0):
    """Closed-form 'simulated' set: permeate c_f (1 − ½ τ), split by composition."""
    comp = sampling.sobol_compositions(n, seed=seed)
    flux = np.broadcast_to(np.array([1 / 6, 0.5, 1.0]) * models.FLUX_SCALE_M_S, (n, 3)).copy()
    perm = comp.concentration[:, None, :] * (1 - 0.5 * flux / models.FLUX_SCALE_M_S)[..., None]
    sim = TransportData(feed=comp.concentration, species_mask=comp.mask, flux=flux, permeate=perm)
    return {
        "train": sim.subset(np.arange(16)),
        "val": sim.subset(np.arange(16, 20)),
        "test": sim.subset(np.arange(20, n)),
    }


@pytest.fixture(scope="module")
def tiny_splits():
    virtual = measurements.load_measurements(sorted(glob.glob(str(measurements.MEASURED_DIR / "virtual_nf270_*.csv"))))
    virtual = virtual.subset(virtual.feed_keys[:10])
    return comparison.splits("smoke", seed=0, virtual=virtual, simulated=_simulated())


@pytest.mark.parametrize("name", ["resnet", "pinn"])
def test_deep_rows_are_deterministic_for_a_seed_on_cpu(tiny_splits, name):
    physics = {"virtual": fitting.PAPER_TABLE2}

    def once():
        pre = comparison.pretrain(
            name, tiny_splits.simulated, "smoke", seed=3, device="cpu", **({"collocation": 2} if name == "pinn" else {})
        )
        return comparison.run_deep(
            name, pre, tiny_splits, "smoke", seed=3, lrs=(1e-3, 3e-3), physics=physics, device="cpu"
        )

    a, b = once(), once()
    assert a.info["lr"] in (1e-3, 3e-3) and a.info["validation loss per lr"] == b.info["validation loss per lr"]
    assert len(a.real) == 75 and a.real.feed_id.nunique() == 3  # every real feed, each held out once
    ta, tb = (comparison.table1([r], n_boot=100).drop(columns="training time (s)") for r in (a, b))
    pd.testing.assert_frame_equal(ta, tb)
    assert np.isfinite(
        ta.iloc[comparison.ROWS.index(name)][["virtual test error (pp)", "real test error (pp)"]].astype(float)
    ).all()


def test_pinn_fine_tuning_uses_the_fitted_membrane_without_touching_the_pretrained_model(tiny_splits):
    pinn = models.build("pinn", "smoke")
    fresh = comparison._fresh(pinn, {"r_p": 0.7e-9, "dx_e": 2e-6, "eps_p": 40.0, "X_d": -10.0})
    assert fresh.config.membrane == {"r_p": 0.7e-9, "dx_e": 2e-6, "eps_p": 40.0, "X_d": -10.0}
    assert pinn.config.membrane == {} and fresh is not pinn
    assert all(
        np.array_equal(p.detach(), q.detach()) for p, q in zip(pinn.parameters(), fresh.parameters(), strict=True)
    )


def test_sf_row_skips_real_folds_with_ions_it_has_no_friction_factor_for(tiny_splits):
    row = comparison.run_sf(tiny_splits, "smoke")
    assert "MgCl2" in row.note and "Mg2+" in row.note and "SO4-2" in row.note
    assert set(row.real.feed_id) == {"fdl2021/NaCl-10mM"}
    assert row.parameters.startswith("d + 4") and row.seconds > 0


def test_hybrid_row_scores_every_real_feed_and_the_virtual_test_feeds(tiny_splits):
    row = comparison.run_hybrid(tiny_splits, "smoke")
    assert set(row.real.feed_id) == set(tiny_splits.real_folds[0][1].feed_keys) | {tiny_splits.real_folds[0][0]}
    assert set(row.virtual.feed_id) == set(tiny_splits.virtual_test.feed_keys)
    assert np.isfinite(row.virtual.R_pred).all() and row.seconds > 0
    t = comparison.table1([row], n_boot=50)
    assert np.isfinite(t.loc[comparison.LABELS["hybrid_dspmde"], "real test error (pp)"])


def test_fine_tuning_runs_resume_and_save_what_the_figures_need(tiny_splits, tmp_path):
    pre = comparison.pretrain("resnet", tiny_splits.simulated, "smoke", seed=1, device="cpu")
    kwargs = dict(seed=1, lrs=(1e-3,), device="cpu", run_dir=tmp_path / "finetune")
    a = comparison.run_deep("resnet", pre, tiny_splits, "smoke", **kwargs)
    b = comparison.run_deep("resnet", pre, tiny_splits, "smoke", resume=True, **kwargs)  # loads the finished runs
    pd.testing.assert_frame_equal(a.virtual, b.virtual)
    pd.testing.assert_frame_equal(a.real, b.real)
    other = comparison.pretrain("resnet", tiny_splits.simulated, "smoke", seed=2, device="cpu")
    with pytest.raises(training.CheckpointMismatchError, match="starting weights"):  # strict resume refuses them
        comparison.run_deep("resnet", other, tiny_splits, "smoke", resume=True, **kwargs)
    with pytest.warns(UserWarning, match="starting weights"):  # stale runs of another pre-training are redone
        c = comparison.run_deep("resnet", other, tiny_splits, "smoke", resume="if_compatible", **kwargs)
    pd.testing.assert_frame_equal(
        c.virtual, comparison.run_deep("resnet", other, tiny_splits, "smoke", **kwargs).virtual
    )
    a = comparison.run_deep("resnet", pre, tiny_splits, "smoke", **kwargs)  # back to the first run's checkpoints
    ckpts = a.info["checkpoints"]
    assert set(ckpts) == {"virtual", *(key for key, _, _ in tiny_splits.real_folds)}
    # the saved model is the scored one: its curve through a test feed's fluxes gives the scored predictions
    key = tiny_splits.virtual_test.feed_keys[0]
    meas = tiny_splits.virtual_test.subset([key])
    arrays = meas.arrays()
    grid = np.unique(arrays.Jv[arrays.flux_mask])
    R = prediction.quantity_curves(meas, training.load_model(ckpts["virtual"]), grid)
    scored = a.virtual[a.virtual.feed_id == key]
    expected = [
        R[0, np.searchsorted(grid, j), arrays.quantities.index(q)]
        for j, q in zip(scored.Jv_m_s, scored.ion, strict=True)
    ]
    np.testing.assert_allclose(expected, scored.R_pred, rtol=1e-5, atol=1e-6)

    comparison.save_results([a, comparison.not_run("sf", "x")], tmp_path / "results")
    points, runs = comparison.load_results(tmp_path / "results")
    assert len(points) == len(a.virtual) + len(a.real) and set(points.split) == {"virtual", "real"}
    np.testing.assert_allclose(points[points.split == "real"].R_pred, a.real.R_pred)
    assert runs["resnet"]["checkpoints"] == ckpts and runs["sf"] == {}
    assert len(runs["resnet"]["history"]["virtual"]) == len(b.info["history"]["virtual"]) > 0
    with pytest.raises(FileNotFoundError, match="chapter 06"):
        comparison.load_results(tmp_path / "nothing")


def test_tuned_settings_replace_the_search_and_must_match_the_pretrained_model(tiny_splits):
    from nanoutils import tuning

    s = tuning.Settings("resnet", 3e-3, {"blocks": 1, "width": 10}, noise=False)
    pre = comparison.pretrain("resnet", tiny_splits.simulated, "smoke", seed=1, device="cpu", **s.config)
    row = comparison.run_deep("resnet", pre, tiny_splits, "smoke", seed=1, device="cpu", tuned=s)
    assert row.info["lr"] == 3e-3 and list(row.info["validation loss per lr"]) == [3e-3]
    expect = comparison.finetune_run(
        models.clone(pre.model),
        tiny_splits.virtual_train,
        tiny_splits.virtual_val,
        tiny_splits,
        "smoke",
        seed=1,
        lr=3e-3,
        noise=False,
        device="cpu",
    )
    noisy = comparison.run_deep("resnet", pre, tiny_splits, "smoke", seed=1, device="cpu", lrs=(3e-3,))
    assert row.info["validation loss per lr"][3e-3] == expect.best_loss != noisy.info["validation loss per lr"][3e-3]
    other = comparison.pretrain("resnet", tiny_splits.simulated, "smoke", seed=1, device="cpu")
    with pytest.raises(ValueError, match="do not match the pre-trained resnet"):
        comparison.run_deep("resnet", other, tiny_splits, "smoke", device="cpu", tuned=s)
