"""Activity coefficients: closed-form limits, thermodynamic consistency, PHREEQC's Pitzer model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from nanoutils import activity, ions

SPECIES = ions.species()
Z = ions.charges(SPECIES)
SALTS = {
    "NaCl": ("Na+", "Cl-"),
    "KCl": ("K+", "Cl-"),
    "MgCl2": ("Mg2+", "Cl-"),
    "CaCl2": ("Ca2+", "Cl-"),
    "Na2SO4": ("Na+", "SO4-2"),
    "MgSO4": ("Mg2+", "SO4-2"),
}
MOLALITIES = (0.001, 0.01, 0.1, 0.5, 1.0, 3.0)  # mol/kg of salt
# Seawater-like: Millero et al. (2008) Deep-Sea Res. I 55, 50, Table 4 (S = 35), mol/kg-soln / 0.96484
# kg-H2O/kg-soln, six major ions, Cl⁻ adjusted so that these six are electroneutral.
SEAWATER = {"Na+": 0.48606, "K+": 0.010580, "Mg2+": 0.054742, "Ca2+": 0.010657, "SO4-2": 0.029264}
SEAWATER["Cl-"] = SEAWATER["Na+"] + SEAWATER["K+"] + 2 * (SEAWATER["Mg2+"] + SEAWATER["Ca2+"] - SEAWATER["SO4-2"])


def salt_molalities(salt: str, molality: float) -> tuple[tuple[str, ...], np.ndarray]:
    stoich = ions.parse_salt(salt)
    return tuple(stoich), np.array([n * molality for n in stoich.values()])


def neutral_random(rng: np.random.Generator, n: int, species: tuple[str, ...] = SPECIES) -> np.ndarray:
    """n random electroneutral compositions (mol/kg), balanced with the first cation or the last anion."""
    z = ions.charges(species)
    assert z[0] > 0 > z[-1]
    m = rng.uniform(0.0, 0.4, (n, len(species)))
    net = m @ z
    m[:, -1] += np.maximum(net, 0.0) / -z[-1]
    m[:, 0] += np.maximum(-net, 0.0) / z[0]
    return m


# ---------------------------------------------------------------- limits and models


def test_ideal_is_exactly_one() -> None:
    m = neutral_random(np.random.default_rng(1), 5)
    assert np.all(activity.coefficients(m, model="ideal") == 1.0)


def test_dilute_limit_pitzer_davies_ideal() -> None:
    """Pitzer → Davies at 1e-5 mol/kg of each salt; → ideal only once DH's z²√I term is < 1e-3."""
    for salt in SALTS:
        names, m = salt_molalities(salt, 1e-5)
        pitzer, davies = (activity.coefficients(m, names, model=k) for k in ("pitzer", "davies"))
        np.testing.assert_allclose(pitzer, davies, rtol=1e-3, err_msg=salt)
    m = np.full(len(SPECIES), 1e-6)  # the whole table (I = 9e-6); β⁽²⁾ of 2–2 pairs is felt above this
    np.testing.assert_allclose(*(activity.coefficients(m, model=k) for k in ("pitzer", "davies")), rtol=1e-3)
    trace = np.array([1e-7, 1e-7])  # NaCl at 1e-7 mol/kg: all three models within 1e-3 of each other
    gammas = [activity.coefficients(trace, ("Na+", "Cl-"), model=k) for k in activity.MODELS]
    assert np.ptp(gammas, axis=0).max() < 1e-3


def test_limiting_law_slope_at_every_temperature() -> None:
    m = np.full(len(SPECIES), 1e-9)
    sqrt_i = np.sqrt(activity.ionic_strength(m))
    for t in (278.15, 298.15, 323.15):
        slope = -3.0 * activity.debye_huckel_aphi(t) * Z**2 * sqrt_i
        for model in ("pitzer", "davies"):
            np.testing.assert_allclose(activity.ln_coefficients(m, model=model, temperature=t), slope, rtol=1e-3)


def test_aphi_and_water_reference_values() -> None:
    assert activity.debye_huckel_aphi(298.15) == pytest.approx(0.3915, abs=5e-4)  # Archer & Wang (1990): 0.3915
    assert activity.water_density(298.15) == pytest.approx(997.05, abs=0.1)
    assert activity.water_permittivity(298.15) == pytest.approx(78.4, abs=0.1)
    assert activity.debye_huckel_aphi(323.15) > activity.debye_huckel_aphi(298.15)


def test_pure_water_and_missing_species() -> None:
    zero = np.zeros(len(SPECIES))
    np.testing.assert_array_equal(activity.coefficients(zero), 1.0)
    assert activity.osmotic_coefficient(zero) == 1.0


def test_one_salt_in_any_species_list_gives_the_single_salt_result() -> None:
    for salt in SALTS:
        names, m = salt_molalities(salt, 0.7)
        alone = activity.ln_coefficients(m, names)
        full = np.zeros(len(SPECIES))
        full[[SPECIES.index(n) for n in names]] = m
        within = activity.ln_coefficients(full)[[SPECIES.index(n) for n in names]]
        np.testing.assert_allclose(within, alone, rtol=1e-13, atol=1e-15)
        reversed_ = activity.ln_coefficients(m[::-1], names[::-1])[::-1]
        np.testing.assert_allclose(reversed_, alone, rtol=1e-13, atol=1e-15)


def test_macinnes_scaling_keeps_neutral_combinations_and_pads_chloride() -> None:
    names, m = salt_molalities("Na2SO4", 0.8)
    plain, scaled = activity.pitzer(m, names), activity.pitzer(m, names, macinnes=True)
    assert not np.allclose(plain.ln_gamma, scaled.ln_gamma)
    np.testing.assert_allclose(
        activity.mean_coefficient(scaled.ln_gamma, names, "Na2SO4"),
        activity.mean_coefficient(plain.ln_gamma, names, "Na2SO4"),
        rtol=1e-13,
    )
    with_cl = activity.pitzer(np.append(m, 0.0), names + ("Cl-",), macinnes=True)
    np.testing.assert_allclose(with_cl.ln_gamma[:2], scaled.ln_gamma, rtol=1e-13)
    kcl = activity.pitzer([0.8, 0.8], ("K+", "Cl-"), macinnes=True).ln_gamma  # KCl: γ_K = γ_Cl = γ±
    assert kcl[0] == pytest.approx(kcl[1], rel=1e-12)


def test_batched_equals_one_by_one_and_keeps_leading_axes() -> None:
    m = neutral_random(np.random.default_rng(2), 12).reshape(3, 4, len(SPECIES))
    m[0, 0] = 0.0  # pure water in the batch
    batch = activity.pitzer(m, SPECIES)
    assert batch.ln_gamma.shape == m.shape and batch.osmotic.shape == m.shape[:2]
    for idx in np.ndindex(m.shape[:2]):
        one = activity.pitzer(m[idx], SPECIES)
        np.testing.assert_allclose(batch.ln_gamma[idx], one.ln_gamma, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(batch.osmotic[idx], one.osmotic, rtol=1e-13)


@pytest.mark.parametrize("temperature", [278.15, 298.15, 323.15])
def test_ln_gamma_is_the_derivative_of_the_excess_gibbs_energy(temperature: float) -> None:
    """G^ex/(w R T) = Σ m_i (1 − φ + ln γ_i) and ∂G^ex/∂m_i = ln γ_i: checks every term, ^Eθ' and ψ included."""
    m0 = neutral_random(np.random.default_rng(3), 1)[0]

    def g_ex(m: np.ndarray) -> np.ndarray:
        r = activity.pitzer(m, SPECIES, temperature)
        return np.sum(m * (1.0 - r.osmotic[..., None] + r.ln_gamma), axis=-1)

    h = 1e-6 * np.eye(len(SPECIES))
    gradient = (g_ex(m0 + h) - g_ex(m0 - h)) / 2e-6
    np.testing.assert_allclose(gradient, activity.pitzer(m0, SPECIES, temperature).ln_gamma, atol=1e-7)


def test_j_function_matches_its_integral_definition() -> None:
    """J(x) = x/4 − 1 + (1/x) ∫₀^∞ [1 − exp(−(x/y) e^−y)] y² dy (Pitzer 1975), and x J'(x)."""

    def j_exact(x: float) -> float:
        def integrand(y: float) -> float:
            q = -(x / y) * np.exp(-y)
            return (1.0 + q + q * q / 2.0 - np.exp(q)) * y * y

        return quad(integrand, 0.0, np.inf, limit=400, epsabs=1e-14)[0] / x

    xs = np.array([0.01, 0.1, 1.0, 5.0, 20.0, 100.0])
    j, xjp = activity.j_function(xs)
    np.testing.assert_allclose(j, [j_exact(x) for x in xs], rtol=1e-5)
    num = [x * (j_exact(x * 1.0001) - j_exact(x * 0.9999)) / (0.0002 * x) for x in xs]
    np.testing.assert_allclose(xjp, num, rtol=1e-3)


def test_unsymmetrical_mixing_vanishes_for_equal_charges_and_not_otherwise() -> None:
    i = np.array([0.01, 0.7])
    et, etp = activity.e_theta(1.0, 1.0, i, 0.392)
    assert np.all(et == 0) and np.all(etp == 0)
    et, _ = activity.e_theta(1.0, 2.0, i, 0.392)
    assert np.all(et < 0)


def test_molar_molal_conversion() -> None:
    assert activity.molar_to_molal(997.0) == pytest.approx(1.0, rel=2e-4)
    c = np.array([[10.0, 10.0], [500.0, 500.0]])  # mol/m³
    np.testing.assert_allclose(activity.molal_to_molar(activity.molar_to_molal(c, 310.0), 310.0), c)
    np.testing.assert_allclose(
        activity.coefficients(c, ("Na+", "Cl-"), units="mol/m3"),
        activity.coefficients(activity.molar_to_molal(c), ("Na+", "Cl-")),
    )


def test_robinson_stokes_mean_activity_coefficients() -> None:
    """γ± of NaCl and KCl, Robinson & Stokes, Electrolyte Solutions (2nd ed., 1959), Appendix 8.10, 25 °C."""
    table = {"NaCl": {0.1: 0.778, 1.0: 0.657, 3.0: 0.714}, "KCl": {0.1: 0.770, 1.0: 0.604, 3.0: 0.569}}
    for salt, values in table.items():
        for molality, reference in values.items():
            names, m = salt_molalities(salt, molality)
            ours = activity.mean_coefficient(activity.ln_coefficients(m, names), names, salt)
            assert ours == pytest.approx(reference, rel=5e-3), (salt, molality)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(molality=[0.1, -0.1], species=("Na+", "Cl-")), activity.MolalityValueError, "Cl- .* -0.1"),
        (dict(molality=[0.1, np.nan], species=("Na+", "Cl-")), activity.MolalityValueError, "nan"),
        (dict(molality=[0.1, 0.1, 0.1], species=("Na+", "Cl-")), activity.ShapeError, r"\(3,\)"),
        (dict(molality=0.1, species=("Na+", "Cl-")), activity.ShapeError, "last axis"),
        (dict(molality=[0.1, 0.1], species=("Na+", "Cl-"), model="debye"), activity.UnknownModelError, "debye"),
        (dict(molality=[0.1, 0.1], species=("Na+", "Xx-")), ions.UnknownIonError, "Xx-"),
        (dict(molality=[0.1, 0.1], species=("Na+", "Na")), activity.ActivityError, "twice"),
        (dict(molality=[0.1, 0.1], species=("Na+", "Cl-"), temperature=400.0), activity.TemperatureError, "400"),
    ],
)
def test_bad_input_raises_value_errors_naming_the_culprit(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        activity.ln_coefficients(**kwargs)
    assert issubclass(error, ValueError)


def test_bad_units_and_salt() -> None:
    with pytest.raises(activity.ActivityError, match="mmol"):
        activity.coefficients([0.1, 0.1], ("Na+", "Cl-"), units="mmol")
    with pytest.raises(activity.ActivityError, match="SO4-2"):
        activity.mean_coefficient(np.zeros(2), ("Na+", "Cl-"), "Na2SO4")
    with pytest.raises(activity.MolalityValueError, match="inf"):
        activity.pitzer([[0.1, 0.1], [np.inf, 0.1]], ("Na+", "Cl-"), macinnes=True)
    with pytest.raises(activity.TemperatureError, match="nan"):
        activity.osmotic_coefficient([0.1, 0.1], ("Na+", "Cl-"), temperature=float("nan"))


def test_every_cation_anion_pair_has_a_documented_row() -> None:
    table = activity.parameter_table()
    binary = table[table.kind == "beta0"]
    pairs = set(zip(binary.species_1, binary.species_2, strict=True))
    for c in (s for s in SPECIES if ions.get(s).z > 0):
        for a in (s for s in SPECIES if ions.get(s).z < 0):
            assert (c, a) in pairs, (c, a)
    assert (table.source != "").all()
    assert (table[table.source == "none"].note != "").all()


# ---------------------------------------------------------------- PHREEQC (pitzer.dat) as reference


@pytest.fixture(scope="module")
def phreeqc():
    phreeqpython = pytest.importorskip("phreeqpython", reason="phreeqpython (dev extra) is the PHREEQC reference")
    return phreeqpython.PhreeqPython(database="pitzer.dat")


_ELEMENT = {"Li+": "Li", "Na+": "Na", "K+": "K", "Mg2+": "Mg", "Ca2+": "Ca", "Cl-": "Cl", "Br-": "Br", "SO4-2": "S(6)"}
_PHREEQC_NAME = {"Mg2+": "Mg+2", "Ca2+": "Ca+2"}


def phreeqc_solution(pp, composition: dict[str, float], temperature_c: float = 25.0):
    """Free-ion molalities (mol/kg) and γ (MacInnes-scaled, as PHREEQC reports them) per ion."""
    sol = pp.add_solution(
        {"units": "mmol/kgw", "temp": temperature_c, **{_ELEMENT[k]: 1e3 * v for k, v in composition.items()}}
    )
    act, mol = sol.species_activities, sol.species_molalities
    names = tuple(composition)
    m = np.array([mol[_PHREEQC_NAME.get(n, n)] for n in names])
    gamma = np.array([act[_PHREEQC_NAME.get(n, n)] for n in names]) / m
    sol.forget()
    return names, m, gamma


@pytest.mark.parametrize("salt", list(SALTS))
def test_mean_activity_coefficients_agree_with_phreeqc(phreeqc, salt: str) -> None:
    for temperature_c in (25.0, 5.0, 50.0):
        for molality in MOLALITIES if temperature_c == 25.0 else (0.1, 1.0):
            names, m_total = salt_molalities(salt, molality)
            names, m, gamma_ref = phreeqc_solution(phreeqc, dict(zip(names, m_total, strict=True)), temperature_c)
            ours = activity.mean_coefficient(
                activity.ln_coefficients(m, names, temperature=273.15 + temperature_c), names, salt
            )
            ref = activity.mean_coefficient(np.log(gamma_ref), names, salt)
            assert ours == pytest.approx(ref, rel=2e-3), (salt, molality, temperature_c, ours, ref)


@pytest.mark.parametrize("factor", [0.01, 0.1, 1.0, 2.0])
def test_seawater_single_ion_and_mean_values_agree_with_phreeqc(phreeqc, factor: float) -> None:
    names, m, gamma_ref = phreeqc_solution(phreeqc, {k: factor * v for k, v in SEAWATER.items()})
    scaled = np.exp(activity.pitzer(m, names, macinnes=True).ln_gamma)
    np.testing.assert_allclose(scaled, gamma_ref, rtol=2e-3)
    lg = activity.ln_coefficients(m, names)  # Pitzer's own (unscaled) convention
    for salt in ("NaCl", "KCl", "MgCl2", "CaCl2", "Na2SO4", "MgSO4"):
        ref = activity.mean_coefficient(np.log(gamma_ref), names, salt)
        assert activity.mean_coefficient(lg, names, salt) == pytest.approx(ref, rel=2e-3), salt


def test_random_mixtures_and_osmotic_coefficient_agree_with_phreeqc(phreeqc) -> None:
    names = ("Li+", "Na+", "K+", "Mg2+", "Ca2+", "Br-", "Cl-", "SO4-2")
    for m_total in neutral_random(np.random.default_rng(4), 4, names):
        names_, m, gamma_ref = phreeqc_solution(phreeqc, dict(zip(names, m_total, strict=True)))
        scaled = np.exp(activity.pitzer(m, names_, macinnes=True).ln_gamma)
        np.testing.assert_allclose(scaled, gamma_ref, rtol=2e-3)
    phreeqc.ip.run_string(
        "SELECTED_OUTPUT 1\n-reset false\nUSER_PUNCH 1\n-headings phi\n10 PUNCH OSMOTIC\n"
        "SOLUTION 1\nunits mol/kgw\nNa 0.6\nMg 0.05\nCl 0.6\nS(6) 0.05\nEND\n"
    )
    phi_ref = phreeqc.ip.get_selected_output_array()[1][0]
    phi = activity.osmotic_coefficient([0.6, 0.05, 0.6, 0.05], ("Na+", "Mg2+", "Cl-", "SO4-2"))
    assert phi == pytest.approx(phi_ref, rel=1e-3)


def test_parameter_file_matches_pitzer_dat(phreeqc) -> None:
    """Every PHREEQC row equals its pitzer.dat line, and no pitzer.dat line among the table's species is missing."""
    import phreeqpython

    text = (Path(phreeqpython.__file__).parent / "database" / "pitzer.dat").read_text(encoding="latin1")
    block = text.split("\nPITZER\n", 1)[1].split("\nEXCHANGE_MASTER_SPECIES", 1)[0]
    kinds = {"-B0": "beta0", "-B1": "beta1", "-B2": "beta2", "-C0": "cphi", "-THETA": "theta", "-PSI": "psi"}
    known = {_PHREEQC_NAME.get(s, s) for s in SPECIES}
    dat, section = {}, None
    for line in block.splitlines():
        body = line.split("#")[0].split()
        if not body:
            continue
        if body[0].startswith("-"):
            section = body[0]
            continue
        n = 3 if section == "-PSI" else 2
        if section in kinds and set(body[:n]) <= known:
            dat[(kinds[section], " ".join(body[:n]))] = [float(v) for v in body[n:]] + [0.0] * (6 - len(body[n:]))
    table = activity.parameter_table()
    ours = {}
    for row in table[table.source.str.startswith("PHREEQC")].itertuples():
        key = (row.kind, re.sub(r"^.*PITZER -\w+: ", "", row.source))
        ours[key] = [row.a0, row.a1, row.a2, row.a3, row.a4, row.a5]
    assert set(ours) == set(dat)
    for key, values in dat.items():
        np.testing.assert_allclose(ours[key], values, rtol=1e-12, err_msg=str(key))
