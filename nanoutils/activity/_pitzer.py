"""Pitzer ion-interaction model with Pitzer–Kim mixing terms, vectorised (HMW 1984 form).

ln γ_M = z_M² F + Σ_a m_a (2 B_Ma + Z C_Ma) + Σ_c m_c (2 Φ_Mc + Σ_a m_a ψ_Mca)
         + Σ_{a<a'} m_a m_a' ψ_Maa' + |z_M| Σ_c Σ_a m_c m_a C_ca      (anions alike),
φ − 1 = (2/Σm) [−A^φ I^{3/2}/(1 + b√I) + Σ_c Σ_a m_c m_a (B^φ_ca + Z C_ca)
         + Σ_{c<c'} m_c m_c' (Φ^φ_cc' + Σ_a m_a ψ_cc'a) + (anion–anion alike)],
with b = 1.2 kg^½ mol^-½, Φ = θ + ^Eθ(I) and the unsymmetrical-mixing term ^Eθ of
Pitzer (1975) from Harvie's Chebyshev approximation of the J integral (Harvie 1981;
the same coefficients as PHREEQC's ``pitzer.cpp``). Parameters and their
temperature functions come from ``data/pitzer/parameters.csv`` (see its README).
Single-ion values are in Pitzer's unscaled convention unless ``macinnes=True``.
Parameters without temperature terms (Pitzer & Mayorga 1973 rows) keep their 25 °C values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from .. import ions
from ._water import check_temperature, debye_huckel_aphi

PARAMETERS_CSV = ions.PACKAGE_DATA / "pitzer" / "parameters.csv"
T_REF = 298.15  # K, reference temperature of the parameter temperature functions
B_DH = 1.2  # kg^½ mol^-½, Pitzer's universal b

# Harvie (1981) Chebyshev coefficients for J(x), x ≤ 1 and x > 1 (PHREEQC pitzer.cpp, AKX).
_AK_LOW = np.array(
    [
        1.925154014814667,
        -0.060076477753119,
        -0.029779077456514,
        -0.007299499690937,
        0.000388260636404,
        0.000636874599598,
        0.000036583601823,
        -0.000045036975204,
        -0.000004537895710,
        0.000002937706971,
        0.000000396566462,
        -0.000000202099617,
        -0.000000025267769,
        0.000000013522610,
        0.000000001229405,
        -0.000000000821969,
        -0.000000000050847,
        0.000000000046333,
        0.000000000001943,
        -0.000000000002563,
        -0.000000000010991,
    ]
)
_AK_HIGH = np.array(
    [
        0.628023320520852,
        0.462762985338493,
        0.150044637187895,
        -0.028796057604906,
        -0.036552745910311,
        -0.001668087945272,
        0.006519840398744,
        0.001130378079086,
        -0.000887171310131,
        -0.000242107641309,
        0.000087294451594,
        0.000034682122751,
        -0.000004583768938,
        -0.000003548684306,
        -0.000000250453880,
        0.000000216991779,
        0.000000080779570,
        0.000000004558555,
        -0.000000006944757,
        -0.000000002849257,
        0.000000000237816,
    ]
)


@dataclass(frozen=True)
class PitzerResult:
    """ln γ per ion (…, d), osmotic coefficient φ (…) and ionic strength I (…, mol/kg)."""

    ln_gamma: np.ndarray
    osmotic: np.ndarray
    ionic_strength: np.ndarray


@dataclass(frozen=True)
class _Tables:
    z: np.ndarray  # (d,)
    beta0: np.ndarray  # (d, d) symmetric, cation–anion entries only
    beta_alpha: tuple[tuple[float, np.ndarray], ...]  # (α, β) for β⁽¹⁾ and β⁽²⁾, grouped by α
    c: np.ndarray  # (d, d) C = C^φ / (2 √|z_c z_a|)
    theta: np.ndarray  # (d, d) symmetric, like-charged pairs
    psi: np.ndarray  # (d, d, d) fully symmetric
    unsym: tuple[tuple[float, float, np.ndarray], ...]  # (z_j, z_k, mask) for like-signed pairs z_j ≠ z_k
    aphi: float
    kcl: tuple[float, float, float]  # β⁽⁰⁾, β⁽¹⁾, C^φ of KCl (MacInnes scaling)


@lru_cache(maxsize=1)
def parameter_table() -> pd.DataFrame:
    """The Pitzer parameter table as stored (one row per parameter, with sources)."""
    with PARAMETERS_CSV.open(encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False)


def _value(row: Any, t: float) -> float:
    """PHREEQC's temperature function a0 + a1(1/T − 1/Tr) + a2 ln(T/Tr) + a3(T − Tr) + a4(T² − Tr²) + a5(1/T² −
    1/Tr²)."""
    tr = T_REF
    return float(
        row.a0
        + row.a1 * (1 / t - 1 / tr)
        + row.a2 * np.log(t / tr)
        + row.a3 * (t - tr)
        + row.a4 * (t * t - tr * tr)
        + row.a5 * (1 / (t * t) - 1 / (tr * tr))
    )


@lru_cache(maxsize=64)
def _tables(species: tuple[str, ...], temperature: float) -> _Tables:
    d = len(species)
    index = {name: i for i, name in enumerate(species)}
    z = ions.charges(species)
    beta0, c, theta = np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d))
    psi = np.zeros((d, d, d))
    by_alpha: dict[float, np.ndarray] = {}
    kcl = {"beta0": 0.0, "beta1": 0.0, "cphi": 0.0}
    row: Any  # a row of the parameter table (pandas-stubs type every field as any scalar)
    for row in parameter_table().itertuples(index=False):
        names = [n for n in (row.species_1, row.species_2, row.species_3) if n]
        value = _value(row, temperature)
        if row.kind in kcl and names == ["K+", "Cl-"]:
            kcl[row.kind] = value
        if not all(n in index for n in names):
            continue
        i, j = index[names[0]], index[names[1]]
        if row.kind == "beta0":
            beta0[i, j] = beta0[j, i] = value
        elif row.kind in ("beta1", "beta2"):
            b = by_alpha.setdefault(float(row.alpha), np.zeros((d, d)))
            b[i, j] = b[j, i] = b[i, j] + value
        elif row.kind == "cphi":
            c[i, j] = c[j, i] = value / (2.0 * np.sqrt(abs(z[i] * z[j])))
        elif row.kind == "theta":
            theta[i, j] = theta[j, i] = value
        elif row.kind == "psi":
            k = index[names[2]]
            for p in {(i, j, k), (i, k, j), (j, i, k), (j, k, i), (k, i, j), (k, j, i)}:
                psi[p] = value
    unsym = []
    for zj, zk in sorted({(a, b) for a in z for b in z if a * b > 0 and a < b}):
        mask = np.outer(z == zj, z == zk).astype(float)
        unsym.append((float(zj), float(zk), mask + mask.T))
    return _Tables(
        z,
        beta0,
        tuple(sorted(by_alpha.items())),
        c,
        theta,
        psi,
        tuple(unsym),
        debye_huckel_aphi(temperature),
        (kcl["beta0"], kcl["beta1"], kcl["cphi"]),
    )


def _g(x: np.ndarray) -> np.ndarray:
    """g(x) = 2[1 − (1 + x) e^−x]/x², with its series below x = 1e-3 (g(0) = 1)."""
    xs = np.where(x > 1e-3, x, 1.0)
    exact = 2.0 * (1.0 - (1.0 + xs) * np.exp(-xs)) / xs**2
    return np.where(x > 1e-3, exact, 1.0 - 2.0 * x / 3.0 + x**2 / 4.0 - x**3 / 15.0)


def _g_prime(x: np.ndarray) -> np.ndarray:
    """g'(x) = −2[1 − (1 + x + x²/2) e^−x]/x², with its series below x = 1e-3."""
    xs = np.where(x > 1e-3, x, 1.0)
    exact = -2.0 * (1.0 - (1.0 + xs + xs**2 / 2.0) * np.exp(-xs)) / xs**2
    return np.where(x > 1e-3, exact, -x / 3.0 + x**2 / 4.0 - x**3 / 10.0)


def j_function(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pitzer's J(x) and x·J'(x) for x > 0 (Harvie's Chebyshev approximation), vectorised."""
    x = np.asarray(x, dtype=float)
    low = x <= 1.0
    xs = np.where(x > 0, x, 1.0)
    tenth = xs**0.1
    zz = np.where(low, 4.0 * tenth**2 - 2.0, 40.0 / 9.0 / tenth - 22.0 / 9.0)
    dz = np.where(low, 0.8 * tenth**2 / xs, -4.0 / 9.0 / (tenth * xs))
    shape = (-1,) + (1,) * xs.ndim
    ak = np.where(low, _AK_LOW.reshape(shape), _AK_HIGH.reshape(shape))  # (21, …): coefficient k per element
    b0, b1, b2 = np.zeros_like(xs), np.zeros_like(xs), np.zeros_like(xs)  # Clenshaw b_k, b_{k+1}, b_{k+2}
    d0, d1, d2 = np.zeros_like(xs), np.zeros_like(xs), np.zeros_like(xs)  # the same for the z-derivative
    for k in range(20, -1, -1):
        b2, b1, b0 = b1, b0, b2  # rotate buffers; b0 is overwritten in place
        d2, d1, d0 = d1, d0, d2
        np.multiply(zz, d1, out=d0)
        d0 += b1
        d0 -= d2
        np.multiply(zz, b1, out=b0)
        b0 -= b2
        b0 += ak[k]
    j = xs / 4.0 - 1.0 + 0.5 * (b0 - b2)
    xjp = xs * (0.25 + dz * (d0 - d2) / 2.0)
    return np.where(x > 0, j, 0.0), np.where(x > 0, xjp, 0.0)


def _e_theta(
    zj: float, zk: float, jays: dict[float, tuple[np.ndarray, np.ndarray]], ionic: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """^Eθ and ^Eθ' from J and xJ' at x = 6 A^φ √I z z' for the products z_j z_k, z_j², z_k² (Pitzer 1975, A3)."""
    safe = np.where(ionic > 0, ionic, 1.0)
    (jjk, pjk), (jjj, pjj), (jkk, pkk) = jays[zj * zk], jays[zj * zj], jays[zk * zk]
    et = zj * zk * (jjk - 0.5 * jjj - 0.5 * jkk) / (4.0 * safe)
    etp = zj * zk * (pjk - 0.5 * pjj - 0.5 * pkk) / (8.0 * safe**2) - et / safe
    return np.where(ionic > 0, et, 0.0), np.where(ionic > 0, etp, 0.0)


def _jays(products: list[float], ionic: np.ndarray, aphi: float) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """J and xJ' for x = 6 A^φ √I · p, each charge product p, in one vectorised call."""
    xcon = 6.0 * aphi * np.sqrt(ionic)
    j, xjp = j_function(np.stack([xcon * p for p in products]))
    return {p: (j[k], xjp[k]) for k, p in enumerate(products)}


def e_theta(zj: float, zk: float, ionic_strength: np.ndarray, aphi: float) -> tuple[np.ndarray, np.ndarray]:
    """Unsymmetrical mixing ^Eθ_jk(I) (kg/mol) and its I-derivative ^Eθ'_jk (kg²/mol²); 0 where I = 0 or z_j = z_k."""
    i = np.asarray(ionic_strength, dtype=float)
    if zj == zk:
        return np.zeros_like(i), np.zeros_like(i)
    return _e_theta(zj, zk, _jays(sorted({zj * zk, zj * zj, zk * zk}), i, aphi), i)


def _debye_huckel(aphi: float, sq: np.ndarray) -> np.ndarray:
    """Pitzer's Debye–Hückel term f^γ = −A^φ [√I/(1 + b√I) + (2/b) ln(1 + b√I)]."""
    return -aphi * (sq / (1.0 + B_DH * sq) + 2.0 / B_DH * np.log1p(B_DH * sq))


def _unscaled(m: np.ndarray, tab: _Tables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ln γ (…, d), φ (…) and I (…) in Pitzer's own single-ion convention."""
    z, absz = tab.z, np.abs(tab.z)
    ionic = 0.5 * m @ z**2
    big_z = m @ absz
    sq = np.sqrt(ionic)
    safe_i = np.where(ionic > 0, ionic, 1.0)

    def half_sum(mx: np.ndarray) -> np.ndarray:  # Σ_{i<j} m_i m_j X_ij from mx = m @ X
        return 0.5 * np.sum(m * mx, axis=-1)

    f = _debye_huckel(tab.aphi, sq)
    osm = -tab.aphi * ionic * sq / (1.0 + B_DH * sq)
    mb0 = m @ tab.beta0
    ln_g = 2.0 * mb0
    osm = osm + half_sum(mb0)
    for alpha, beta in tab.beta_alpha:
        x = alpha * sq
        mb = m @ beta
        mm = half_sum(mb)
        ln_g = ln_g + 2.0 * _g(x)[..., None] * mb
        f = f + np.where(ionic > 0, mm * _g_prime(x) / safe_i, 0.0)
        osm = osm + mm * np.exp(-x)
    mc = m @ tab.c
    csum = half_sum(mc)
    ln_g = ln_g + big_z[..., None] * mc + absz * csum[..., None]
    osm = osm + big_z * csum
    mt = m @ tab.theta
    ln_g = ln_g + 2.0 * mt
    osm = osm + half_sum(mt)
    jays = (
        _jays(sorted({p for zj, zk, _ in tab.unsym for p in (zj * zk, zj * zj, zk * zk)}), ionic, tab.aphi)
        if tab.unsym
        else {}
    )
    for zj, zk, mask in tab.unsym:
        et, etp = _e_theta(zj, zk, jays, ionic)
        mu = m @ mask
        mm = half_sum(mu)
        ln_g = ln_g + 2.0 * et[..., None] * mu
        f = f + mm * etp
        osm = osm + mm * (et + ionic * etp)
    if tab.psi.any():
        mp = np.einsum("...j,ijk,...k->...i", m, tab.psi, m, optimize=True)
        ln_g = ln_g + 0.5 * mp
        osm = osm + np.sum(m * mp, axis=-1) / 6.0
    ln_g = ln_g + z**2 * f[..., None]
    total = m.sum(axis=-1)
    osmotic = np.where(total > 0, 1.0 + 2.0 * osm / np.where(total > 0, total, 1.0), 1.0)
    return ln_g, osmotic, ionic


def _ln_gamma_kcl(tab: _Tables, ionic: np.ndarray) -> np.ndarray:
    """ln γ±(KCl) in pure KCl at molality I (the MacInnes reference)."""
    b0, b1, cphi = tab.kcl
    sq = np.sqrt(ionic)
    b_gamma = 2.0 * b0 + b1 * (_g(2.0 * sq) + np.exp(-2.0 * sq))  # B^γ = B + B^φ, α = 2
    return _debye_huckel(tab.aphi, sq) + ionic * b_gamma + 1.5 * cphi * ionic**2


def pitzer(
    molality: np.ndarray, species: tuple[str, ...], temperature: float = T_REF, *, macinnes: bool = False
) -> PitzerResult:
    """Pitzer–HMW activity coefficients for molalities (…, d) in mol/kg of canonical ``species``.

    Inputs are assumed validated (finite, ≥ 0, last axis d). ``macinnes`` rescales single-ion
    values so that γ_Cl⁻ equals γ±(KCl) at the same ionic strength (PHREEQC's default);
    mean activity coefficients of neutral salts do not depend on this choice.
    """
    t = check_temperature(temperature)
    species = tuple(species)
    m = np.asarray(molality, dtype=float)
    if not macinnes:
        return PitzerResult(*_unscaled(m, _tables(species, t)))
    padded = species if "Cl-" in species else species + ("Cl-",)
    mp = m if padded == species else np.concatenate([m, np.zeros(m.shape[:-1] + (1,))], axis=-1)
    tab = _tables(padded, t)
    ln_g, osmotic, ionic = _unscaled(mp, tab)
    shift = ln_g[..., padded.index("Cl-")] - _ln_gamma_kcl(tab, ionic)
    ln_g = ln_g + tab.z * shift[..., None]
    return PitzerResult(ln_g[..., : len(species)], osmotic, ionic)
