"""nanoutils.comparison: Table 1 (issue 8)."""

import glob
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from test_fitting import synthetic_csv

from nanoutils import (
    comparison,
    fitting,
    measurements,
    metrics,
    models,
    prediction,
    pretraining_set,
    profiles,
    sampling,
    training,
    transfer,
)
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
            "dspmde", "4", _frame([0.02, 0.04, 9.0], ["a", "a", "b"], "v2", [True, True, False]), None, 1.0
        ),
        comparison.not_run("sf", "friction model missing"),
    ]
    t = comparison.table1(rows, n_boot=50)
    assert list(t.index) == [comparison.LABELS[n] for n in comparison.ROWS]
    extra = comparison.table1([*rows, comparison.RowResult("hybrid_dspmde", "1 + 4", _frame([0.1], ["a"]), None, 1.0)])
    assert list(extra.index)[-1] == comparison.LABELS["hybrid_dspmde"] and len(extra) == len(t) + 1
    resnet, dspm, sf, node = (t.loc[comparison.LABELS[n]] for n in ("resnet", "dspmde", "sf", "neural_ode"))
    assert resnet["virtual test error (pp)"] == pytest.approx(20.0) and resnet["virtual points"] == 2
    assert resnet["error v1 (pp)"] == pytest.approx(20.0) and np.isnan(resnet["error v2 (pp)"])
    assert dspm["virtual test error (pp)"] == pytest.approx(3.0) and dspm["virtual points"] == 2
    assert "1 unconverged virtual points left out" in dspm["note"]
    assert np.isnan(dspm["real all folds (pp)"]) and dspm["real seeds"] == ""  # no transfer benchmark given
    assert np.isnan(dspm["virtual CI low (pp)"]), "no interval from a single feed"
    assert (resnet["virtual CI low (pp)"], resnet["virtual CI high (pp)"]) == pytest.approx(
        (10.0, 30.0)
    )  # feeds of 10 and 30 pp
    assert sf["note"] == "not run: friction model missing" and np.isnan(sf["virtual test error (pp)"])
    assert node["note"].startswith("not run") and node["paper test error (%)"] == 7.1
    with pytest.raises(ValueError, match="unknown Table 1 row"):
        comparison.table1([comparison.not_run("mlp", "x")])
    with pytest.raises(ValueError, match="chapter 05"):  # pooled real folds are not Table 1's real data
        comparison.table1([replace(rows[0], real=_frame([0.1], ["r"], "fdl"))])


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
        return pre, comparison.run_deep(
            name, pre, tiny_splits, "smoke", seed=3, lrs=(1e-3, 3e-3), physics=physics, device="cpu"
        )

    (pre, a), (_, b) = once(), once()
    assert a.info["lr"] in (1e-3, 3e-3) and a.info["validation loss per lr"] == b.info["validation loss per lr"]
    assert len(a.real) == 75 and a.real.feed_id.nunique() == 3  # every real feed, each held out once (chapter 05)
    pd.testing.assert_frame_equal(a.real, b.real)
    assert np.isfinite(metrics.rejection_error(a.real).value)
    ta, tb = (comparison.table1([replace(r, real=None)], n_boot=100).drop(columns="training time (s)") for r in (a, b))
    pd.testing.assert_frame_equal(ta, tb)
    assert np.isfinite(float(ta.iloc[comparison.ROWS.index(name)]["virtual test error (pp)"]))
    only_virtual = comparison.run_deep(
        name, pre, tiny_splits, "smoke", seed=3, lrs=(1e-3, 3e-3), physics=physics, device="cpu", real=False
    )
    assert only_virtual.real is None and set(only_virtual.info["checkpoints"]) == {"virtual"}
    pd.testing.assert_frame_equal(only_virtual.virtual, a.virtual)


def test_pinn_fine_tuning_uses_the_fitted_membrane_without_touching_the_pretrained_model(tiny_splits):
    pinn = models.build("pinn", "smoke")
    fresh = comparison._fresh(pinn, {"r_p": 0.7e-9, "dx_e": 2e-6, "eps_p": 40.0, "X_d": -10.0})
    assert fresh.config.membrane == {"r_p": 0.7e-9, "dx_e": 2e-6, "eps_p": 40.0, "X_d": -10.0}
    assert pinn.config.membrane == {} and fresh is not pinn
    assert all(
        np.array_equal(p.detach(), q.detach()) for p, q in zip(pinn.parameters(), fresh.parameters(), strict=True)
    )


def test_sf_row_is_fitted_and_scored_on_the_virtual_split_only(tiny_splits):
    row = comparison.run_sf(tiny_splits, "smoke")
    assert row.real is None and set(row.virtual.feed_id) == set(tiny_splits.virtual_test.feed_keys)
    assert row.parameters.startswith("d + 4") and row.seconds > 0


def test_hybrid_row_scores_the_virtual_test_feeds_and_joins_table1(tiny_splits):
    row = comparison.run_hybrid(tiny_splits, "smoke")
    assert row.real is None  # its real columns are the transfer benchmark's
    assert set(row.virtual.feed_id) == set(tiny_splits.virtual_test.feed_keys)
    assert np.isfinite(row.virtual.R_pred).all() and row.seconds > 0
    t = comparison.table1([row], n_boot=50)
    assert np.isfinite(t.loc[comparison.LABELS["hybrid_dspmde"], "virtual test error (pp)"])


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

    with pytest.raises(ValueError, match="chapter 05"):  # Table 1's real data come from the transfer benchmark
        comparison.save_results([a], tmp_path / "results")
    comparison.save_results([replace(a, real=None), comparison.not_run("sf", "x")], tmp_path / "results", seed=1)
    points, runs = comparison.load_results(tmp_path / "results")
    assert len(points) == len(a.virtual) and set(points.split) == {"virtual"} and set(points.seed) == {1}
    np.testing.assert_allclose(points.R_pred, a.virtual.R_pred)
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


# Three feeds of one study: two NaCl feeds ("ions seen" when the other is held out) and MgCl2 (Mg2+ unseen).
THREE_FEEDS = {"NaCl-5": "NaCl 5 mM", "NaCl-20": "NaCl 20 mM", "MgCl2": "MgCl2 5 mM + NaCl 1 mM"}


@pytest.fixture(scope="module")
def three_feeds(tmp_path_factory):
    path = synthetic_csv(
        tmp_path_factory.mktemp("feeds") / "three.csv", feeds=THREE_FEEDS, fluxes_um_s=(2.0, 10.0, 40.0)
    )
    return measurements.load_measurements(path)


def test_real_transfer_gives_the_three_headline_figures_with_a_seed_spread(three_feeds, tmp_path):
    P = profiles.Profile("smoke", root=tmp_path)
    simulated = pretraining_set.split(pretraining_set.pretraining_set(profile=P, verbose=False))
    ckpt = comparison.checkpoint_dir("resnet", P)
    comparison.pretrain("resnet", simulated, P, run_dir=ckpt, device="cpu")  # chapter 06's pre-training
    stamp = (ckpt / "last.pt").stat().st_mtime_ns
    bench = comparison.real_transfer(three_feeds, ["resnet", "sf"], P, n_seeds=2)
    # the transfer fine-tunes chapter 06's pre-trained weights: loaded, not trained again
    assert (ckpt / "last.pt").stat().st_mtime_ns == stamp
    assert not (P.run_dir / "checkpoints" / "calibrate").exists()
    head = bench.headline()
    net, sf = head.loc["resnet"], head.loc["sf"]
    assert (net["seeds"], net["in-sample seeds"], net["folds"], net["folds ions seen"]) == (2, 1, 3, 2)
    for col in ("ions seen", "all folds", "in-sample"):
        assert np.isfinite(net[f"{col} (pp)"]) and net[f"{col} (pp)"] > 0
    assert net["ions seen spread"] > 0 and net["all folds spread"] > 0  # two seeds fine-tune differently
    assert np.isnan(net["in-sample spread"]) and net["NaN points"] == 0
    n_mg_feed = len(three_feeds.subset(["synth/MgCl2"]))
    assert (sf["seeds"], sf["folds not predicted"], sf["NaN points"]) == (
        1,
        1,
        n_mg_feed,
    )  # no friction factor for Mg2+
    assert bench.best(["resnet", "sf"]) == "resnet"  # SF's mean leaves a fold out: not comparable
    assert comparison.best_by_kind(bench, ["resnet", "sf"]) == {"mechanistic": None, "learned": "resnet"}

    table = comparison.table1([], bench)
    assert list(table.index) == [comparison.label(n) for n in comparison.ROWS]
    row = table.loc[comparison.LABELS["resnet"]]
    assert row["real all folds (pp)"] == pytest.approx(net["all folds (pp)"])
    assert row["real ions seen spread (pp)"] == pytest.approx(net["ions seen spread"])
    assert row["real seeds"] == "2 (in-sample 1)" and np.isnan(row["virtual test error (pp)"])
    assert "1 of 3 folds wholly" in table.loc[comparison.LABELS["sf"], "note"]

    comparison.save_results([], tmp_path / "results", bench)
    points, runs = comparison.load_results(tmp_path / "results")
    assert (points.split == "real").sum() == (bench.points.split == "transfer").sum()
    key = "synth/MgCl2"
    loaded = comparison.load_transfer_model(runs, "resnet", key, seed=1)
    scored = bench.points.query("model == 'resnet' and seed == 1 and fold == @key")
    again = transfer.predict_points(three_feeds.subset([key]), loaded)
    np.testing.assert_allclose(again.R_pred, scored.R_pred, rtol=1e-6)
    with pytest.raises(KeyError, match="seed 7"):
        comparison.load_transfer_model(runs, "resnet", key, seed=7)
    fig = transfer.plot(bench, three_feeds, ["sf", "resnet"], n_points=5)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(three_feeds.feed_keys)


def test_family_rows_calibrate_the_family_network_in_stages_and_join_table1(tiny_splits, tmp_path):
    P = profiles.Profile("smoke", root=tmp_path)  # its own family set and checkpoint, beside no other run
    code_only, both = comparison.run_family(tiny_splits, P)
    assert (code_only.name, both.name) == comparison.FAMILY
    assert [s["stage"] for s in code_only.info["stages"]] == ["code"]
    assert [s["stage"] for s in both.info["stages"]] == ["code", "code + weights"]
    # the same start and the same stage (a): the two rows share their code stage, then (b) moves the weights
    assert code_only.info["stages"][0]["code"] == both.info["stages"][0]["code"]
    assert code_only.info["stages"][0]["in_sample_pp"] != both.info["stages"][1]["in_sample_pp"]
    for row in (code_only, both):
        assert set(row.virtual.feed_id) == set(tiny_splits.virtual_test.feed_keys)
        assert np.isfinite(row.virtual.R_pred).all() and row.real is None and row.parameters.endswith("+ 20")
    assert (tmp_path / "runs" / "smoke" / "checkpoints" / "family" / "neural_ode" / "best.pt").exists()
    t = comparison.table1([code_only, both], n_boot=50)
    assert np.isfinite(t.loc[[comparison.LABELS[n] for n in comparison.FAMILY], "virtual test error (pp)"]).all()
