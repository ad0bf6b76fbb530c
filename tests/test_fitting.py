"""DSPM-DE parameter fitting (eq. 11): recovery of known Z, row-order invariance, penalties, bad inputs."""

import numpy as np
import pandas as pd
import pytest

from nanoutils import dspmde, fitting, ions, measurements, report

TRUE = {"r_p": 0.55e-9, "dx_e": 2.0e-6, "eps_p": 40.0, "X_d": -30.0}
# A design that identifies all four parameters (Gauss-Newton σ/value at σ_R = 0.01: r_p 3 %, Δx_e 18 %,
# ε_p 0.8 %, X_d 6 %): dilute and concentrated NaCl for the charge, divalent ions and a trace co-ion for
# Born/steric exclusion, fluxes to 100 µm/s for the thickness. With it seeds 0-5 all recover Z to 1e-4.
FEEDS = {
    "NaCl-1": "NaCl 1 mM",
    "NaCl-100": "NaCl 100 mM",
    "Na2SO4": "Na2SO4 10 mM",
    "MgCl2": "MgCl2 10 mM",
    "mix": "NaCl 10 mM + MgSO4 5 mM",
    "trace": "Na2SO4 10 mM + NaCl 1 mM",
}
FLUXES_UM_S = (1.0, 5.0, 25.0, 100.0)
K_FILM = 4e-5  # m/s, for the one observed feed


def synthetic_csv(path, params=TRUE, sigma=0.01, spec=fitting.Spec(), feeds=FEEDS, fluxes_um_s=FLUXES_UM_S):
    """Noise-free rejections from DSPM-DE itself (variant ``spec``; the feed "mix" observed with a film), schema CSV."""
    model = spec.model(params)
    rows = []
    for feed_id, recipe in feeds.items():
        feed = ions.Feed.from_salts(recipe)
        observed = feed_id == "mix"
        res = model.solve(
            [feed], np.array(fluxes_um_s) * 1e-6, temperature=293.15, film=dspmde.Film(k=K_FILM) if observed else None
        )
        for m, jv in enumerate(fluxes_um_s):
            for i, ion in enumerate(res.species):
                rows.append(
                    {
                        "study": "synth",
                        "feed_id": feed_id,
                        "membrane": "test",
                        "T_C": 20,
                        "feed_mol_m3": "; ".join(f"{k}={v:.17g}" for k, v in feed.items()),
                        "rejection_type": "observed" if observed else "intrinsic",
                        "quantity": ion,
                        "Jv_um_s": jv,
                        "R_frac": repr(float(res.rejection[0, m, i])),
                        "sigma_R_frac": sigma,
                        "source": "synthetic test data",
                        "x_k_film_m_s": K_FILM if observed else "",
                    }
                )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return measurements.load_measurements(synthetic_csv(tmp_path_factory.mktemp("synth") / "synth.csv"))


def test_objective_is_zero_at_the_generating_parameters_and_matches_predictions(synth):
    obj = fitting.Objective(synth)
    assert obj.n_points == len(synth)
    assert obj.chi2(fitting.membrane(TRUE)) < 1e-10
    other = fitting.membrane({**TRUE, "X_d": -60.0})
    frame = fitting.predictions(synth, other)
    assert obj.chi2(other) == pytest.approx(float((frame["residual"] ** 2).sum()), rel=1e-12)
    assert obj.chi2(other) > 10.0


def test_fit_recovers_known_parameters_from_a_random_start(synth):
    result = fitting.fit(synth, seed=0, anneal_maxiter=20, nm_maxiter=300)
    start = result.start
    assert all(abs(start[n] / TRUE[n] - 1) > 0.02 for n in fitting.PARAMETERS)  # a real start, not the answer
    for name in fitting.PARAMETERS:
        assert result.params[name] == pytest.approx(TRUE[name], rel=0.02), name
    assert result.n_unconverged == 0
    assert result.trace["best"].is_monotonic_decreasing
    assert set(result.trace["phase"]) >= {"start", "annealing", "nelder-mead"}
    assert all(np.isfinite(list(result.stderr.values())))


def test_fit_is_invariant_to_row_order(tmp_path):
    path = synthetic_csv(tmp_path / "a.csv", params={**TRUE, "X_d": -45.0})
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    shuffled = tmp_path / "b.csv"
    table.sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)
    a = fitting.fit(
        measurements.load_measurements(path), seed=1, anneal_maxiter=2, nm_maxiter=20, with_uncertainty=False
    )
    b = fitting.fit(
        measurements.load_measurements(shuffled), seed=1, anneal_maxiter=2, nm_maxiter=20, with_uncertainty=False
    )
    assert a.params == b.params
    assert a.chi2 == b.chi2
    assert a.trace["objective"].tolist() == b.trace["objective"].tolist()


def test_unconverged_cases_get_the_penalty_and_are_counted(synth, monkeypatch):
    real_solve = dspmde.solve

    def failing_solve(*args, **kwargs):
        res = real_solve(*args, **kwargs)
        res.converged[0, 0] = False
        res.permeate[0, 0] = np.nan
        return res

    obj = fitting.Objective(synth)
    monkeypatch.setattr(dspmde, "solve", failing_solve)  # the module the objective calls through
    r, n_bad = obj.residuals(fitting.membrane(TRUE))
    a = obj.arrays
    # each solve group's first feed loses its first flux point: every quantity measured there is penalised
    expected = sum(int(a.mask[g[0][0], np.flatnonzero(g[2][0] == 0)].sum()) for g in obj.groups)
    assert n_bad == expected > 0
    big = np.abs(r) > 1.0
    assert big.sum() == n_bad
    np.testing.assert_allclose(np.abs(r[big]), fitting.PENALTY_R / 0.01)


def test_bad_inputs_raise_clear_errors(synth, tmp_path):
    with pytest.raises(fitting.FitError, match="r_p.*lower < upper"):
        fitting.fit(synth, bounds={"r_p": (1e-9, 0.5e-9)})
    with pytest.raises(fitting.FitError, match="unknown parameter 'zeta'"):
        fitting.fit(synth, bounds={"zeta": (0.0, 1.0)})
    with pytest.raises(fitting.FitError, match="dx_e.*> 0"):
        fitting.check_bounds({"dx_e": (0.0, 1e-6)})
    with pytest.raises(fitting.FitError, match="empty"):
        fitting.fit(synth.subset([]))
    with pytest.raises(fitting.FitError, match="outside the bounds"):
        fitting.fit(synth, start={**TRUE, "X_d": -1000.0})
    with pytest.raises(fitting.FitError, match="≥ 0"):
        fitting.fit(synth, anneal_maxiter=-1)
    no_film = pd.read_csv(synthetic_csv(tmp_path / "f.csv"), keep_default_na=False, dtype=str).drop(
        columns="x_k_film_m_s"
    )
    no_film.to_csv(tmp_path / "g.csv", index=False)
    with pytest.raises(fitting.FitError, match="synth/mix.*x_k_film_m_s"):
        fitting.Objective(measurements.load_measurements(tmp_path / "g.csv"))


def test_table2_and_performance_tables(synth):
    res = fitting.fit(synth, start=TRUE, anneal_maxiter=0, nm_maxiter=0)
    table = fitting.table2({"synthetic": res})
    assert list(table["paper"]) == pytest.approx([0.51, 1.27, 43.56, -51.23])
    assert table.loc[table.parameter == "r_p", "synthetic"].item() == pytest.approx(0.55)
    by_feed, by_ion = fitting.performance(synth, {"true": res.membrane, "paper": dspmde.Membrane.nf270()})
    assert by_feed.loc["all", "true"] == pytest.approx(0.0, abs=1e-6)
    assert by_feed.loc["all", "paper"] > 1.0
    assert set(by_ion.index) == set(synth.table["quantity"])
    md = report.markdown(table)
    assert md.startswith("| parameter | unit | paper |") and md.count("\n") == 6


# Charge isotherm. Mg²⁺ binds on Γ = 30 mol/m³ of sites with K = 0.1 m³/mol on a membrane of X_d = −30 mol/m³:
# the charge is −20 mol/m³ in 2 mM MgCl2 and reverses to +10 in 20 mM, which no constant X_d can follow (the
# NaCl-traced MgCl2 feeds mimic the real NF270 set). Data at 20 °C with the Stokes–Einstein temperature model.
LANGMUIR = fitting.Spec("langmuir", ("Mg2+",), "stokes_einstein")
TRUE_LANGMUIR = {**TRUE, "sites": 30.0, "K[Mg2+]": 0.1}
FEEDS_MG = {
    "NaCl-1": "NaCl 1 mM",
    "NaCl-100": "NaCl 100 mM",
    "MgCl2-2": "MgCl2 2 mM + NaCl 1 mM",
    "MgCl2-20": "MgCl2 20 mM + NaCl 1 mM",
    "trace": "Na2SO4 10 mM + NaCl 1 mM",
}
FLUXES_MG_UM_S = (2.0, 20.0, 100.0)


@pytest.fixture(scope="module")
def synth_mg(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth_mg") / "mg.csv"
    return measurements.load_measurements(
        synthetic_csv(path, TRUE_LANGMUIR, spec=LANGMUIR, feeds=FEEDS_MG, fluxes_um_s=FLUXES_MG_UM_S)
    )


def test_langmuir_fit_follows_the_charge_reversal_that_constant_charge_cannot(synth_mg):
    obj = fitting.Objective(synth_mg)
    a = obj.arrays
    assert obj.chi2(LANGMUIR.model(TRUE_LANGMUIR)) < 1e-10
    # the temperature model reaches dspmde.solve: the same model at 25 °C diffusivities misses the data
    assert obj.chi2(fitting.Spec("langmuir", ("Mg2+",)).model(TRUE_LANGMUIR)) > 1.0
    options = dict(anneal_maxiter=0, temperature_model="stokes_einstein")
    constant = fitting.fit(synth_mg, start=TRUE, nm_maxiter=150, with_uncertainty=False, **options)
    assert constant.chi2 / constant.n_points > 50.0
    langmuir = fitting.fit(
        synth_mg, start=constant.params, nm_maxiter=250, isotherm="langmuir", binding_ions=("Mg",), **options
    )
    assert langmuir.names == fitting.PARAMETERS + ("sites", "K[Mg2+]") == tuple(langmuir.params)
    assert langmuir.chi2 < 0.5 * langmuir.n_points  # within σ on average, where constant charge is > 7σ off
    assert langmuir.start["sites"] == pytest.approx(fitting.ISOTHERM_START["sites"])
    x = dict(zip(a.feed_keys, langmuir.model.charge(a.c_feed, a.species), strict=True))
    assert x["synth/MgCl2-20"] > 0.0 > x["synth/MgCl2-2"] > x["synth/NaCl-1"] == x["synth/trace"]
    assert all(np.isfinite(list(langmuir.stderr.values()))) and langmuir.covariance.shape == (6, 6)
    table = fitting.table2({"constant": constant, "Langmuir": langmuir}).set_index("parameter")
    assert table.loc["K[Mg2+]", "unit"] == "m³/mol" and np.isnan(table.loc["sites", "constant"])
    assert table.loc["sites", "Langmuir"] == pytest.approx(langmuir.params["sites"])
    by_feed, _ = fitting.performance(synth_mg, {"constant": constant.model, "Langmuir": langmuir.model})
    assert by_feed.loc["all", "Langmuir"] < 0.2 * by_feed.loc["all", "constant"]


def test_isotherms_with_no_binding_or_exponent_reproduce_constant_charge(synth):
    obj = fitting.Objective(synth)
    other = {**TRUE, "X_d": -60.0}
    constant = obj.chi2(fitting.membrane(other))
    langmuir = fitting.Spec("langmuir", ("Mg2+", "Na+"))
    assert obj.chi2(langmuir.model({**other, "sites": 0.0, "K[Mg2+]": 1.0, "K[Na+]": 1.0})) == constant
    lowest = fitting.ISOTHERM_BOUNDS["sites"][0]  # Γ at its lower bound: ≤ 0.02 mol/m³ of charge
    bound = langmuir.model({**other, "sites": lowest, "K[Mg2+]": 1.0, "K[Na+]": 1.0})
    assert obj.chi2(bound) == pytest.approx(constant, rel=1e-3)
    assert obj.chi2(fitting.Spec("freundlich").model({**other, "n": 0.0})) == constant
    freundlich = fitting.fit(
        synth, start=TRUE, anneal_maxiter=0, nm_maxiter=0, with_uncertainty=False, isotherm="freundlich"
    )
    assert freundlich.params["n"] == 0.0 and freundlich.chi2 < 1e-10  # a Z-only start takes n = 0
    res = fitting.fit(
        synth,
        start={**other, "sites": lowest},
        anneal_maxiter=0,
        nm_maxiter=0,
        with_uncertainty=False,
        isotherm="langmuir",
        binding_ions=("Mg2+",),
        bounds={"sites": (lowest, 10.0)},
    )
    assert res.chi2 == pytest.approx(constant, rel=1e-3) and "sites" in res.at_bounds


def test_bad_isotherm_inputs_raise_errors_naming_the_value(synth):
    with pytest.raises(fitting.FitError, match="unknown isotherm 'bet'"):
        fitting.fit(synth, isotherm="bet")
    with pytest.raises(fitting.FitError, match="Ca2\\+ occur in no feed"):
        fitting.fit(synth, isotherm="langmuir", binding_ions=("Ca2+",))
    with pytest.raises(fitting.FitError, match="binding_ions.*'Xx'"):
        fitting.fit(synth, isotherm="langmuir", binding_ions=("Xx",))
    with pytest.raises(fitting.FitError, match="'langmuir' needs at least one binding ion"):
        fitting.fit(synth, isotherm="langmuir")
    with pytest.raises(fitting.FitError, match="\\('Mg2\\+',\\) apply to isotherm 'langmuir' only, not 'freundlich'"):
        fitting.fit(synth, isotherm="freundlich", binding_ions=("Mg2+",))
    with pytest.raises(fitting.FitError, match="unknown temperature_model 'arrhenius'"):
        fitting.fit(synth, temperature_model="arrhenius")
    with pytest.raises(fitting.FitError, match="unknown parameter 'K\\[Ca2\\+\\]'"):
        fitting.fit(synth, isotherm="langmuir", binding_ions=("Mg2+",), bounds={"K[Ca2+]": (1e-3, 1.0)})
    with pytest.raises(fitting.FitError, match="bounds of n must be finite"):
        fitting.fit(synth, isotherm="freundlich", bounds={"n": (1.0, -1.0)})
