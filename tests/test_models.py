"""nanoutils.models: projection, neural ODE, registry and input checks."""
import numpy as np
import pytest
import torch
from numpy.polynomial import legendre

from nanoutils import env, ions, models, sampling

Z = torch.tensor(ions.charges(ions.species()), dtype=torch.float64)


def _batch(n=6, seed=0, dtype=torch.float64):
    comp = sampling.sobol_compositions(n, seed=seed)
    return torch.tensor(comp.concentration, dtype=dtype), torch.tensor(comp.mask)


def _lively(model, gain=3.0):
    """Scale the weights up so an untrained model's trajectories move far from the feed."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model


def test_projection_is_neutral_masked_and_idempotent():
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(50, 12, generator=gen, dtype=torch.float64)
    mask = torch.rand(50, 12, generator=gen) < 0.5
    mask[:, 0], mask[:, 6] = True, True  # a cation and an anion everywhere
    p = models.project_electroneutral(v, Z, mask)
    assert torch.all(p[~mask] == 0)
    assert torch.max(torch.abs(p @ Z) / (p.abs() @ Z.abs())) < 1e-14
    torch.testing.assert_close(models.project_electroneutral(p, Z, mask), p, rtol=1e-13, atol=1e-13)
    removed = v * mask - p  # what the projection took away is parallel to z on the present species
    cross = removed[:, None, :] * (Z * mask)[:, :, None] - removed[:, :, None] * (Z * mask)[:, None, :]
    assert cross.abs().max() < 1e-12


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_trajectory_keeps_charge_balance_and_absent_species_zero(dtype, tol):
    torch.manual_seed(0)
    model = _lively(models.build("neural_ode", "smoke", width=24)).to(dtype)
    feed, mask = _batch(8, dtype=dtype)
    grid = torch.linspace(0, 3e-5, 25, dtype=dtype).expand(8, -1)
    with torch.no_grad():
        c = model(feed, mask, grid)
    assert torch.all(c.permute(0, 2, 1)[~mask] == 0), "absent species must stay exactly 0"
    change = ((c[:, -1] - feed).abs().sum(-1) / feed.sum(-1)).min()
    assert change > 0.005, "the test needs trajectories that actually move"
    assert models.charge_imbalance(c, Z).max() <= tol


def test_without_projection_charge_drifts():
    torch.manual_seed(0)
    model = _lively(models.build("neural_ode", "smoke", width=24, project=False)).double()
    feed, mask = _batch(8)
    with torch.no_grad():
        c = model(feed, mask, torch.full((8, 1), 3e-5, dtype=torch.float64))
    assert models.charge_imbalance(c, Z).max() > 1e-3


def test_initial_state_is_the_feed():
    torch.manual_seed(0)
    model = _lively(models.build("neural_ode", "smoke")).double()
    feed, mask = _batch(5)
    flux = torch.tensor([[0.0, 1e-5]] * 5, dtype=torch.float64)
    with torch.no_grad():
        c = model(feed, mask, flux)
    torch.testing.assert_close(c[:, 0], feed, rtol=1e-14, atol=0)
    assert (c[:, 1] - feed).abs().max() > 1e-3


def test_padded_flux_points_are_zero_and_ignored():
    torch.manual_seed(0)
    model = models.build("neural_ode", "smoke").double()
    feed, mask = _batch(3)
    flux = torch.tensor([[1e-5, 2e-5], [1e-5, 9.0], [1e-5, float("nan")]], dtype=torch.float64)
    fmask = torch.tensor([[True, True], [True, False], [True, False]])
    with torch.no_grad():
        c = model(feed, mask, flux, fmask)
        alone = model(feed[:1], mask[:1], flux[:1, :1])
    assert torch.all(c[1:, 1] == 0)
    torch.testing.assert_close(c[0, 0], alone[0, 0], rtol=1e-3, atol=1e-6)


def test_adjoint_and_direct_gradients_agree():
    feed, mask = _batch(3)
    flux = torch.tensor([[5e-6, 2e-5], [1e-5, 3e-5], [2.5e-5, 3e-5]], dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(3)
        model = _lively(models.build("neural_ode", "smoke", width=8, adjoint=adjoint, rtol=1e-10, atol=1e-12), 2.0)
        model.double()
        loss = (model(feed, mask, flux) ** 2 / feed.sum(-1)[:, None, None]).sum()
        loss.backward()
        grads.append(torch.cat([p.grad.ravel() for p in model.parameters()]))
    assert grads[0].abs().max() > 1e-3
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-8)


def test_fixed_step_solver_matches_dopri5():
    feed, mask = _batch(4)
    flux = torch.linspace(3e-6, 3e-5, 4, dtype=torch.float64).expand(4, -1)
    out = []
    for kw in ({}, {"method": "rk4", "step_size": 0.05}):
        torch.manual_seed(0)
        model = models.build("neural_ode", "smoke", rtol=1e-8, atol=1e-10, **kw).double()
        with torch.no_grad():
            out.append(model(feed, mask, flux))
    torch.testing.assert_close(out[1], out[0], rtol=1e-5, atol=1e-6)


def test_flux_encoding_is_shifted_legendre():
    tau = torch.linspace(0, 1, 7, dtype=torch.float64)
    enc = models.flux_encoding(tau, 5)
    for k in range(1, 6):
        ref = legendre.legval(2 * tau.numpy() - 1, [0] * k + [1])
        np.testing.assert_allclose(enc[:, k - 1].numpy(), ref, rtol=1e-12, atol=1e-14)


def test_registry_profiles_and_spec_round_trip():
    counts = {p: models.n_parameters(models.build("neural_ode", p)) for p in ("smoke", "default", "paper")}
    assert abs(counts["paper"] - 1.05e6) / 1.05e6 < 0.02
    assert counts["smoke"] < counts["default"] < counts["paper"]
    env.seed_everything(0)
    model = models.build("neural_ode", "smoke", flux_degree=3)
    clone = models.from_spec(models.spec(model))
    clone.load_state_dict(model.state_dict())
    feed, mask = _batch(2, dtype=torch.float32)
    flux = torch.full((2, 1), 1e-5)
    with torch.no_grad():
        torch.testing.assert_close(clone(feed, mask, flux), model(feed, mask, flux))
    with pytest.raises(ValueError, match="unet2000"):
        models.build("unet2000")
    with pytest.raises(ValueError, match="dopri99"):
        models.build("neural_ode", method="dopri99")


@pytest.mark.parametrize("case,match", [
    ("wrong_dim", r"shape \(N, 12\)"),
    ("nan_feed", "not finite"),
    ("negative_feed", "negative: sample 0, species Na\\+"),
    ("negative_flux", "flux is negative: sample 1"),
    ("absent_nonzero", "absent"),
    ("empty", "no species present"),
])
def test_bad_inputs_raise_clear_errors(case, match):
    model = models.build("neural_ode", "smoke").double()
    feed, mask = _batch(2)
    flux = torch.full((2, 2), 1e-5, dtype=torch.float64)
    if case == "wrong_dim":
        feed, mask = feed[:, :11], mask[:, :11]
    elif case == "nan_feed":
        feed[1, mask[1].nonzero()[0, 0]] = float("nan")
    elif case == "negative_feed":
        feed[0, 1], mask[0, 1] = -1.0, True
    elif case == "negative_flux":
        flux[1, 1] = -1e-6
    elif case == "absent_nonzero":
        j = (~mask[0]).nonzero()[0, 0]
        feed[0, j] = 1.0
    elif case == "empty":
        feed[0], mask[0] = 0.0, False
    with pytest.raises(models.ModelInputError, match=match):
        model(feed, mask, flux)
    assert issubclass(models.ModelInputError, ValueError)
