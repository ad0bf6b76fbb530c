"""nanoutils.models baselines (issue 8): ResNet, U-Net and PINN."""

import numpy as np
import pytest
import torch
from networks import Z, batch, lively

from nanoutils import dspmde, env, ions, models, sampling, training
from nanoutils.training_data import TransportData

BASELINES = ("resnet", "unet", "pinn")


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_forward_keeps_charge_balance_masking_and_feed_at_zero_flux(name, dtype, tol):
    torch.manual_seed(0)
    model = lively(models.build(name, "smoke")).to(dtype)
    feed, mask = batch(8)  # float64 feed, as the neural ODE's tests
    flux = torch.cat([torch.zeros(8, 1), torch.linspace(1e-6, 3.5e-5, 20).expand(8, -1)], 1).to(dtype)
    with torch.no_grad():
        c = model(feed, mask, flux)
    assert c.shape == (8, 21, 12) and c.dtype == dtype
    assert torch.all(c.permute(0, 2, 1)[~mask] == 0), "absent species must be exactly 0"
    assert torch.equal(c[:, 0], feed.to(dtype)), "c(Jv = 0) must be the feed"
    change = ((c[:, -1] - feed.to(dtype)).abs().sum(-1) / feed.to(dtype).sum(-1)).min()
    assert change > 0.005, "the test needs outputs that actually move"
    assert models.charge_imbalance(c.double(), Z).max() <= tol


def test_unet_interpolates_its_grid_linearly():
    torch.manual_seed(0)
    model = lively(models.build("unet", "smoke")).double()
    feed, mask = batch(2)
    cfg = model.config
    grid_flux = (model.grid * cfg.flux_scale).expand(2, -1)
    mid_flux = 0.5 * (grid_flux[:, 3:4] + grid_flux[:, 4:5])
    with torch.no_grad():
        c_grid, c_mid = model(feed, mask, grid_flux), model(feed, mask, mid_flux)
    tau = model.grid
    a = torch.where(mask, feed, 1.0)

    def du(c, t):  # the projected Δu, from the output
        return (c / a[:, None] - mask[:, None].double()) / t

    expect = 0.5 * (du(c_grid[:, 3:4], tau[3]) + du(c_grid[:, 4:5], tau[4]))
    torch.testing.assert_close(du(c_mid, 0.5 * (tau[3] + tau[4])), expect, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_parameter_counts_match_the_neural_ode(profile):
    ref = models.n_parameters(models.build("neural_ode", profile))
    for name in BASELINES:
        n = models.n_parameters(models.build(name, profile))
        assert abs(n - ref) / ref <= 0.15, (name, profile, n, ref)
    if profile == "paper":
        assert all(1.0e6 <= models.n_parameters(models.build(n, "paper")) <= 1.2e6 for n in BASELINES)


@pytest.mark.parametrize("name", BASELINES)
def test_spec_round_trip_and_config_errors(name):
    env.seed_everything(0)
    overrides = {"membrane": {"X_d": -30.0}, "collocation": 3} if name == "pinn" else {}
    model = models.build(name, "smoke", flux_degree=3, **overrides)
    spec = models.spec(model)
    assert spec["name"] == name
    clone = models.from_spec(spec)
    assert clone.config == model.config
    clone.load_state_dict(model.state_dict())
    feed, mask = batch(2, dtype=torch.float32)
    flux = torch.full((2, 1), 1e-5)
    with torch.no_grad():
        torch.testing.assert_close(clone(feed, mask, flux), model(feed, mask, flux))
    with pytest.raises(ValueError, match="width"):
        models.build(name, width=0)
    if name == "unet":
        with pytest.raises(ValueError, match="divisible"):
            models.build(name, grid_points=10)
    if name == "pinn":
        with pytest.raises(ValueError, match="physics_weight"):
            models.build(name, physics_weight=-1.0)
        with pytest.raises(ValueError):
            models.build(name, membrane={"r_p": -1.0})


def _closed_form_data(n=8, seed=0):
    """Permeate c_f (1 − ½ τ): neutral for a neutral feed, the same rejection ½ τ for every ion."""
    comp = sampling.sobol_compositions(n, seed=seed)
    flux = np.broadcast_to(np.array([1 / 6, 0.5, 1.0]) * models.FLUX_SCALE_M_S, (n, 3)).copy()
    perm = comp.concentration[:, None, :] * (1 - 0.5 * flux / models.FLUX_SCALE_M_S)[..., None]
    return TransportData(feed=comp.concentration, species_mask=comp.mask, flux=flux, permeate=perm)


@pytest.mark.parametrize("name", BASELINES)
def test_training_decreases_the_loss(name):
    data = _closed_form_data()
    env.seed_everything(0)
    overrides = {"collocation": 2} if name == "pinn" else {}
    model = models.build(name, "smoke", **overrides)
    before = training.evaluate(model.float(), data)
    cfg = training.TrainConfig.for_profile("smoke", epochs=15, batch_size=4, lr=1e-2, patience=None)
    result = training.train(model, data, config=cfg, progress=False, device="cpu")
    after = training.evaluate(result.model, data)
    assert after < 0.5 * before, (before, after)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_pinn_residual_is_zero_for_dspmde_and_positive_when_perturbed():
    feed, mask = batch(4, seed=3)
    model = models.build("pinn", "smoke", collocation=3).double()
    fluxes = model.collocation_fluxes()
    exact = dspmde.solve(feed.numpy(), fluxes, membrane=dspmde.Membrane.nf270(), species=ions.species())
    assert exact.converged.all()
    ref = torch.as_tensor(model.physics_labels(feed))
    torch.testing.assert_close(ref, torch.as_tensor(exact.permeate), rtol=0, atol=0)
    pred = torch.as_tensor(exact.permeate.copy())
    assert models.rejection_residual(feed, mask, pred, ref) <= 1e-10
    j = mask[0].nonzero()[0, 0]
    pred[0, 1, j] += 0.1 * feed[0, j]  # a rejection error of 0.1 at one point
    res = models.rejection_residual(feed, mask, pred, ref)
    n_points = int(mask.sum()) * len(fluxes)
    torch.testing.assert_close(res, torch.tensor(0.01 / n_points, dtype=torch.float64), rtol=1e-10, atol=0)


def test_pinn_auxiliary_loss_uses_the_configured_membrane_and_the_cache():
    feed, mask = batch(3, seed=1)
    inputs = {"feed": feed, "species_mask": mask}
    env.seed_everything(0)
    model = models.build("pinn", "smoke", collocation=2).double()
    loss = model.auxiliary_loss(inputs, feed.new_zeros(()))
    assert loss > 0 and loss.requires_grad
    assert len(model._labels) == 3
    model.auxiliary_loss(inputs, feed.new_zeros(()))
    assert len(model._labels) == 3  # cached, not solved again
    other = models.build("pinn", "smoke", collocation=2, membrane={"X_d": -5.0}).double()
    assert not np.allclose(other.physics_labels(feed), model.physics_labels(feed))
    off = models.build("pinn", "smoke", physics_weight=0.0)
    assert off.auxiliary_loss(batch, feed.new_zeros(())) == 0 and not off._labels
