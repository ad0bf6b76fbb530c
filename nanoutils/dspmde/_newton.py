"""Batched damped Newton for the discrete DSPM-DE equations, with continuation in flux.

The Jacobian of a chain is block-bidiagonal with a border: the equations of link k+1 and
the neutrality of node k involve only nodes k, k+1 and the permeate unknowns g = (v, ψ_p).
Sweeping from the permeate towards the feed (the direction in which the exponentially
fitted cell relation has no cancellation) expresses every node's update as an affine
function of δg, δw_k = α_k + β_k δg, by one arrowhead (diagonal + one row + one column)
solve per node; the link from the bulk plus zero current then give a (d+1)×(d+1) system
for δg. Cost per iteration: O(K d²) per case, all cases at once in numpy.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._discrete import Chain, State

STEP_CAP = 2.0  # largest change of ln c or Fψ/RT in one Newton step
TRUST = 1e-3  # steps smaller than this are taken in full (quadratic convergence region)
ARMIJO = 1e-4


def direction(chain: Chain, st: State) -> State:
    """The Newton step (δU, δΨ, δv, δψ_p) for every case."""
    f, fa, fb, fpa, fpb, fv = chain.links(st)
    res_n, dn = chain.neutrality(st)
    res_i, di = chain.current(st)
    b, n_nodes, d = st.U.shape
    g = d + 1
    cols = np.arange(d)
    wu = np.empty((b, n_nodes, d, g + 1))
    wp = np.empty((b, n_nodes, g + 1))
    nu = np.zeros((b, d, g + 1))  # node K+1 is the permeate: δu = δv, δψ = δψ_p
    nu[:, cols, 1 + cols] = 1.0
    npsi = np.zeros((b, g + 1))
    npsi[:, g] = 1.0
    # Link k+1 solved for node k: δu_k = A δu_{k+1} + P δψ_{k+1} + c0 + cv δv − Q δψ_k,
    # and neutrality Σ n δu_k = −N_k fixes δψ_k (denominator Σ n Q > 0: z² c terms).
    inv = 1.0 / fa[:, 1:]
    a_, p_, q_ = -fb[:, 1:] * inv, -fpb[:, 1:] * inv, fpa[:, 1:] * inv
    c0, cv = -f[:, 1:] * inv, -fv[:, 1:] * inv
    den = 1.0 / (dn * q_).sum(-1)
    nrm = (dn * den[..., None])[:, :, None, :]
    res = res_n * den
    for k in range(n_nodes - 1, -1, -1):
        ra = a_[:, k, :, None] * nu + p_[:, k, :, None] * npsi[:, None, :]
        ra[..., 0] += c0[:, k]
        ra[:, cols, 1 + cols] += cv[:, k]
        npsi = (nrm[:, k] @ ra)[:, 0]
        npsi[:, 0] += res[:, k]
        nu = ra - q_[:, k, :, None] * npsi[:, None, :]
        wu[:, k], wp[:, k] = nu, npsi
    mat = np.zeros((b, g, g))
    vec = np.empty((b, g))
    mat[:, :d] = fb[:, 0, :, None] * wu[:, 0, :, 1:] + fpb[:, 0, :, None] * wp[:, 0, None, 1:]
    mat[:, cols, cols] += fv[:, 0]
    vec[:, :d] = -f[:, 0] - fb[:, 0] * wu[:, 0, :, 0] - fpb[:, 0] * wp[:, 0, None, 0]
    mat[:, d, :d] = di
    vec[:, d] = -res_i
    singular = ~(np.abs(np.linalg.det(mat)) > 0)
    mat[singular] = np.eye(g)
    dg = np.linalg.solve(mat, vec[..., None])[..., 0]
    dg[singular] = np.nan
    du = wu[..., 0] + np.einsum("bkic,bc->bki", wu[..., 1:], dg)
    dpsi = wp[..., 0] + np.einsum("bkc,bc->bk", wp[..., 1:], dg)
    return State(du, dpsi, dg[:, :d], dg[:, d])


def _axpy(st: State, lam: np.ndarray, step: State) -> State:
    return State(
        st.U + lam[:, None, None] * step.U,
        st.Psi + lam[:, None] * step.Psi,
        st.v + lam[:, None] * step.v,
        st.psi_p + lam * step.psi_p,
    )


def _size(step: State) -> np.ndarray:
    return np.maximum.reduce(
        [np.abs(step.U).max(axis=(1, 2)), np.abs(step.Psi).max(axis=1), np.abs(step.v).max(axis=1), np.abs(step.psi_p)]
    )


def _line_search(
    chain: Chain, st: State, step: State, lam: np.ndarray, search: np.ndarray, max_halvings: int = 12
) -> State:
    """Backtracking (Armijo) on the sum of squared residuals for the cases in ``search``."""
    trial = _axpy(st, lam, step)
    if not search.any():
        return trial
    todo = np.flatnonzero(search)
    ch, cur, stp = chain.take(todo), st.take(todo), step.take(todo)
    m0, lt = ch.merit(cur), lam[todo]
    pending = np.arange(todo.size)
    for _ in range(max_halvings):
        sub = _axpy(cur.take(pending), lt[pending], stp.take(pending))
        ok = ch.take(pending).merit(sub) <= (1 - ARMIJO * lt[pending]) * m0[pending]
        trial.put(todo[pending[ok]], sub.take(np.flatnonzero(ok)))
        pending = pending[~ok]
        if pending.size == 0:
            break
        lt[pending] *= 0.5
    if pending.size:
        trial.put(todo[pending], _axpy(cur.take(pending), lt[pending], stp.take(pending)))
    return trial


def newton(
    chain: Chain, st: State, *, tol: float = 1e-10, maxiter: int = 50, line_search: bool = False
) -> tuple[State, np.ndarray, np.ndarray]:
    """Newton from ``st`` with steps capped at STEP_CAP (and an Armijo line search if asked);
    returns (state, converged (B,), iterations (B,)).

    A case converges when its full Newton step is below ``tol`` in every ln c and Fψ/RT
    (the error left after that step is of order tol²). Converged cases leave the batch.
    With an activity model the partition logs are re-evaluated at every iterate (lagged
    coefficients, no activity derivatives in the Jacobian), and a case also needs them to have
    moved by less than ``tol``; the contraction of this lag is fast (~0.1 per step in NF pores).
    """
    st = st.copy()
    if chain.activity is not None:
        chain = replace(chain, ln_phi=chain.ln_phi.copy())
    b = st.U.shape[0]
    converged = np.zeros(b, bool)
    iterations = np.zeros(b, int)
    live = np.arange(b)
    for _ in range(maxiter):
        if live.size == 0:
            break
        ch, cur = chain.take(live), st.take(live)
        moved = 0.0
        if ch.activity is not None:
            ln_phi = ch.activity_logs(cur)
            moved = np.abs(ln_phi - ch.ln_phi).max(axis=(1, 2))
            ch = replace(ch, ln_phi=ln_phi)
            chain.ln_phi[live] = ln_phi
        step = direction(ch, cur)
        size = np.maximum(_size(step), moved)
        finite = np.isfinite(size)
        done = finite & (size < tol)
        lam = np.where(finite, np.minimum(1.0, STEP_CAP / np.where(finite, size, 1.0)), 0.0)
        step = State(*(np.nan_to_num(a) for a in (step.U, step.Psi, step.v, step.psi_p)))
        new = _line_search(ch, cur, step, lam, finite & (size > TRUST) & line_search)
        st.put(live, new)
        iterations[live] += 1
        converged[live[done]] = True
        live = live[~done & finite]
    return st, converged, iterations


def continuation(
    chain: Chain, start: State, *, ladder: int = 7, tol: float = 1e-10, maxiter: int = 40
) -> tuple[State, np.ndarray, np.ndarray]:
    """Capped Newton at the target flux; cases that fail are re-solved with line search along
    J_v·2^(−ladder+1) … J_v, each step warm-started from the previous one (J_v → 0 is the
    equilibrium start)."""
    st, converged, iterations = newton(chain, start, tol=tol, maxiter=maxiter)
    failed = np.flatnonzero(~converged)
    if failed.size:
        sub, cur = chain.take(failed), start.take(failed)
        its = np.zeros(failed.size, int)
        for t in 2.0 ** -np.arange(ladder - 1, -1, -1):
            cur, ok, n = newton(sub.with_flux(sub.Jv * t), cur, tol=tol, maxiter=maxiter, line_search=True)
            its += n
        st.put(failed, cur)
        converged[failed] = ok
        iterations[failed] += its
    return st, converged, iterations
