"""The membrane family: its prior, Pitzer–Kim labels, the membrane code as a model input, code inference."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from nanoutils import dspmde, ions, membrane_calibration, membrane_family, models, pretraining_set, sampling
from nanoutils.training import TrainConfig, predict_dataset
from nanoutils.training_data import TransportData


def test_prior_covers_the_reference_and_every_fitted_membrane():
    for source, params in {"reference": membrane_family.REFERENCE.values, **membrane_family.FITTED}.items():
        for name, value in params.items():
            p = membrane_family.PRIOR[name]
            assert p.lo <= value <= p.hi, f"{source}: {name} = {value} outside the prior [{p.lo}, {p.hi}]"
    assert all(p.reason and p.lo < p.hi for p in membrane_family.PRIOR.values())


def test_code_round_trips_and_draws_lie_inside_the_prior():
    draws = membrane_family.draw(16, seed=3)
    codes = np.array([m.code() for m in draws])
    assert codes.shape == (16, membrane_family.N_CODE) and np.abs(codes).max() <= 1.0
    assert len(np.unique(codes, axis=0)) == 16
    for m in draws[:4]:
        back = membrane_family.from_code(m.code()).values
        assert all(np.isclose(back[k], v, rtol=1e-12, atol=1e-12) for k, v in m.values.items())
    assert membrane_family.outside_prior(np.full(membrane_family.N_CODE, 1.5)) == list(membrane_family.NAMES)


def test_reference_membrane_reproduces_the_single_membrane_labels_exactly():
    comp = sampling.sobol_compositions(6, seed=1)
    fluxes = sampling.flux_grid(3)
    ref = membrane_family.REFERENCE.solve_options()
    assert ref["isotherm"] is None and ref["partition_energy"] is None
    family = sampling.label_with_dspmde(comp, fluxes, **ref)
    single = sampling.label_with_dspmde(comp, fluxes, membrane=dspmde.Membrane.nf270())
    assert np.array_equal(family[0], single[0], equal_nan=True) and np.array_equal(family[1], single[1])
    decoded = membrane_family.from_code(membrane_family.REFERENCE.code()).solve_options()  # via the code: round-off
    again = sampling.label_with_dspmde(comp, fluxes, **decoded)
    assert np.allclose(again[0], single[0], rtol=1e-9, atol=1e-12)


def test_langmuir_with_freundlich_factor_reduces_to_each_isotherm():
    c = np.array([[20.0, 5.0, 30.0, 0.0]])  # Na+, Mg2+, Cl-, SO4-2
    species = ("Na+", "Mg2+", "Cl-", "SO4-2")
    both = dspmde.ChargeIsotherm.langmuir(0.0, {"Mg2+": 0.1}, n=0.4).charge(-50.0, c, species)
    assert np.allclose(both, dspmde.ChargeIsotherm.freundlich(0.4).charge(-50.0, c, species), rtol=1e-14)
    plain = dspmde.ChargeIsotherm.langmuir(30.0, {"Mg2+": 0.1}).charge(-50.0, c, species)
    assert np.allclose(plain, -50.0 + 30.0 * 2 * 0.5 / 1.5)  # K c = 0.5, z = 2


@pytest.mark.parametrize("c_mM", [100.0, 500.0])
def test_pitzer_raises_nacl_rejection_at_high_ionic_strength_and_agrees_at_dilution(c_mM):
    # γ < 1 in the concentrated feed, closer to 1 in the ion-poor pore: ln γ_out − ln γ_pore < 0 lowers partitioning
    with warnings.catch_warnings():
        warnings.simplefilter("error", dspmde.ConvergenceWarning)
        r = {
            (c, a): dspmde.solve([ions.Feed.from_salts(f"NaCl {c} mM")], [1e-5], activity=a).rejection[0, 0]
            for c in (0.1, c_mM)
            for a in ("ideal", "pitzer")
        }
    assert np.abs(r[0.1, "pitzer"] - r[0.1, "ideal"]).max() < 1e-3
    assert (r[c_mM, "pitzer"] - r[c_mM, "ideal"]).min() > 0.02


def test_cache_key_holds_the_prior_and_activity_and_the_single_ideal_key_is_unchanged(monkeypatch):
    single = pretraining_set.PretrainingSpec(n_compositions=8, n_flux=2)
    assert not {"activity", "family", "membrane_block"} & set(single.metadata())
    assert single.file_name() == "pretraining.npz"
    pitzer = replace(single, activity="pitzer")
    family = replace(pitzer, family=True)
    keys = [s.metadata() for s in (single, pitzer, family)]
    assert keys[0] != keys[1] != keys[2] and family.file_name() == "pretraining_family_pitzer.npz"
    wider = dict(membrane_family.PRIOR, X_d=membrane_family.PRIOR["X_d"]._replace(hi=100.0))
    monkeypatch.setattr(membrane_family, "PRIOR", wider)
    assert family.metadata() != keys[2], "a changed prior must miss the cache"


def test_family_set_carries_codes_and_splits_by_whole_membrane(tmp_path):
    spec = pretraining_set.PretrainingSpec(n_compositions=20, n_flux=2, family=True, membrane_block=4, seed=2)
    data = pretraining_set.pretraining_set(spec, tmp_path, verbose=False)
    assert data.code.shape == (len(data), membrane_family.N_CODE)
    assert len(np.unique(data.code, axis=0)) == 5
    parts = pretraining_set.split(data, spec)
    seen = [{tuple(r) for r in parts[k].code} for k in ("train", "val", "test")]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    again = TransportData.load(tmp_path / spec.file_name())
    assert np.array_equal(again.code, data.code)


def _tiny(n_code: int) -> models.NeuralODE:
    torch.manual_seed(0)
    cfg = models.NeuralODEConfig(
        width=16, species=("Na+", "Mg2+", "Cl-"), membrane_code=n_code, method="rk4", step_size=0.1
    )
    return models.NeuralODE(cfg).double()


def test_a_model_without_code_input_is_unchanged_and_rejects_codes():
    plain = models.NeuralODE(models.NeuralODEConfig(width=8, species=("Na+", "Cl-")))
    assert not any("code" in k for k in plain.state_dict())
    feed = torch.tensor([[10.0, 10.0]], dtype=torch.float64)
    with pytest.raises(models.ModelInputError, match="without a membrane-code input"):
        plain(feed, feed > 0, torch.tensor([[1e-5]]), None, torch.zeros(1, 2))


def test_nan_code_rows_take_the_models_own_code():
    model = _tiny(2)
    with torch.no_grad():
        model.code.own.copy_(torch.tensor([0.3, -0.7], dtype=torch.float64))
    feed = torch.tensor([[10.0, 1.0, 12.0], [10.0, 1.0, 12.0]], dtype=torch.float64)
    flux = torch.tensor([[1e-5, 3e-5]] * 2, dtype=torch.float64)
    code = torch.tensor([[float("nan")] * 2, [0.3, -0.7]], dtype=torch.float64)
    out = model(feed, feed > 0, flux, None, code)
    # rows of one batch agree to round-off (the split first layer may sum rows in another order), not bit for bit
    torch.testing.assert_close(out[0], out[1], rtol=1e-12, atol=0.0)
    assert torch.equal(out, model(feed, feed > 0, flux))
    assert not torch.equal(out[0], model(feed, feed > 0, flux, None, torch.zeros(2, 2, dtype=torch.float64))[0])


def test_code_only_calibration_recovers_the_code_of_data_the_network_made_and_leaves_weights_alone():
    model = _tiny(2)
    comp = sampling.random_mixtures(12, np.random.default_rng(0), ("Na+", "Mg2+", "Cl-"), c_min=1.0, c_max=100.0)
    flux = np.tile(sampling.flux_grid(4), (12, 1))
    truth = np.array([0.4, -0.5])
    data = TransportData(comp.concentration, comp.mask, flux, np.zeros((12, 4, 3)), species=comp.species)
    data.permeate = predict_dataset(model, replace(data, code=np.tile(truth, (12, 1)))).numpy()
    weights = {k: v.clone() for k, v in model.state_dict().items() if "code" not in k}
    cfg = TrainConfig(epochs=150, batch_size=12, lr=5e-2, dtype="float64", restore_best=False, threads=1)
    membrane_calibration.infer_code(model, data, np.zeros(2), cfg, free=np.ones(2, bool))
    assert np.abs(model.code.own.detach().numpy() - truth).max() < 0.03
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    model2 = _tiny(2)
    membrane_calibration.infer_code(model2, data, np.zeros(2), replace(cfg, epochs=5), free=np.array([True, False]))
    assert model2.code.own.detach()[1] == 0.0, "a frozen code entry keeps its start value"


def test_identifiable_code_entries_follow_the_ions_in_the_data():
    free = dict(zip(membrane_family.NAMES, membrane_calibration.identifiable(("Na+", "Mg2+", "Cl-")), strict=True))
    assert free["r_p"] and free["sites"] and free["K[Mg2+]"] and free["dW[Cl-]"]
    assert not free["K[Ca2+]"] and not free["dW[SO4-2]"]
    no_binding = membrane_calibration.identifiable(("Na+", "Cl-"))
    assert not no_binding[membrane_family.NAMES.index("sites")] and no_binding[membrane_family.NAMES.index("n")]


def test_concatenated_sets_give_rows_without_a_code_the_models_own():
    feed = np.array([[10.0, 10.0]])
    plain = TransportData(feed, feed > 0, np.array([[1e-5]]), np.full((1, 1, 2), 5.0), species=("Na+", "Cl-"))
    coded = replace(plain, code=np.array([[0.2, -0.1, 0.4]]))
    both = TransportData.concat([plain, coded])
    assert np.isnan(both.code[0]).all() and np.array_equal(both.code[1], coded.code[0])
    with pytest.raises(ValueError, match="neither finite nor all NaN"):
        replace(plain, code=np.array([[np.nan, 0.0, 0.0]]))


def test_the_start_code_is_fitted_once_per_rows_profile_seed_and_activity(monkeypatch):
    from types import SimpleNamespace

    from nanoutils import fitting, measurements

    calls = []

    def fake_fit(meas, **kwargs):
        calls.append(kwargs["seed"])
        return SimpleNamespace(params={**fitting.PAPER_TABLE2, "X_d": -100.0 - kwargs["seed"]})

    monkeypatch.setattr(fitting, "fit", fake_fit)
    monkeypatch.setattr(membrane_calibration, "_STARTS", {})
    meas = measurements.load_dataset("nf270_fdl2021")
    one, two = meas.subset(meas.feed_keys[:2]), meas.subset(meas.feed_keys[1:])
    a = membrane_calibration.start_code(one, "smoke", 0, "pitzer")
    a[:] = 9.0  # a caller changing its copy does not change the memo
    again = membrane_calibration.start_code(one, "smoke", 0, "pitzer")
    assert calls == [0] and not np.array_equal(again, a)
    assert np.array_equal(again, membrane_family.from_fit({**fitting.PAPER_TABLE2, "X_d": -100.0}).code())
    for args in [(two, "smoke", 0, "pitzer"), (one, "smoke", 1, "pitzer"), (one, "smoke", 0, "ideal")]:
        membrane_calibration.start_code(*args)
    assert len(calls) == 4


def test_calibration_refuses_test_feeds_it_calibrates_on():
    from nanoutils import measurements, transfer

    meas = measurements.load_dataset("nf270_fdl2021")
    with pytest.raises(transfer.LeakageError, match=f"{meas.feed_keys[0]}.*reached the calibration data"):
        membrane_calibration.calibrate(
            _tiny(membrane_family.N_CODE), meas, profile="smoke", test=meas.subset(meas.feed_keys[:1])
        )


def test_the_family_set_has_its_own_sizes_in_every_profile():
    from nanoutils import profiles

    for name in profiles.PROFILES:
        knob = profiles.get(name).settings.family_set
        spec = pretraining_set.PretrainingSpec.for_profile(name, family=True, activity="pitzer")
        assert (spec.n_compositions, spec.n_flux, spec.membrane_block) == tuple(knob.values())
        assert len(spec.membranes()) == -(-knob["compositions"] // knob["membrane_block"])
        single = pretraining_set.PretrainingSpec.for_profile(name)
        assert not single.family and single.n_compositions == profiles.get(name).settings.pretraining_compositions


def test_code_inference_keeps_the_site_density_physical_where_the_data_would_push_it_negative():
    torch.manual_seed(0)
    cfg = models.NeuralODEConfig(
        width=16,
        species=("Na+", "Mg2+", "Cl-"),
        membrane_code=membrane_family.N_CODE,
        method="rk4",
        step_size=0.1,
    )
    model = models.NeuralODE(cfg).double()
    comp = sampling.random_mixtures(12, np.random.default_rng(1), cfg.species, c_min=1.0, c_max=100.0)
    flux = np.tile(sampling.flux_grid(4), (12, 1))
    sites = membrane_family.NAMES.index("sites")
    truth = np.zeros(membrane_family.N_CODE)
    truth[sites] = -2.0  # data made by the network at a negative site density
    data = TransportData(comp.concentration, comp.mask, flux, np.zeros((12, 4, 3)), species=comp.species)
    data.permeate = predict_dataset(model, replace(data, code=np.tile(truth, (12, 1)))).numpy()
    free = np.zeros(membrane_family.N_CODE, bool)
    free[sites] = True
    tcfg = TrainConfig(epochs=40, batch_size=3, lr=1e-1, dtype="float64", threads=1)  # 4 steps an epoch
    start = np.zeros(membrane_family.N_CODE)
    below: list[float] = []

    def watch(*_):  # before every optimiser step: the state the last step (and its projection) left
        below.append(float(model.code.own.detach()[sites]))

    handle = register_optimizer_step_pre_hook(watch)
    try:
        unbounded = np.full(membrane_family.N_CODE, -np.inf)
        membrane_calibration.infer_code(model, data, start, tcfg, free=free, floor=unbounded)
        assert min(below) < -1.2, "unbounded, the code follows the data below Γ = 0"
        below.clear()
        membrane_calibration.infer_code(model, data, start, tcfg, free=free)
    finally:
        handle.remove()
    assert len(below) == 160 and min(below) == -1.0, "by default every step stops at Γ = 0 (code −1)"
    assert (
        model.code.own.detach()[sites] == -1.0 and membrane_family.outside_prior(model.code.own.detach().numpy()) == []
    )


def test_test_feeds_are_only_scored_after_each_stage():
    from nanoutils import measurements

    meas = measurements.load_dataset("nf270_fdl2021")
    train, test = meas.subset(meas.feed_keys[1:]), meas.subset(meas.feed_keys[:1])
    torch.manual_seed(0)
    base = models.build("neural_ode", "smoke", membrane_code=membrane_family.N_CODE)
    start = np.zeros(membrane_family.N_CODE)
    kwargs = {"profile": "smoke", "start": start, "weights": False, "threads": 1}
    a, stages_a = membrane_calibration.calibrate(models.clone(base), train, test=test, **kwargs)
    b, stages_b = membrane_calibration.calibrate(models.clone(base), train, **kwargs)
    assert torch.equal(a.code.own, b.code.own) and not torch.equal(a.code.own, base.code.own)
    assert stages_b[0].held_out is None and stages_a[0].in_sample.value == stages_b[0].in_sample.value
    assert stages_a[0].held_out.n_feeds == 1 and np.isfinite(stages_a[0].to_dict()["held_out_pp"])
