"""nanoutils.models: projection, neural ODE, registry and input checks."""

import numpy as np
import pytest
import torch
from networks import Z, batch, lively
from numpy.polynomial import legendre

from nanoutils import env, ions, models

DOPRI5 = {"method": "dopri5", "step_size": None}  # the smoke and default profiles use rk4


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


def test_projection_with_per_sample_charge_weights_in_float32():
    """The per-ion state projects orthogonally to w = z ⊙ c_f, whose entries span 4 decades."""
    feed, mask = batch(64, seed=2, dtype=torch.float32)
    w = Z.float() * feed  # one row per sample
    v = torch.randn(64, 12, generator=torch.Generator().manual_seed(0))
    p = models.project_electroneutral(v, w, mask)
    assert torch.all(p[~mask] == 0)
    c = feed * (1 + 0.1 * p)  # a state u = 1 + 0.1 p around the feed, back in mol/m³
    assert models.charge_imbalance(c, Z.float()).max() <= 1e-6
    torch.testing.assert_close(models.project_electroneutral(p, w, mask), p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("state", models.STATES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_trajectory_keeps_charge_balance_and_absent_species_zero(dtype, tol, state):
    torch.manual_seed(0)
    model = lively(models.build("neural_ode", "smoke", width=24, state=state, **DOPRI5)).to(dtype)
    feed, mask = batch(8, dtype=dtype)
    grid = torch.linspace(0, 3e-5, 25, dtype=dtype).expand(8, -1)
    with torch.no_grad():
        c = model(feed, mask, grid)
    assert torch.all(c.permute(0, 2, 1)[~mask] == 0), "absent species must stay exactly 0"
    change = ((c[:, -1] - feed).abs().sum(-1) / feed.sum(-1)).min()
    assert change > 0.005, "the test needs trajectories that actually move"
    assert models.charge_imbalance(c, Z).max() <= tol  # at every output flux of every sample


def test_charge_balance_holds_in_float32_when_everything_is_rejected():
    """The field du/dτ = −0.99 (a constant bias, already neutral since Σ w = Σ z c_f = 0) takes every present
    ion to 1 % of its feed: the permeate is 100× more dilute than the feed, where float32 cancellation in
    u0 + Δu (or a float32 copy of the feed) would leave ~1e-5 relative net charge: the float32 model gets the
    float64 feed and re-projects in float64."""
    model = models.build("neural_ode", "smoke", method="rk4", step_size=0.1).float()
    with torch.no_grad():
        model.func.net[-1].weight.zero_()
        model.func.net[-1].bias.fill_(-0.99)
    feed, mask = batch(8, seed=4, dtype=torch.float64)
    with torch.no_grad():
        c = model(feed, mask, torch.linspace(0, models.FLUX_SCALE_M_S, 33).expand(8, -1))  # τ from 0 to 1
    assert c.dtype == torch.float32 and torch.all(c.permute(0, 2, 1)[~mask] == 0)
    torch.testing.assert_close(c[:, -1], 0.01 * feed.float(), rtol=1e-4, atol=1e-6)
    assert models.charge_imbalance(c, Z.float()).max() <= 1e-6


def test_without_projection_charge_drifts():
    torch.manual_seed(0)
    model = lively(models.build("neural_ode", "smoke", width=24, project=False)).double()
    feed, mask = batch(8)
    with torch.no_grad():
        c = model(feed, mask, torch.full((8, 1), 3e-5, dtype=torch.float64))
    assert models.charge_imbalance(c, Z).max() > 1e-3


@pytest.mark.parametrize("state", models.STATES)
def test_initial_state_is_the_feed(state):
    torch.manual_seed(0)
    model = lively(models.build("neural_ode", "smoke", state=state)).double()
    feed, mask = batch(5)
    flux = torch.tensor([[0.0, 1e-5]] * 5, dtype=torch.float64)
    with torch.no_grad():
        c = model(feed, mask, flux)
    torch.testing.assert_close(c[:, 0], feed, rtol=1e-14, atol=0)
    assert (c[:, 1] - feed).abs().max() > 1e-3


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_padded_flux_points_are_zero_and_ignored(name):
    """Padded points give 0 and do not change the real ones (the neural ODE to its solver's tolerance: the
    padded points change its integration grid)."""
    torch.manual_seed(0)
    model = models.build(name, "smoke").double()
    feed, mask = batch(3)
    flux = torch.tensor([[1e-5, 2e-5], [1e-5, 9.0], [1e-5, float("nan")]], dtype=torch.float64)
    fmask = torch.tensor([[True, True], [True, False], [True, False]])
    with torch.no_grad():
        c = model(feed, mask, flux, fmask)
        alone = model(feed[:1], mask[:1], flux[:1, :1])
    assert torch.all(c[1:, 1] == 0) and torch.isfinite(c).all()
    rtol, atol = (1e-3, 1e-6) if name == "neural_ode" else (1e-12, 1e-12)
    torch.testing.assert_close(c[0, 0], alone[0, 0], rtol=rtol, atol=atol)


def test_adjoint_and_direct_gradients_agree():
    feed, mask = batch(3)
    flux = torch.tensor([[5e-6, 2e-5], [1e-5, 3e-5], [2.5e-5, 3e-5]], dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(3)
        model = lively(
            models.build("neural_ode", "smoke", width=8, adjoint=adjoint, rtol=1e-10, atol=1e-12, **DOPRI5), 2.0
        )
        model.double()
        rel = (model(feed, mask, flux) - feed[:, None]) / torch.where(mask, feed, 1.0)[:, None]  # −R
        loss = (rel**2).sum()
        loss.backward()
        grads.append(torch.cat([p.grad.ravel() for p in model.parameters()]))
    assert grads[0].abs().max() > 1e-3
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-8)


def test_state_scaling_sets_the_rejection_scale_of_trace_ions():
    """With u = c / c_f an O(1) change of the state is an O(1) change of a trace ion's rejection; with the
    per-sample state (u = c / s, s ≈ 5000 c_f here) the same change is thousands in rejection, which is
    why a per-sample model is inaccurate on trace ions."""
    feed = torch.zeros(1, 12, dtype=torch.float64)
    names = ions.species()
    feed[0, names.index("Na+")], feed[0, names.index("Cl-")] = 500.0, 499.9
    feed[0, names.index("NO3-")] = 0.1
    mask, flux = feed > 0, torch.full((1, 1), 3e-5, dtype=torch.float64)
    moved = {}
    for state in models.STATES:
        torch.manual_seed(0)
        model = lively(models.build("neural_ode", "smoke", state=state)).double()
        with torch.no_grad():
            r = 1 - model(feed, mask, flux)[0, 0] / torch.where(mask[0], feed[0], 1.0)
        moved[state] = float(r[names.index("NO3-")].abs())
    assert 0.01 < moved["per_ion"] < 100 and moved["per_sample"] > 100 * moved["per_ion"], moved


def test_fixed_step_solver_matches_dopri5():
    feed, mask = batch(4)
    flux = torch.linspace(3e-6, 3e-5, 4, dtype=torch.float64).expand(4, -1)
    out = []
    for kw in (DOPRI5, {"method": "rk4", "step_size": 0.05}):
        torch.manual_seed(0)
        model = models.build("neural_ode", "smoke", rtol=1e-8, atol=1e-10, **kw).double()
        with torch.no_grad():
            out.append(model(feed, mask, flux))
    torch.testing.assert_close(out[1], out[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", models.ODE_METHODS)
def test_every_named_ode_method_integrates_exponential_decay(method):
    """Each name the config accepts is one torchdiffeq solves with: du/dτ = −u from 1 gives e^{−τ}."""
    from torchdiffeq import odeint

    options = (
        {"step_size": 0.01}
        if method in ("euler", "midpoint", "heun2", "heun3", "rk4", "implicit_adams", "fixed_adams")
        else None
    )
    tau = torch.tensor([0.0, 1.0], dtype=torch.float64)
    u = odeint(
        lambda t, y: -y, torch.ones(1, dtype=torch.float64), tau, method=method, rtol=1e-7, atol=1e-9, options=options
    )
    assert abs(float(u[-1, 0]) - np.exp(-1.0)) < 2e-2
    models.NeuralODEConfig(method=method, species=("Na+", "Cl-"))


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
    assert models.build("neural_ode", "paper").config.method == "dopri5"  # the paper's solver
    assert models.build("neural_ode", "default").config.state == "per_ion"
    env.seed_everything(0)
    model = models.build("neural_ode", "smoke", flux_degree=3)
    clone = models.from_spec(models.spec(model))
    clone.load_state_dict(model.state_dict())
    feed, mask = batch(2, dtype=torch.float32)
    flux = torch.full((2, 1), 1e-5)
    with torch.no_grad():
        torch.testing.assert_close(clone(feed, mask, flux), model(feed, mask, flux))
    with pytest.raises(ValueError, match="unet2000"):
        models.build("unet2000")
    with pytest.raises(ValueError, match="dopri99"):
        models.build("neural_ode", method="dopri99")
    with pytest.raises(ValueError, match="per_molecule"):
        models.build("neural_ode", state="per_molecule")


@pytest.mark.parametrize(
    "case,match",
    [
        ("wrong_dim", r"shape \(N, 12\)"),
        ("nan_feed", "not finite"),
        ("negative_feed", "negative: sample 0, species Na\\+"),
        ("negative_flux", "flux is negative: sample 1"),
        ("absent_nonzero", "absent"),
        ("empty", "no species present"),
    ],
)
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_bad_inputs_raise_clear_errors(name, case, match):
    model = models.build(name, "smoke").double()
    feed, mask = batch(2)
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
