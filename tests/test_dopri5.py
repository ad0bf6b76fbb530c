"""The fused Dormand–Prince solver of the neural ODE (``models._dopri5``) and its per-sample error norm."""

import math

import pytest
import torch
from networks import batch, lively
from torchdiffeq import odeint

from nanoutils import models
from nanoutils.models._dopri5 import SolveStats, dopri5

PER_SAMPLE = {"method": "dopri5", "step_size": None, "error_norm": "per_sample"}


def decay(rates: torch.Tensor):
    """dy/dt = −k y per sample (B, 1): y = e^{−k t}."""
    return lambda t, y: -rates * y


def test_exponential_decay_to_the_tolerance_with_dense_output_between_steps():
    rates = torch.tensor([[0.5], [3.0], [8.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 0.13, 0.5, 0.77, 1.0], dtype=torch.float64)
    stats = SolveStats()
    y = dopri5(decay(rates), torch.ones(3, 1, dtype=torch.float64), t, rtol=0.0 + 1e-7, atol=1e-9, stats=stats)
    exact = torch.exp(-rates[None] * t[:, None, None])
    assert (y - exact).abs().max() < 1e-6
    assert stats.nfe == 2 + 6 * (stats.accepted + stats.rejected)  # f(t0), the starting-step probe, 6 per attempt
    assert math.isclose(sum(stats.steps), 1.0, rel_tol=1e-12)  # the accepted steps tile [0, 1] exactly


def test_never_evaluates_past_the_last_output_time():
    seen = []

    def f(t, y):
        seen.append(float(t))
        return -y

    dopri5(f, torch.ones(2, 1, dtype=torch.float64), torch.tensor([0.0, 0.3, 0.7]), rtol=1e-6, atol=1e-8)
    assert max(seen) <= 0.7


def test_a_samples_error_does_not_depend_on_the_batch_it_sits_in():
    """One fast-decaying sample among many slow ones: torchdiffeq's RMS over the whole batch divides its error by
    ~sqrt(B), so the accepted error grows with B; the per-sample norm keeps it where it is when solved alone."""
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    errors = {}
    for n_slow in (0, 255):
        rates = torch.cat([torch.tensor([[12.0]]), torch.full((n_slow, 1), 0.1)]).double()
        y0 = torch.ones(1 + n_slow, 1, dtype=torch.float64)
        fused = dopri5(decay(rates), y0, t, rtol=1e-4, atol=1e-6)[-1, 0, 0]
        rms = odeint(decay(rates), y0, t, method="dopri5", rtol=1e-4, atol=1e-6)[-1, 0, 0]
        exact = math.exp(-12.0)
        errors[n_slow] = (abs(float(fused) - exact), abs(float(rms) - exact))
    assert errors[255][0] <= 2 * errors[0][0] + 1e-12
    assert errors[255][1] > 5 * errors[0][1]  # what the per-sample norm fixes


def test_weight_leaves_absent_entries_out_of_the_error_norm():
    """An entry with weight 0 whose error would force tiny steps does not count."""
    rates = torch.tensor([[1.0, 200.0]], dtype=torch.float64)
    y0 = torch.ones(1, 2, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    both, masked = SolveStats(), SolveStats()
    dopri5(decay(rates), y0, t, rtol=1e-6, atol=1e-8, stats=both)
    y = dopri5(decay(rates), y0, t, rtol=1e-6, atol=1e-8, weight=torch.tensor([[1.0, 0.0]]), stats=masked)
    assert masked.nfe < both.nfe / 3
    assert abs(float(y[-1, 0, 0]) - math.exp(-1.0)) < 1e-6


def test_neural_ode_per_sample_solver_matches_torchdiffeq_values_and_gradients():
    feed, mask = batch(5)
    flux = torch.tensor([3e-6, 1.5e-5, 3e-5, 6e-5], dtype=torch.float64).expand(5, -1)
    out, grads = [], []
    for norm in models.ERROR_NORMS:
        torch.manual_seed(2)
        model = lively(
            models.build("neural_ode", "smoke", width=12, rtol=1e-10, atol=1e-12, **{**PER_SAMPLE, "error_norm": norm}),
            2.0,
        ).double()
        c = model(feed, mask, flux)
        ((c / torch.where(mask, feed, 1.0)[:, None]) ** 2).sum().backward()
        out.append(c.detach())
        grads.append(torch.cat([p.grad.ravel() for p in model.parameters()]))
    assert (out[0] - feed[:, None]).abs().max() > 1e-2 * feed.max()  # the trajectories move
    torch.testing.assert_close(out[1], out[0], rtol=1e-8, atol=1e-10)
    assert grads[0].abs().max() > 1e-2
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)  # two discretisations' gradients


def test_per_sample_norm_is_dopri5_with_direct_backprop_only():
    with pytest.raises(ValueError, match="per_sample"):
        models.NeuralODEConfig(method="bosh3", error_norm="per_sample", species=("Na+", "Cl-"))
    with pytest.raises(ValueError, match="adjoint"):
        models.NeuralODEConfig(error_norm="per_sample", adjoint=True, species=("Na+", "Cl-"))
    with pytest.raises(ValueError, match="l2"):
        models.NeuralODEConfig(error_norm="l2", species=("Na+", "Cl-"))


def test_stiffness_is_the_mean_squared_frobenius_norm_of_the_fields_jacobian():
    """Hutchinson with one drawn flux point per sample: E ‖J ε‖² = ‖J‖²_F for ±1 ε, and the samples weighted by
    their real points make the expectation the mean over every real point (a padded point counts nowhere)."""
    feed, mask = batch(3)
    flux = torch.tensor([[1e-5, 4e-5, 6e-5]] * 3, dtype=torch.float64)
    fmask = torch.tensor([[True, True, True], [True, False, False], [True, True, False]])
    torch.manual_seed(0)
    model = lively(models.build("neural_ode", "smoke", width=8, **PER_SAMPLE), 2.0).double()
    with torch.no_grad():
        pred = model(feed, mask, flux, fmask)
    b = {"feed": feed, "species_mask": mask, "flux": flux, "flux_mask": fmask}
    estimate = torch.stack([model.stiffness(b, pred) for _ in range(2000)]).mean()
    f, a = model._bind(feed.repeat_interleave(3, 0), mask.repeat_interleave(3, 0).double())
    u = (pred / a.reshape(3, 3, -1)).reshape(9, -1)
    tau = (flux / model.config.flux_scale).reshape(-1)
    jac = torch.autograd.functional.jacobian(lambda v: f(tau, v).sum(0), u).permute(1, 0, 2)  # (rows, d, d)
    per_point = (jac**2).sum((1, 2)) / mask.repeat_interleave(3, 0).sum(-1)
    exact = per_point[fmask.reshape(-1)].mean()
    assert exact > 1e-3
    per_sample = (per_point.reshape(3, 3) * fmask).sum(-1) / fmask.sum(-1)
    assert not torch.isclose(per_sample.mean(), exact, rtol=0.1)  # so an unweighted draw would fail below
    torch.testing.assert_close(estimate, exact, rtol=0.05, atol=0.0)
    penalised = models.build("neural_ode", "smoke", width=8, stiffness_penalty=0.5, **PER_SAMPLE).double()
    penalised.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    aux = penalised.auxiliary_loss(b, pred)
    torch.manual_seed(1)
    torch.testing.assert_close(aux, 0.5 * model.stiffness(b, pred))
