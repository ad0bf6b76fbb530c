"""A fused Dormand–Prince 5(4) solver for a batch of ODEs that share their time points.

The same method as torchdiffeq's ``dopri5`` (Dormand & Prince 1980 tableau, FSAL, 4th-order dense output),
written for the neural ODE's use: one integration of a batch over sorted output times t_0 < … < t_T, gradients
by direct backprop through the accepted steps. What differs, and why (benchmarks/RESULTS.md, "Neural ODE
training cost"):

* the error norm: per sample, the RMS of err / (atol + rtol max(|y0|, |y1|)) over the entries where
  ``weight`` is 1 (the species present), then the *largest* over the batch. torchdiffeq's default is one RMS over
  the whole (B, d) tensor, in which absent species (error exactly 0) and every other sample dilute one sample's
  error by up to sqrt(B d): the accepted error of a sample then depends on the batch it sits in;
* the step-size control: Hairer's PI controller (β = 0.04, as DOPRI5 of Hairer & Wanner), which rejects fewer
  steps than the plain I controller when the error estimate is noisy from step to step;
* the last step ends at t_T exactly, so the field is never evaluated past the last output time;
* step decisions are made on detached values (as torchdiffeq does): the gradient is that of the accepted
  steps' discrete solution.

Every step attempt reads one scalar (the error ratio) back to the host; on a GPU that is one synchronisation per
attempt (≈ 10 µs), against 6 network evaluations. The times handed to ``f`` are made on the device (a fill), not
copied from the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

# Dormand–Prince 5(4): nodes, stage coefficients, 5th-order weights (= the last stage row, FSAL), error weights
# (5th − 4th order) and the weights of the solution at the step's midpoint for the dense output.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_E = (
    35 / 384 - 1951 / 21600,
    0.0,
    500 / 1113 - 22642 / 50085,
    125 / 192 - 451 / 720,
    -2187 / 6784 + 12231 / 42400,
    11 / 84 - 649 / 6300,
    -1 / 60,
)
_MID = (
    6025192743 / 30085553152 / 2,
    0.0,
    51252292925 / 65400821598 / 2,
    -2691868925 / 45128329728 / 2,
    187940372067 / 1594534317056 / 2,
    -1776094331 / 19743644256 / 2,
    11237099 / 235043384 / 2,
)
_SAFETY, _FAC_MIN, _FAC_MAX, _BETA = 0.9, 0.2, 10.0, 0.04  # Hairer & Wanner's DOPRI5 defaults


@dataclass
class SolveStats:
    """What one solve did: f evaluations, accepted and rejected steps, the accepted step sizes and their start
    times (in the units of t)."""

    nfe: int = 0
    accepted: int = 0
    rejected: int = 0
    steps: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)


def _combine(y0: Tensor, h: float, coefs: tuple[float, ...], ks: list[Tensor]) -> Tensor:
    """y0 + h Σ c_i k_i over the nonzero c_i."""
    out = y0
    for c, k in zip(coefs, ks, strict=False):
        if c != 0.0:
            out = out + (h * c) * k
    return out


def error_ratio(err: Tensor, y0: Tensor, y1: Tensor, rtol: float, atol: float, weight: Tensor | None) -> Tensor:
    """Largest over the batch (first axis) of the per-sample RMS of err / (atol + rtol max(|y0|, |y1|)) over the
    entries where ``weight`` (same shape, 0/1) is 1; a 0-d tensor, ≤ 1 for an acceptable step."""
    ratio = (err / (atol + rtol * torch.maximum(y0.abs(), y1.abs()))) ** 2
    if weight is None:
        per_sample = ratio.reshape(ratio.shape[0], -1).mean(-1)
    else:
        w = weight.reshape(ratio.shape[0], -1)
        per_sample = (ratio.reshape(ratio.shape[0], -1) * w).sum(-1) / w.sum(-1).clamp_min(1.0)
    return per_sample.amax().sqrt()


def dopri5(
    f: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    *,
    rtol: float,
    atol: float,
    weight: Tensor | None = None,
    max_steps: int = 10_000,
    stats: SolveStats | None = None,
) -> Tensor:
    """Solution (T, *y0.shape) of dy/dt = f(t, y), y(t_0) = y0, at the increasing times ``t`` (T,), with
    Dormand–Prince 5(4) and the error norm of :func:`error_ratio` (``weight``: which entries count). ``stats``, if
    given, is filled in. Raises RuntimeError after ``max_steps`` attempts or on a non-finite state."""
    st = stats if stats is not None else SolveStats()
    times = [float(v) for v in t.detach().cpu()]
    if any(b <= a for a, b in zip(times[:-1], times[1:], strict=False)):
        raise ValueError(f"output times must increase strictly, got {times}")
    out = [y0]
    if len(times) == 1:
        return y0[None]
    t_cur, t_end, y = times[0], times[-1], y0

    def call(tau: float, state: Tensor) -> Tensor:
        st.nfe += 1
        return f(torch.full((), tau, dtype=t.dtype, device=y0.device), state)  # a fill, not a host→device copy

    k1 = call(t_cur, y)
    h = _initial_step(call, t_cur, y, k1, rtol, atol, weight)
    h = min(h, t_end - t_cur)
    err_old, nxt, rejected_last = 1e-4, 1, False
    while nxt < len(times):
        if st.accepted + st.rejected >= max_steps:
            raise RuntimeError(f"dopri5: {max_steps} steps without reaching t = {t_end} (at t = {t_cur})")
        last = t_cur + 1.01 * h >= t_end  # as DOPRI5: stretch a step by ≤ 1 % rather than leave a sliver
        t_new = t_end if last else t_cur + h
        h = t_new - t_cur
        ks = [k1]
        for c, row in zip(_C[1:], _A, strict=True):
            ks.append(call(t_cur + c * h, _combine(y, h, row, ks)))
        y_new = _combine(y, h, _A[-1], ks[:6])
        err = _combine(torch.zeros_like(y), h, _E, ks)
        ratio = float(error_ratio(err.detach(), y.detach(), y_new.detach(), rtol, atol, weight))
        if ratio != ratio:  # NaN: a non-finite state or derivative
            raise RuntimeError(f"dopri5: non-finite state at t = {t_cur} (step {h})")
        fac11 = max(ratio, 1e-10) ** (0.2 - _BETA * 0.75)
        if ratio <= 1.0:
            st.accepted += 1
            st.steps.append(h)
            st.starts.append(t_cur)
            while nxt < len(times) and times[nxt] <= t_new:
                out.append(_dense(y, y_new, ks, h, (times[nxt] - t_cur) / h))
                nxt += 1
            fac = fac11 / err_old**_BETA
            fac = max(1 / _FAC_MAX, min(1 / _FAC_MIN, fac / _SAFETY))
            h_next = h / fac
            if rejected_last:
                h_next = min(h_next, h)
            err_old, rejected_last = max(ratio, 1e-4), False
            t_cur, y, k1 = t_new, y_new, ks[6]
            h = min(h_next, t_end - t_cur) if nxt < len(times) else h_next
        else:
            st.rejected += 1
            h = h / min(1 / _FAC_MIN, fac11 / _SAFETY)
            rejected_last = True
    return torch.stack(out)


def _dense(y0: Tensor, y1: Tensor, ks: list[Tensor], h: float, x: float) -> Tensor:
    """The 4th-order interpolant of a step at the fraction x ∈ [0, 1] of it (quartic through y0, y1, the midpoint
    value and the end derivatives)."""
    if x >= 1.0:
        return y1
    y_mid = _combine(y0, h, _MID, ks)
    f0, f1 = ks[0], ks[6]
    a = 2 * h * (f1 - f0) - 8 * (y1 + y0) + 16 * y_mid
    b = h * (5 * f0 - 3 * f1) + 18 * y0 + 14 * y1 - 32 * y_mid
    c = h * (f1 - 4 * f0) - 11 * y0 - 5 * y1 + 16 * y_mid
    return (((a * x + b) * x + c) * x + h * f0) * x + y0


def _initial_step(
    call: Callable[[float, Tensor], Tensor],
    t0: float,
    y0: Tensor,
    f0: Tensor,
    rtol: float,
    atol: float,
    weight: Tensor | None,
) -> float:
    """Hairer & Wanner's starting step (II.4), in the same norm as the error control; one extra evaluation."""
    with torch.no_grad():
        y0d, f0d = y0.detach(), f0.detach()
        d0 = float(error_ratio(y0d, y0d, y0d, rtol, atol, weight))
        d1 = float(error_ratio(f0d, y0d, y0d, rtol, atol, weight))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = call(t0 + h0, y0d + h0 * f0d).detach()
        d2 = float(error_ratio(f1 - f0d, y0d, y0d, rtol, atol, weight)) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 5)
        return min(100 * h0, h1)
