"""Fine-tuning on measured data (eq. 5): measured → training data, noise, determinism, resume, ablations."""

import numpy as np
import pytest
import torch

from nanoutils import env, finetuning, measurements, models, training
from nanoutils.models import ModelInputError

SRC = "hand-made test rows"
HEADER = "study,feed_id,membrane,T_C,feed_mol_m3,rejection_type,quantity,Jv_um_s,R_frac,sigma_R_frac,source\n"
MIX = "Na+=30; Cl-=10; SO4-2=10"


def _csv(tmp_path, rows, name="m.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + f",{SRC}\n" for r in rows))
    return measurements.load_measurements(path)


def small_set(tmp_path):
    """Two mixtures (salt and ion rows, negative rejection) and one single salt, 3 fluxes each."""
    rows = []
    for fid, feed, quantities in [
        ("A", MIX, [("Na2SO4", 0.5), ("Cl-", -0.2)]),
        ("B", "Na+=20; Cl-=10; SO4-2=5", [("Na2SO4", 0.6), ("Cl-", -0.1)]),
        ("C", "Na+=10; Cl-=10", [("NaCl", 0.3)]),
    ]:
        for jv in (5, 10, 20):
            for q, r in quantities:
                rows.append(f"t,{fid},NF270,25,{feed},intrinsic,{q},{jv},{r + jv / 200},0.02")
    return _csv(tmp_path, rows)


def tiny_model(seed=3):
    env.seed_everything(seed)
    return models.build("neural_ode", "smoke", width=8)


def test_salt_quantities_map_by_equivalents(tmp_path):
    meas = _csv(
        tmp_path, [f"t,A,NF270,25,{MIX},intrinsic,Na2SO4,10,0.5,0.02", f"t,A,NF270,25,{MIX},intrinsic,Cl-,10,-0.2,0.04"]
    )
    species = models.NeuralODEConfig().species
    td = finetuning.from_measurements(meas, species)
    names = td.quantity_names()
    i_na, i_cl, i_so4 = (species.index(s) for s in ("Na+", "Cl-", "SO4-2"))
    w = td.observation[0, names.index("Na2SO4")]
    # Na2SO4: w_i = |z_i| / Σ ν|z| = 1/4 (Na+), 2/4 (SO4 2-); feed value 30/4 + 10·2/4 = 12.5 mol/m³
    assert w[i_na] == pytest.approx(0.25) and w[i_so4] == pytest.approx(0.5) and np.count_nonzero(w) == 2
    assert td.permeate[0, 0, names.index("Na2SO4")] == pytest.approx(0.5 * 12.5)
    assert td.permeate[0, 0, names.index("Cl-")] == pytest.approx(1.2 * 10)
    assert td.sigma[0, 0, names.index("Cl-")] == pytest.approx(0.04 * 10)  # σ_c = σ_R · feed value of the quantity
    c = np.zeros((1, 1, len(species)))
    c[0, 0, [i_na, i_cl, i_so4]] = [20.0, 12.0, 4.0]
    q = td.observe(c)[0, 0]
    assert q[names.index("Na2SO4")] == pytest.approx(20 / 4 + 4 * 2 / 4) and q[names.index("Cl-")] == 12.0
    frame = td.to_frame(c)
    salt = frame[frame.ion == "Na2SO4"].iloc[0]
    assert salt.R_meas == pytest.approx(0.5) and salt.R_pred == pytest.approx(1 - 7.0 / 12.5)


def test_loss_on_quantities_is_the_rejection_error(tmp_path):
    meas = small_set(tmp_path)
    model = tiny_model()
    td = finetuning.from_measurements(meas, model.config.species)
    frame = td.to_frame(training.predict_dataset(model, td).double().numpy())
    # eq. 4 with the "feed" scale on quantities = mean squared rejection error over the measured points
    expected = float(((frame.R_pred - frame.R_meas) ** 2).mean())
    assert training.evaluate(model.double(), td) == pytest.approx(expected, rel=1e-6)


def test_noise_is_drawn_per_quantity_with_the_measured_moments(tmp_path):
    td = finetuning.from_measurements(small_set(tmp_path), models.NeuralODEConfig().species)
    mu, sigma = torch.tensor(td.permeate), torch.tensor(td.sigma)
    sample = training.gaussian_targets(0)
    draws = torch.stack([sample(mu, sigma, step) for step in range(4000)])
    m = torch.tensor(td.target_mask)
    assert torch.allclose(draws.mean(0)[m], mu[m], atol=4 * float(sigma.max()) / 4000**0.5)
    assert torch.allclose(draws.std(0)[m], sigma[m], rtol=0.06)
    assert not torch.equal(draws[0], draws[1]), "a new draw every step"


def _run(meas, val, **kw):
    model = tiny_model()
    cfg = finetuning.finetune_config("smoke", epochs=3, batch_size=2)
    return finetuning.finetune(model, meas, val, profile="smoke", config=cfg, device="cpu", **kw)


def _w(model):
    return torch.cat([p.detach().ravel() for p in model.parameters()])


def test_sigma_zero_is_deterministic_and_noise_matters(tmp_path):
    """σ = 0 (targets = means, ``noise=False``; μ + 0·ε = μ exactly) gives identical runs."""
    meas = small_set(tmp_path)
    train, val = meas.subset(["t/A", "t/C"]), meas.subset(["t/B"])
    a = _run(train, val, noise=False).model
    b = _run(train, val, noise=False).model
    assert torch.equal(_w(a), _w(b))
    noisy1, noisy2 = _run(train, val).model, _run(train, val).model
    assert torch.equal(_w(noisy1), _w(noisy2)), "noise is reseeded from (seed, step): reproducible"
    assert not torch.equal(_w(noisy1), _w(a)), "σ = 0.02 noise changes the fit"


def test_resume_after_interruption_matches(tmp_path):
    meas = small_set(tmp_path)
    train, val = meas.subset(["t/A", "t/C"]), meas.subset(["t/B"])
    full = _run(train, val, run_dir=tmp_path / "full").model

    def stop(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(train, val, run_dir=tmp_path / "cut", callback=stop)
    resumed = _run(train, val, run_dir=tmp_path / "cut", resume=True).model
    assert torch.equal(_w(resumed), _w(full))
    other_start = tiny_model()
    with torch.no_grad():
        next(other_start.parameters()).add_(1e-3)  # e.g. the pre-trained model changed since the run was made
    with pytest.raises(training.CheckpointMismatchError, match="starting weights"):
        finetuning.finetune(
            other_start,
            train,
            val,
            profile="smoke",
            device="cpu",
            run_dir=tmp_path / "cut",
            resume=True,
            config=finetuning.finetune_config("smoke", epochs=3, batch_size=2),
        )


def test_predictions_are_electroneutral_and_scored(tmp_path):
    meas = small_set(tmp_path)
    model = _run(meas.subset(["t/A", "t/C"]), None).model
    score, frame = finetuning.score(model, meas)
    assert frame.imbalance.max() < 1e-5
    assert score.n_feeds == 3 and set(frame.study) == {"t"}
    assert score.value == pytest.approx(100 * (frame.R_pred - frame.R_meas).abs().mean())
    free, _ = finetuning.score(finetuning.variant("no_projection", model).model, meas)
    assert np.isfinite(free.value)


def test_mixing_simulated_data_with_identity_observation(tmp_path):
    meas = small_set(tmp_path)
    species = models.NeuralODEConfig().species
    td = finetuning.from_measurements(meas, species, weight=20.0)
    feed = np.zeros((2, len(species)))
    feed[:, [species.index("Na+"), species.index("Cl-")]] = [[5.0, 5.0], [7.0, 7.0]]
    perm = np.where(feed > 0, 0.5 * feed, 0.0)[:, None, :].repeat(2, 1)
    sim = training.TransportData(
        feed=feed, species_mask=feed > 0, flux=np.full((2, 2), 1e-5), permeate=perm, species=species
    )
    mixed = finetuning.mix_simulated(td, sim, 2)
    assert len(mixed) == 5 and mixed.weight.tolist() == [20.0] * 3 + [1.0] * 2
    q = mixed.n_targets
    assert q == max(td.n_targets, len(species))
    c = np.zeros((5, mixed.flux.shape[1], len(species)))
    c[3:, :2] = perm[:, :2]
    assert np.allclose(mixed.observe(c)[3:, :2, : len(species)], perm)  # simulated part: identity


def test_variants_build_from_the_pretrained_model():
    pre = tiny_model()
    feed = torch.zeros(1, len(pre.config.species), dtype=torch.float64)
    feed[0, :2] = torch.tensor([1.0, 0.0])
    for name in finetuning.VARIANTS:
        v = finetuning.variant(name, pre)
        assert v.noise == (name != "no_noise")
        same = torch.equal(_w(v.model), _w(pre))
        assert same == (name in ("full", "no_projection", "soft_penalty", "no_noise")), name
    soft = finetuning.variant("soft_penalty", pre).model
    assert not soft.config.project and soft.config.charge_penalty == finetuning.SOFT_PENALTY
    assert not finetuning.variant("no_masking", pre).model.config.mask_features


def test_soft_penalty_is_the_squared_relative_charge():
    model = models.build("neural_ode", "smoke", width=8, project=False, charge_penalty=2.0, species=("Na+", "Cl-"))
    batch = {"feed": torch.tensor([[10.0, 10.0]]), "flux_mask": torch.tensor([[True, False]])}
    pred = torch.tensor([[[6.0, 4.0], [100.0, 0.0]]])  # the padded point is ignored
    assert float(model.auxiliary_loss(batch, pred)) == pytest.approx(2.0 * (2.0 / 20.0) ** 2)


def test_bad_input_raises_clear_errors(tmp_path):
    meas = small_set(tmp_path)
    with pytest.raises(finetuning.FinetuneError, match="does not know"):
        finetuning.from_measurements(meas, ("Na+", "Cl-"))
    with pytest.raises(finetuning.FinetuneError, match="Measurements"):
        finetuning.from_measurements("m.csv", ("Na+", "Cl-"))
    with pytest.raises(finetuning.FinetuneError, match="unknown variant"):
        finetuning.variant("no_physics", tiny_model())
    with pytest.raises(finetuning.FinetuneError, match="measured_weight"):
        _run(meas, None, measured_weight=0.0)
    species = models.NeuralODEConfig().species
    td = finetuning.from_measurements(meas, species)
    obs = td.observation.copy()
    obs[0, 0, species.index("K+")] = 1.0
    with pytest.raises(ModelInputError, match="absent species"):
        training.TransportData(
            feed=td.feed,
            species_mask=td.species_mask,
            flux=td.flux,
            permeate=td.permeate,
            sigma=td.sigma,
            target_mask=td.target_mask,
            species=species,
            observation=obs,
        )
    with pytest.raises(ValueError, match="charge_penalty"):
        models.NeuralODEConfig(charge_penalty=-1.0)
