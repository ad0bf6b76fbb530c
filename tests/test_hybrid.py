"""The hybrid model: a network closure (X_d, ΔW_i per feed) in front of the differentiable DSPM-DE."""

import numpy as np
import pandas as pd
import torch

from nanoutils import bundle, dspmde, fitting, hybrid, ions, measurements, models, predict, training
from nanoutils.__main__ import main
from nanoutils.training_data import TransportData

SPECIES = ions.species()
FEEDS = [
    {"Na+": 10.0, "Cl-": 30.0, "Mg2+": 10.0},
    {"Na+": 20.0, "SO4-2": 10.0},
    {"Na+": 5.0, "Cl-": 5.0},
]
FLUXES = np.array([3e-6, 1e-5, 3e-5])


def base_model() -> fitting.Model:
    """A dspmde_plus-like fit: NF270 Z, Langmuir binding of Mg2+, partition energies of three ions."""
    spec = fitting.Spec("langmuir", ("Mg2+",), partition_ions=("Na+", "Cl-", "Mg2+"))
    return spec.model(
        {**fitting.PAPER_TABLE2, "sites": 20.0, "K[Mg2+]": 0.05, "dW[Na+]": 0.4, "dW[Cl-]": -0.3, "dW[Mg2+]": 1.0}
    )


def inputs(feeds=FEEDS, fluxes=FLUXES):
    conc, _ = ions.stack([ions.Feed(f) for f in feeds], SPECIES)
    feed = torch.as_tensor(conc)
    return feed, feed > 0, torch.as_tensor(fluxes).expand(len(feeds), -1)


def hybrid_model(**overrides) -> models.HybridDSPMDE:
    cfg = models.HybridConfig(
        base=base_model().to_dict(), known_ions=("Na+", "Cl-", "Mg2+"), width=6, temperature=293.15, **overrides
    )
    return models.HybridDSPMDE(cfg).double()


def randomise_output(model: models.HybridDSPMDE, scale: float = 0.5) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.out.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def test_zero_correction_is_the_fitted_dspmde_exactly():
    model = hybrid_model()
    with torch.no_grad():
        c = model(*inputs()).numpy()
    conc, _ = ions.stack([ions.Feed(f) for f in FEEDS], SPECIES)
    for n, feed in enumerate(FEEDS):
        names = [s for s in SPECIES if s in feed]
        ref = base_model().solve([feed], FLUXES, species=names, temperature=293.15, n_cells=10)
        assert ref.converged.all()
        cols = [SPECIES.index(s) for s in names]
        np.testing.assert_allclose(c[n][:, cols], ref.permeate[0], rtol=1e-9, atol=0)
        assert (np.delete(c[n], cols, axis=1) == 0).all()  # absent species exactly 0


def test_corrections_are_bounded_electroneutral_and_leave_unknown_ions_alone():
    model = hybrid_model(x_range=30.0, dw_range=1.5)
    randomise_output(model, scale=5.0)  # saturates the tanh
    feed, mask, flux = inputs()
    with torch.no_grad():
        params, dW = model.closure(feed, mask)
        c = model(feed, mask, flux)
    base = base_model()
    assert (params[:, 3] - base.membrane.X_d).abs().max() <= 30.0
    assert (params[:, 3] - base.membrane.X_d).abs().max() > 10.0  # the correction acts
    w0 = torch.tensor([base.partition_energy.get(s, 0.0) for s in SPECIES], dtype=torch.float64)
    assert (dW - w0).abs().max() <= 1.5
    unknown = [SPECIES.index(s) for s in ("SO4-2", "K+")]
    assert (dW[:, unknown] == w0[unknown]).all()  # SO4-2 was not in the calibration data: no correction
    assert (params[:, 2] == base.membrane.eps_p).all() and (params[:, 0] == base.membrane.r_p).all()
    z = torch.as_tensor(ions.charges(SPECIES), dtype=torch.float64)
    imbalance = (c * z).sum(-1).abs() / (c * z.abs()).sum(-1)
    assert torch.isfinite(c).all() and imbalance.max() < 1e-8


def test_gradients_reach_the_network_weights_as_finite_differences_say():
    model = hybrid_model(x_range=40.0, dw_range=2.0)
    randomise_output(model)
    feed, mask, flux = inputs(FEEDS[:2], FLUXES[:2])
    weight = torch.rand(2, 2, len(SPECIES), dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def loss() -> torch.Tensor:
        return (weight * model(feed, mask, flux) / feed.clamp_min(1.0)[:, None]).sum()

    model.zero_grad()
    loss().backward()
    first = model.net[0].weight
    assert first.grad is not None and first.grad.abs().max() > 0
    h = 1e-5
    for i, j in [(0, 0), (3, 5), (5, 24)]:
        with torch.no_grad():
            first[i, j] += h
            up = loss().item()
            first[i, j] -= 2 * h
            down = loss().item()
            first[i, j] += h
        np.testing.assert_allclose(first.grad[i, j].item(), (up - down) / (2 * h), rtol=2e-3, atol=1e-7)


def test_training_recovers_a_feed_dependent_charge():
    """Data from DSPM-DE with X_d = −60 + 25 log10(c / 10 mM) (NaCl, 3–30 mM); the hybrid starts from the
    constant X_d = −60 and learns the trend (exactly the same transport, so only the closure can explain it)."""
    conc = np.array([3.0, 10.0, 30.0])
    true_x = -60.0 + 25.0 * np.log10(conc / 10.0)
    feeds = [{"Na+": c, "Cl-": c} for c in conc]
    nf = dspmde.Membrane.nf270()
    perm = np.stack(
        [
            dspmde.solve([f], FLUXES[1:], membrane=nf.with_(X_d=x), species=("Na+", "Cl-"), n_cells=10).permeate[0]
            for f, x in zip(feeds, true_x, strict=True)
        ]
    )
    feed, mask, flux = inputs(feeds, FLUXES[1:])
    target = np.zeros((len(conc), len(FLUXES) - 1, len(SPECIES)))
    target[..., [SPECIES.index("Na+"), SPECIES.index("Cl-")]] = perm
    data = TransportData(feed.numpy(), mask.numpy(), flux.numpy(), target, species=SPECIES)
    base = fitting.Model(nf.with_(X_d=-60.0))
    cfg = models.HybridConfig(base=base.to_dict(), known_ions=(), width=8, x_range=40.0, reg_weight=0.0, n_cells=10)
    model = models.HybridDSPMDE(cfg)
    before = training.evaluate(model.double(), data)
    result = training.train(
        model, data, config=training.TrainConfig(epochs=50, batch_size=8, lr=0.1, dtype="float64"), progress=False
    )
    learned = hybrid.closure_frame(result.model, feeds)["X_d"].to_numpy()
    assert result.best_loss < 0.05 * before
    assert np.all(np.diff(learned) > 0)  # the trend of the truth (the start is flat)
    assert np.abs(learned - true_x).max() < 5.0  # mol/m³, against a 25 mol/m³ swing


def test_regulariser_is_the_weighted_squared_correction():
    model = hybrid_model(reg_weight=0.1)
    feed, mask, _ = inputs()
    assert model.auxiliary_loss({"feed": feed, "species_mask": mask}, None).item() == 0.0
    randomise_output(model)
    t = model.corrections(feed, mask)
    expect = 0.1 * (t**2).sum(-1).mean()
    assert torch.equal(model.auxiliary_loss({"feed": feed, "species_mask": mask}, None), expect) and expect > 0


def test_cli_calibrates_a_bundle_that_predicts_as_its_member_and_flags_an_unseen_ion(tmp_path, capsys):
    """`calibrate --model hybrid_dspmde` on a tiny CSV (one NaCl feed, the real data's rows), then `predict`."""
    real = measurements.MEASURED_DIR / "nf270_fdl2021.csv"
    lines = real.read_text().splitlines()
    data = tmp_path / "nacl.csv"
    data.write_text("\n".join([lines[0], *[r for r in lines[1:] if ",NaCl-10mM," in r][:9]]) + "\n")
    out = tmp_path / "hybrid"
    args = ["calibrate", str(data), "--model", "hybrid_dspmde", "--profile", "smoke", "--seeds", "1", "--out", str(out)]
    assert main(args) == 0
    feeds = tmp_path / "feeds.csv"
    feeds.write_text("feed_id,salts\nnacl,NaCl 10 mM + NaNO3 0.2 mM + NH4Cl 0.2 mM\nbrine,MgCl2 5 mM + NaCl 5 mM\n")
    pred = tmp_path / "pred.csv"
    assert (
        main(["predict", "--model", str(out), "--feeds-csv", str(feeds), "--flux-lmh", "50", "--out", str(pred)]) == 0
    )
    frame = pd.read_csv(pred, keep_default_na=False)
    loaded = bundle.load(out)
    assert loaded.kind == "learned" and isinstance(loaded.members[0], models.HybridDSPMDE)
    member = predict([ions.Feed.from_salts("NaCl 10 mM + NaNO3 0.2 mM + NH4Cl 0.2 mM")], [50 / 3.6e6], loaded.members)
    nacl = frame[frame["feed_id"] == "nacl"].set_index("ion")["R"]
    np.testing.assert_allclose(nacl[member["ion"]].to_numpy(), member["R"].to_numpy(), rtol=1e-9)
    assert not frame.loc[frame["feed_id"] == "nacl", "extrapolated"].any()
    brine = frame[frame["feed_id"] == "brine"]
    assert brine["why"].str.contains("Mg2+ not in calibration data", regex=False).all()
    assert "extrapolate" in capsys.readouterr().err
