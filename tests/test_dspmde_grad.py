"""Gradients of the DSPM-DE permeate by implicit differentiation: against finite differences (torch
gradcheck) with and without film and isotherm, physical signs, unconverged cases, and the eq. 11 fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from nanoutils import data, dspmde, fitting, ions
from nanoutils.fitting._gradient import residual_jacobian

NF270 = dspmde.Membrane.nf270()
BASE = torch.tensor([NF270.r_p, NF270.dx_e, NF270.eps_p], dtype=torch.float64)
FLUXES = [2e-6, 1e-5]


def params_of(theta: torch.Tensor) -> torch.Tensor:
    """Membrane (…, 4) from O(1) coordinates: r_p, Δx_e, ε_p scaled around NF270, X_d = −51.23 + 10 θ₃."""
    return torch.cat([BASE * torch.exp(theta[..., :3]), NF270.X_d + 10.0 * theta[..., 3:]], dim=-1)


CASES = {  # ions: feeds, film, isotherm, per-feed membranes
    "2 ions": ([ions.Feed.from_salts("NaCl 10 mM")], None, None, False),
    "3 ions, film": ([ions.Feed.from_salts("NaCl 10 mM, MgCl2 5 mM")], dspmde.Film(k=2e-5), None, False),
    "4 ions, Freundlich isotherm, one membrane per feed": (
        [ions.Feed.from_salts("NaCl 10 mM, MgSO4 5 mM"), ions.Feed.from_salts("NaCl 30 mM, MgSO4 2 mM")],
        None,
        dspmde.ChargeIsotherm.freundlich(0.4),
        True,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_gradcheck_against_finite_differences(case):
    feeds, film, isotherm, per_feed = CASES[case]
    d = len(ions.stack(feeds)[1])
    shape = (len(feeds), 4) if per_feed else (4,)
    theta = (0.05 * torch.arange(np.prod(shape), dtype=torch.float64).reshape(shape)).requires_grad_()
    dw = torch.linspace(-0.3, 0.3, d, dtype=torch.float64).requires_grad_()

    def permeate(theta, dw):
        return dspmde.solve_torch(feeds, FLUXES, params_of(theta), dW=dw, film=film, isotherm=isotherm)

    assert torch.autograd.gradcheck(permeate, (theta, dw), eps=1e-6, atol=1e-7, rtol=1e-4)


def test_forward_matches_solve_and_partition_energy_excludes_its_ion():
    feed = ions.Feed.from_salts("NaCl 10 mM, MgSO4 5 mM")
    names = ions.stack([feed])[1]
    p = torch.tensor([NF270.r_p, NF270.dx_e, NF270.eps_p, NF270.X_d], dtype=torch.float64)
    dw = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)
    c = dspmde.solve_torch([feed], FLUXES, p, dW=dw)
    assert np.allclose(c.detach().numpy(), dspmde.solve([feed], FLUXES).permeate, rtol=1e-10)
    for i in range(len(names)):  # a higher partition energy of ion i lowers its own permeate
        (grad,) = torch.autograd.grad(c[0, :, i].sum(), dw, retain_graph=True)
        assert grad[i] < 0, names[i]


def test_signs_of_the_membrane_sensitivities_for_nacl():
    # wider pores and a weaker dielectric contrast pass more salt; a thicker membrane (higher Péclet
    # number at the same flux) and a more negative charge (Donnan exclusion of Cl⁻) pass less
    p = torch.tensor([NF270.r_p, NF270.dx_e, NF270.eps_p, NF270.X_d], dtype=torch.float64, requires_grad=True)
    c = dspmde.solve_torch([ions.Feed.from_salts("NaCl 10 mM")], FLUXES, p)
    for m in range(len(FLUXES)):
        (grad,) = torch.autograd.grad(c[0, m, 0], p, retain_graph=True)
        assert grad[0] > 0 and grad[1] < 0 and grad[2] > 0 and grad[3] > 0


def test_unconverged_cases_give_nan_gradients_and_are_flagged():
    feed = ions.Feed.from_salts("NaCl 10 mM")  # single element with P ≥ 2 has no positive solution
    p = torch.tensor([NF270.r_p, 20e-6, NF270.eps_p, NF270.X_d], dtype=torch.float64, requires_grad=True)
    with pytest.warns(dspmde.ConvergenceWarning, match="1 of 2"):
        c = dspmde.solve_torch([feed], [1e-6, 1e-4], p, pore="single_element")
    assert torch.isfinite(c[0, 0]).all() and torch.isnan(c[0, 1]).all()
    (grad,) = torch.autograd.grad(c.sum(), p, retain_graph=True)
    assert torch.isnan(grad).all()
    (grad,) = torch.autograd.grad(c[0, 0].sum(), p)  # a loss without the failed case is differentiable
    assert torch.isfinite(grad).all() and (grad != 0).all()


def test_bad_parameter_shape_is_rejected():
    with pytest.raises(ValueError, match="params must have shape"):
        dspmde.solve_torch([ions.Feed.from_salts("NaCl 10 mM")], FLUXES, torch.zeros(3, dtype=torch.float64))


@pytest.fixture(scope="module")
def real():
    return data.load_dataset("nf270_fdl2021")


def test_eq11_gradient_matches_finite_differences_of_chi2(real):
    obj, space = fitting.Objective(real), fitting.Space()
    params = dict(fitting.PAPER_TABLE2)
    r, jac, n_bad = residual_jacobian(obj, params, space)
    assert n_bad == 0 and r @ r == pytest.approx(obj.chi2(fitting.membrane(params)), rel=1e-12)
    theta, h = space.theta(params), 1e-5
    for j in range(len(theta)):
        step = np.eye(len(theta))[j] * h
        fd = (
            obj.chi2(fitting.membrane(space.params(theta + step)))
            - obj.chi2(fitting.membrane(space.params(theta - step)))
        ) / (2 * h)
        assert 2 * jac[:, j] @ r == pytest.approx(fd, rel=1e-5), space.names[j]


def test_gradient_fit_reaches_at_least_the_nelder_mead_optimum_from_the_same_start(real):
    start = fitting.PAPER_TABLE2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dspmde.ConvergenceWarning)
        nm = fitting.fit(real, start=start, anneal_maxiter=0, nm_maxiter=25, with_uncertainty=False)
        grad = fitting.fit_gradient(real, start=start)
    assert grad.chi2 <= nm.chi2 * (1 + 1e-6)
    assert grad.chi2 < 0.5 * nm.trace["objective"].iloc[0]  # it moved well away from the start
    assert grad.chi2 == pytest.approx(fitting.Objective(real).chi2(grad.membrane), rel=1e-10)
    assert set(grad.stderr) == set(fitting.PARAMETERS) and grad.n_unconverged == 0


def test_more_starts_never_end_worse_and_bad_count_is_rejected(real):
    one = fitting.fit_gradient(real, seed=3, max_nfev=15)
    two = fitting.fit_gradient(real, seed=3, n_starts=2, max_nfev=15)
    assert two.start == one.start and two.chi2 <= one.chi2 * (1 + 1e-9)
    assert len(two.trace) > len(one.trace)
    with pytest.raises(fitting.FitError, match="n_starts"):
        fitting.fit_gradient(real, n_starts=0)


def test_fit_with_the_gradient_local_stage_continues_from_annealing_and_keeps_one_trace(real):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dspmde.ConvergenceWarning)
        res = fitting.fit(real, seed=1, anneal_maxiter=1, nm_maxiter=20, local="gradient")
        alone = fitting.fit_gradient(real, start=fitting.PAPER_TABLE2, max_nfev=20)
    phases = list(dict.fromkeys(res.trace["phase"]))
    assert phases == ["start", "annealing", "gauss-newton"]
    assert res.trace["evaluation"].tolist() == list(range(1, len(res.trace) + 1))
    assert res.chi2 <= res.trace.loc[res.trace.phase == "annealing", "objective"].min()
    assert res.chi2 == pytest.approx(res.trace["best"].iloc[-1], rel=1e-12)
    assert res.chi2 <= alone.chi2 * (1 + 1e-3)  # the same minimum on the real set as from Table 2
    assert res.start == pytest.approx(fitting.fit(real, seed=1, anneal_maxiter=0, nm_maxiter=0).start)
    with pytest.raises(fitting.FitError, match="local='gradient' fits Z alone"):
        fitting.fit(real, isotherm="freundlich", local="gradient")
    with pytest.raises(fitting.FitError, match="local='gradient' fits Z alone"):
        fitting.fit(real, activity="pitzer", local="gradient")
