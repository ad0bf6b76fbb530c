"""The discrete DSPM-DE equations shared by the Newton solver and the reference scheme.

A case is a chain of nodes from the feed bulk to the permeate:

    bulk ─film cells─ surface ─partition─ pore node 0 ─pore cells─ pore node N ─partition─ permeate

Unknowns (dimensionless): u = ln c at every film and pore node, the potential ψ = Fφ/RT
at those nodes (bulk ψ = 0), v = ln c_p of the permeate and its potential ψ_p. A link
between node a and node b (b downstream) is either

* a finite-volume cell with the Scharfetter–Gummel (exponentially fitted) flux, exact for
  a constant flux j and a linear potential within the cell:
  j s = B(−P) c_a − B(P) c_b,  P = κ − z(ψ_b − ψ_a),  B(x) = x/(eˣ − 1),
  with s = h/(K_d D) and κ = K_c J_v s in the pore (K_c = K_d = 1, s = 1/(k n_cells) in
  the film); the flux is j = J_v c_p. Written relative to c_b (no cancellation):
  F = B(−P) e^{u_a−u_b} − B(P) − J_v s e^{v−u_b} = 0.
  A ``central`` cell replaces B by its linearisation B(x) = 1 − x/2, i.e. the arithmetic-mean
  (single finite-difference element) flux j s = c_a − c_b + P (c_a + c_b)/2 of WaterTAP's
  NanofiltrationDSPMDE0D; it has no positive solution once B(P) = 1 − P/2 ≤ 0 and j s is small;
* a partition link (eq. 8): u_pore − u_out + z(ψ_pore − ψ_out) − ln(φ_S φ_B γ_out/γ_pore) = 0.

Electroneutrality Σ z c + X = 0 holds at every node (X = X_d in the pore, 0 in the film)
and in the permeate (Σ z c_p = 0, i.e. zero electric current). Ions masked out of a case
(absent, or λ ≥ 1) keep trivial equations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

CELL, PART_IN, PART_OUT = 0, 1, 2
_EXP_MAX = 700.0


def central(x: np.ndarray, derivative: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Arithmetic-mean flux coefficients: B(x) = 1 − x/2 and B'(x) = −1/2 (may be ≤ 0)."""
    return 1.0 - 0.5 * x, (np.full_like(x, -0.5) if derivative else None)


def bernoulli(x: np.ndarray, derivative: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """B(x) = x/(eˣ − 1) and (if asked) its derivative B'(x) = B((1 − B)/x − 1), for all x."""
    xs = np.where(x == 0.0, 1e-300, x)  # expm1 keeps x/expm1(x) exact down to the smallest x
    with np.errstate(over="ignore"):
        b = xs / np.expm1(np.minimum(xs, _EXP_MAX))
    if not derivative:
        return b, None
    return b, np.where(np.abs(x) < 1e-4, x / 6 - 0.5, b * ((1.0 - b) / xs - 1.0))


@dataclass(frozen=True)
class State:
    """Unknowns of B cases: U (B, K+1, d) ln c at nodes, Psi (B, K+1), v (B, d) ln c_p, psi_p (B,)."""

    U: np.ndarray
    Psi: np.ndarray
    v: np.ndarray
    psi_p: np.ndarray

    def take(self, idx: np.ndarray) -> State:
        return State(self.U[idx], self.Psi[idx], self.v[idx], self.psi_p[idx])

    def put(self, idx: np.ndarray, other: State) -> None:
        self.U[idx], self.Psi[idx], self.v[idx], self.psi_p[idx] = other.U, other.Psi, other.v, other.psi_p

    def copy(self) -> State:
        return State(self.U.copy(), self.Psi.copy(), self.v.copy(), self.psi_p.copy())


@dataclass(frozen=True)
class Chain:
    """Discretised film + pore for B cases (batch first). ``kind`` (L,) link types,
    ``s`` (L, d) cell resistances h/(K_d D) in s/m (0 for partition links), ``K_c`` (L, d),
    ``ln_phi`` (B, 2, d) entrance/exit partition logs, ``X`` (B, K+1) node charge (mol/m³),
    ``mask`` (B, d) active ions, ``ln_cb`` (B, d) ln of the bulk feed, ``Jv`` (B,) in m/s, ``z`` (d,),
    ``central`` (L,) True for cells with the arithmetic-mean (single-element) flux.
    Non-ideal partitioning: ``activity`` (c mol/m³, z) → ln γ, and ``ln_phi0`` (B, 2, d) the ideal
    partition logs; ``ln_phi`` then holds the activity-corrected ones (see :meth:`activity_logs`).
    """

    kind: np.ndarray
    s: np.ndarray
    K_c: np.ndarray
    ln_phi: np.ndarray
    X: np.ndarray
    mask: np.ndarray
    ln_cb: np.ndarray
    Jv: np.ndarray
    z: np.ndarray
    n_film: int
    central: np.ndarray | None = None
    activity: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    ln_phi0: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return self.X.shape[1]

    @property
    def part_in(self) -> int:
        """Index of the entrance partition link."""
        return self.n_film

    @property
    def part_out(self) -> int:
        """Index of the exit partition link."""
        return self.n_nodes

    @property
    def pore(self) -> slice:
        """Node indices of the pore (entrance to exit)."""
        return slice(self.n_film, self.n_nodes)

    def take(self, idx: np.ndarray) -> Chain:
        return replace(
            self,
            ln_phi=self.ln_phi[idx],
            mask=self.mask[idx],
            ln_cb=self.ln_cb[idx],
            Jv=self.Jv[idx],
            X=self.X[idx],
            ln_phi0=None if self.ln_phi0 is None else self.ln_phi0[idx],
        )

    def with_flux(self, Jv: np.ndarray) -> Chain:
        return replace(self, Jv=np.asarray(Jv, dtype=float))

    def scale(self) -> np.ndarray:
        """Charge scale Σ|z| c_b + |X| (B,) that makes the neutrality residuals relative."""
        return (self.mask * np.exp(self.ln_cb)) @ np.abs(self.z) + np.abs(self.X).max(axis=1)

    def extended(self, st: State) -> tuple[np.ndarray, np.ndarray]:
        """(u, ψ) at bulk, all nodes and permeate: (B, K+3, d) and (B, K+3)."""
        b = st.U.shape[0]
        u = np.concatenate([self.ln_cb[:, None], st.U, st.v[:, None]], axis=1)
        psi = np.concatenate([np.zeros((b, 1)), st.Psi, st.psi_p[:, None]], axis=1)
        return u, psi

    def links(self, st: State, derivatives: bool = True, relative: bool = False):
        """Link residuals F (B, L, d) and, if asked, ∂F/∂u_a, ∂F/∂u_b, ∂F/∂ψ_a, ∂F/∂ψ_b, ∂F/∂v.

        ``relative``: cell residuals divided by the sum of the magnitudes of their three terms.

        Masked ions get z = 0 and s = 0, so with u = 0 their equations read 0 = 0 with
        ∂F/∂u_a = 1 and no coupling to anything else.
        """
        u, psi = self.extended(st)
        ua, ub = u[:, :-1], u[:, 1:]
        dpsi = (psi[:, 1:] - psi[:, :-1])[..., None]
        zm = self.z * self.mask
        theta = (self.Jv[:, None] * self.mask)[:, None, :] * self.s
        p = self.K_c * theta - zm[:, None] * dpsi
        bp, dbp = self.coefficients(p, derivatives)
        bm, dbm = self.coefficients(-p, derivatives)
        t1 = bm * np.exp(np.minimum(ua - ub, _EXP_MAX))
        q = theta * np.exp(np.minimum(st.v[:, None] - ub, _EXP_MAX))
        f = (t1 - bp - q) / (t1 + bp + q) if relative else t1 - bp - q
        ends = ((self.part_in, 1.0, self.ln_phi[:, 0]), (self.part_out, -1.0, self.ln_phi[:, 1]))
        for k, sigma, ln_phi in ends:
            f[:, k] = sigma * (ub[:, k] - ua[:, k] + zm * dpsi[:, k]) - ln_phi
        if not derivatives:
            return f
        fb = q - t1
        fpb = zm[:, None] * (dbm * np.exp(np.minimum(ua - ub, _EXP_MAX)) + dbp)
        fpa, fa, fv = -fpb, t1, -q
        for k, sigma, _ in ends:
            fa[:, k], fb[:, k], fpa[:, k], fpb[:, k], fv[:, k] = -sigma, sigma, -sigma * zm, sigma * zm, 0.0
        return f, fa, fb, fpa, fpb, fv

    def activity_logs(self, st: State) -> np.ndarray:
        """ln φ_eff (B, 2, d) = ln φ + ln γ_out − ln γ_pore at the entrance and exit for the state ``st``
        (eq. 8 with γ on both sides, each from ``activity`` at the local concentrations)."""
        activity, ln_phi0 = self.activity, self.ln_phi0
        if activity is None or ln_phi0 is None:
            raise ValueError("activity_logs needs a chain with activity and ln_phi0 (this one is ideal)")
        c = self.mask[:, None] * np.exp(np.where(self.mask[:, None], st.U, 0.0))
        c_p = self.mask * np.exp(np.where(self.mask, st.v, 0.0))
        c_out = c[:, self.n_film - 1] if self.n_film else np.where(self.mask, np.exp(self.ln_cb), 0.0)
        ln_phi = ln_phi0.copy()
        ln_phi[:, 0] += activity(c_out, self.z) - activity(c[:, self.n_film], self.z)
        ln_phi[:, 1] += activity(c_p, self.z) - activity(c[:, -1], self.z)
        return np.where(self.mask[:, None], ln_phi, ln_phi0)

    def coefficients(self, p: np.ndarray, derivatives: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """B(p) and B'(p) for link values p (B, L, d): Bernoulli, or :func:`central` on central cells."""
        b, db = bernoulli(p, derivatives)
        if self.central is not None and self.central.any():
            cb, cdb = central(p[:, self.central], derivatives)
            b[:, self.central] = cb
            if db is not None and cdb is not None:  # with derivatives
                db[:, self.central] = cdb
        return b, db

    def neutrality(self, st: State) -> tuple[np.ndarray, np.ndarray]:
        """Node residuals (Σ z c + X)/scale (B, K+1) and their derivatives w.r.t. U (B, K+1, d)."""
        zc = (self.z * self.mask)[:, None] * np.exp(np.minimum(st.U, _EXP_MAX))
        scale = self.scale()[:, None]
        return (zc.sum(-1) + self.X) / scale, zc / scale[..., None]

    def current(self, st: State) -> tuple[np.ndarray, np.ndarray]:
        """Permeate neutrality (zero current) Σ z c_p / Σ |z| c_p (B,) and its derivative w.r.t. v (B, d)."""
        c = self.mask * np.exp(np.minimum(st.v, _EXP_MAX))
        scale = c @ np.abs(self.z)
        return (c @ self.z) / scale, c * self.z / scale[:, None]

    def residual_norm(self, st: State) -> np.ndarray:
        """Max-norm of all residuals per case (B,), cell equations relative to their terms."""
        f = np.abs(self.links(st, derivatives=False, relative=True)).max(axis=(1, 2))
        n = np.abs(self.neutrality(st)[0]).max(axis=1)
        return np.maximum(np.maximum(f, n), np.abs(self.current(st)[0]))

    def merit(self, st: State) -> np.ndarray:
        """Sum of squared residuals per case (B,), the line-search merit."""
        f = (self.links(st, derivatives=False) ** 2).sum(axis=(1, 2))
        return f + (self.neutrality(st)[0] ** 2).sum(axis=1) + self.current(st)[0] ** 2

    def frozen_potential(self, st: State) -> State:
        """Concentrations solving every link equation exactly for the potentials of ``st``.

        With ψ fixed each ion's links are linear: c_b = g c_a − j h per link (g = B(−P)/B(P) = e^P,
        h = s/B(P) for a cell; g = e^{σ ln φ − zΔψ}, h = 0 for a partition). The forward
        products give j = G c_bulk / (1/J_v + H) with G, H sums/products of positive terms,
        and the profile follows backwards, c_a = (j s + B(P) c_b)/B(−P) or c_b/g — all in
        logarithms, so nothing cancels and every concentration stays positive.
        """
        u, psi = self.extended(st)
        dpsi = psi[:, 1:, None] - psi[:, :-1, None]
        theta = self.Jv[:, None, None] * self.s
        cell = self.kind == CELL
        p = self.K_c * theta - self.z * dpsi
        sigma = np.where(self.kind == PART_IN, 1.0, -1.0)
        ln_phi = np.zeros_like(p)
        ln_phi[:, self.kind == PART_IN] = self.ln_phi[:, :1]
        ln_phi[:, self.kind == PART_OUT] = self.ln_phi[:, 1:]
        ln_g = np.where(cell[:, None], p, sigma[:, None] * ln_phi - self.z * dpsi)
        with np.errstate(divide="ignore", invalid="ignore"):  # central cells may have B ≤ 0: NaN start
            ln_bp, ln_bm = np.log(self.coefficients(p, False)[0]), np.log(self.coefficients(-p, False)[0])
            ln_h = np.where(cell[:, None], np.log(np.where(cell[:, None], self.s, 1.0)) - ln_bp, -np.inf)
        if self.central is not None:  # g = B(−P)/B(P), which is e^P for the Bernoulli function
            ln_g[:, self.central] = (ln_bm - ln_bp)[:, self.central]
        with np.errstate(invalid="ignore"):  # NaN (no positive frozen solution) propagates to the caller
            ln_gt = np.zeros_like(self.ln_cb)
            ln_ht = np.full_like(self.ln_cb, -np.inf)
            for link in range(p.shape[1]):
                ln_gt = ln_gt + ln_g[:, link]
                ln_ht = np.logaddexp(ln_g[:, link] + ln_ht, ln_h[:, link])
            ln_j = self.ln_cb + ln_gt - np.logaddexp(-np.log(self.Jv)[:, None], ln_ht)
            out = np.empty_like(u)
            out[:, -1] = ln_j - np.log(self.Jv)[:, None]
            for link in range(p.shape[1] - 1, 0, -1):
                if cell[link]:
                    with np.errstate(divide="ignore"):  # s = 0 for ions that cannot enter
                        ln_s = np.log(self.s[link])
                    out[:, link] = np.logaddexp(ln_j + ln_s, ln_bp[:, link] + out[:, link + 1]) - ln_bm[:, link]
                else:
                    out[:, link] = out[:, link + 1] - ln_g[:, link]
        m = self.mask[:, None, :]
        return State(
            np.where(m, out[:, 1:-1], 0.0), st.Psi.copy(), np.where(self.mask, out[:, -1], 0.0), st.psi_p.copy()
        )
