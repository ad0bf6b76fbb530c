"""The virtual NF270 laboratory: synthetic, clearly labelled **VIRTUAL** rejection data.

The paper fits DSPM-DE (Table 2) and fine-tunes its neural ODE on ≈ 850 measured NF270 ion
concentrations from four studies that are not published in machine-readable form. This module
stands in for them: it *imitates the experimental designs* of those studies (salts, concentration
and flux ranges, fluxes per feed; see :data:`DESIGN`) — it does not reproduce their data — and
"measures" every feed with a transport model deliberately richer than the 4-parameter DSPM-DE,
so that DSPM-DE is mis-specified the way it is for a real membrane (:class:`LabMembrane`):

* membrane charge from an adsorption isotherm in the feed composition (Freundlich in the
  equivalent concentration, plus Langmuir binding of Mg²⁺/Ca²⁺);
* a log-normal pore-radius distribution (Gauss–Hermite classes, Hagen–Poiseuille flow);
* a pore dielectric constant that depends on the pore radius (oriented water layer);
* Pitzer activity coefficients at both pore interfaces (the solver's activity hook);
* concentration polarisation in a film whose mass-transfer coefficient comes from a Sherwood
  correlation of the study's cell (observed rejection), or no film (intrinsic rejection);
* heteroscedastic measurement noise (relative + detection floor) on replicate analyses.

Regenerate the committed files bit-for-bit with ``python -m nanoutils.virtual_lab`` (``--check``
compares instead of writing). The transport model is in :mod:`nanoutils.virtual_lab._model`.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import dspmde, ions, measurements
from ._model import LabMembrane, observed_permeate

GENERATOR_VERSION = "1.0"
DEFAULT_SEED = 20230501
PREFIX = "virtual_nf270_"
METADATA = "virtual_nf270.json"
NACL_DIFFUSIVITY = 2 * 1.334e-9 * 2.032e-9 / (1.334e-9 + 2.032e-9)  # m²/s, salt diffusivity of NaCl


@dataclass(frozen=True)
class Cell:
    """Cross-flow cell of a study: ``velocity`` (m/s), ``hydraulic_diameter`` and ``length`` (m) and
    the Sherwood ``correlation`` (a key of :data:`nanoutils.dspmde.SHERWOOD`)."""

    velocity: float
    hydraulic_diameter: float
    length: float
    correlation: str

    def k(self) -> float:
        """Mass-transfer coefficient (m/s) the lab characterised with NaCl: k = Sh D_NaCl / d_h, 25 °C."""
        nu = 8.93e-7
        re = self.velocity * self.hydraulic_diameter / nu
        sh = dspmde.SHERWOOD[self.correlation](
            re, np.array(nu / NACL_DIFFUSIVITY), self.hydraulic_diameter / self.length
        )
        return float(sh * NACL_DIFFUSIVITY / self.hydraulic_diameter)


@dataclass(frozen=True)
class Study:
    """One imitated study: ``key`` (study id), the publication whose *design* it imitates,
    ``cell`` (None: intrinsic rejection), flux set-points in µm/s, feeds as (feed id, salt recipe)."""

    key: str
    imitates: str
    cell: Cell | None
    fluxes_um_s: tuple[float, ...]
    feeds: tuple[tuple[str, str], ...]
    temperature_C: float = 25.0


def _series(salts: tuple[str, ...], concentrations_mM: tuple[float, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((f"{s}-{c:g}mM", f"{s} {c:g} mM") for s in salts for c in concentrations_mM)


#: The four imitated designs (≈ 850 ion-concentration points). An imitation, not their data.
DESIGN: tuple[Study, ...] = (
    Study(
        "alzoubi2007",
        "Al-Zoubi et al. 2007 (single salts of Na+, K+, Mg2+ with Cl-/SO4-2)",
        Cell(0.5, 1.0e-3, 0.1, "leveque"),
        (3, 6, 9, 12, 15, 20, 25),
        _series(("NaCl", "KCl", "Na2SO4", "K2SO4", "MgSO4"), (5, 20, 100)),
    ),
    Study(
        "micari2020",
        "Micari et al. 2020 (concentrated NaCl brines with Mg2+, Ca2+, SO4-2)",
        Cell(0.15, 1.5e-3, 0.2, "schock_miquel"),
        (2, 4, 6, 8, 11, 14),
        (
            ("NaCl-500mM", "NaCl 500 mM"),
            ("NaCl-1000mM", "NaCl 1000 mM"),
            ("MgCl2-100mM", "MgCl2 100 mM"),
            ("CaCl2-100mM", "CaCl2 100 mM"),
            ("NaCl-MgCl2", "NaCl 500 mM + MgCl2 50 mM"),
            ("NaCl-CaCl2", "NaCl 500 mM + CaCl2 50 mM"),
            ("NaCl-Na2SO4", "NaCl 500 mM + Na2SO4 50 mM"),
            ("NaCl-MgCl2-CaCl2", "NaCl 1000 mM + MgCl2 50 mM + CaCl2 50 mM"),
            ("brine-5ion", "NaCl 800 mM + MgCl2 60 mM + CaCl2 20 mM + Na2SO4 40 mM"),
        ),
    ),
    Study(
        "alzoubi_omar2009",
        "Al-Zoubi & Omar 2009 (salt mixtures from high-salinity and Li brines)",
        Cell(0.3, 1.2e-3, 0.15, "leveque"),
        (3, 5, 8, 11, 15, 19, 24, 30),
        (
            ("NaCl-MgSO4", "NaCl 100 mM + MgSO4 20 mM"),
            ("NaCl-Na2SO4", "NaCl 100 mM + Na2SO4 20 mM"),
            ("NaCl-MgCl2", "NaCl 300 mM + MgCl2 30 mM"),
            ("seawater", "NaCl 400 mM + MgCl2 50 mM + Na2SO4 28 mM + CaCl2 10 mM + KCl 10 mM"),
            ("seawater-diluted", "NaCl 100 mM + MgCl2 12.5 mM + Na2SO4 7 mM + CaCl2 2.5 mM + KCl 2.5 mM"),
            ("LiCl", "LiCl 50 mM"),
            ("LiCl-MgCl2", "LiCl 50 mM + MgCl2 100 mM"),
            ("LiCl-NaCl-MgCl2", "LiCl 20 mM + NaCl 200 mM + MgCl2 50 mM"),
        ),
    ),
    Study(
        "epsztein2018",
        "Epsztein et al. 2018 (Donnan exclusion of monovalent anions, Na+ salts)",
        None,
        (2, 4, 6, 9, 12, 16, 20, 25, 32, 40),
        _series(("NaF", "NaCl", "NaBr", "NaNO3", "KCl"), (10,))
        + (
            ("NaCl-1mM", "NaCl 1 mM"),
            ("NaCl-100mM", "NaCl 100 mM"),
            ("anions-10mM", "NaF 2.5 mM + NaCl 2.5 mM + NaBr 2.5 mM + NaNO3 2.5 mM"),
            ("anions-40mM", "NaF 10 mM + NaCl 10 mM + NaBr 10 mM + NaNO3 10 mM"),
        ),
    ),
)


@dataclass(frozen=True)
class Noise:
    """Replicate analyses: each reads c·(1 + ``rel``·ε₁) + ``floor``·ε₂ (ε ~ N(0, 1), mol/m³),
    truncated at 0 (no instrument reads a negative concentration). A row reports the mean of
    ``n_replicates`` readings and their sample standard deviation, at least ``floor``."""

    rel: float = 0.03
    floor: float = 0.002
    n_replicates: int = 3


def design_table(design: tuple[Study, ...] = DESIGN) -> pd.DataFrame:
    """One row per imitated study: salts, concentration range (mol/m³), fluxes (µm/s), points, film."""
    rows = []
    for s in design:
        feeds = [ions.Feed.from_salts(recipe) for _, recipe in s.feeds]
        conc = [c for f in feeds for c in f.values()]
        rows.append(
            {
                "study": s.key,
                "imitates": s.imitates,
                "feeds": len(s.feeds),
                "ions": " ".join(sorted({i for f in feeds for i in f}, key=ions.species().index)),
                "c range (mol/m³)": f"{min(conc):g}–{max(conc):g}",
                "fluxes (µm/s)": f"{len(s.fluxes_um_s)}: {min(s.fluxes_um_s):g}–{max(s.fluxes_um_s):g}",
                "rejection": "observed" if s.cell else "intrinsic",
                "k film (µm/s)": round(s.cell.k() * 1e6, 1) if s.cell else None,
                "points": sum(len(f) for f in feeds) * len(s.fluxes_um_s),
            }
        )
    return pd.DataFrame(rows)


def simulate_feed(
    study: Study, feed_index: int, lab: LabMembrane, noise: Noise, seed: int, study_index: int
) -> pd.DataFrame:
    """Schema rows (one per ion and flux) of one feed of ``study``; its random stream depends only on
    (seed, study_index, feed_index), so any feed can be regenerated alone."""
    feed_id, recipe = study.feeds[feed_index]
    feed = ions.Feed.from_salts(recipe)
    names, c_b = feed.ions, feed.vector(feed.ions)
    jv = np.asarray(study.fluxes_um_s, float) * 1e-6
    temperature = study.temperature_C + 273.15
    k = study.cell.k() if study.cell else None
    c_true, X_d = observed_permeate(c_b, names, jv, lab, film_k=k, temperature=temperature)
    rng = np.random.default_rng(np.random.SeedSequence([seed, study_index, feed_index]))
    eps = rng.standard_normal((2, noise.n_replicates) + c_true.shape)
    reads = np.maximum(c_true * (1 + noise.rel * eps[0]) + noise.floor * eps[1], 0.0)
    mean, sd = reads.mean(axis=0), np.maximum(reads.std(axis=0, ddof=1), noise.floor)
    m_idx, i_idx = (a.ravel() for a in np.meshgrid(np.arange(len(jv)), np.arange(len(names)), indexing="ij"))
    return pd.DataFrame(
        {
            "study": study.key,
            "feed_id": feed_id,
            "membrane": "NF270 (VIRTUAL)",
            "T_C": f"{study.temperature_C:g}",
            "feed_mol_m3": measurements.format_feed(feed),
            "feed_salts": recipe,
            "rejection_type": "observed" if study.cell else "intrinsic",
            "quantity": np.asarray(names, dtype=object)[i_idx],
            "Jv_um_s": [f"{j:g}" for j in np.asarray(study.fluxes_um_s, float)[m_idx]],
            "c_perm_mol_m3": [f"{v:.6g}" for v in mean[m_idx, i_idx]],
            "sigma_c_perm_mol_m3": [f"{v:.3g}" for v in sd[m_idx, i_idx]],
            "source": f"VIRTUAL data: nanoutils.virtual_lab v{GENERATOR_VERSION} (seed {seed}), imitating the design "
            f"of {study.imitates.split(' (')[0]}; not measured",
            "x_virtual": "yes",
            "x_k_film_m_s": f"{k:.6g}" if k else "",
            "x_cell": (
                f"{study.cell.correlation}; u={study.cell.velocity:g} m/s; d_h={study.cell.hydraulic_diameter:g} m; "
                f"L={study.cell.length:g} m"
            )
            if study.cell
            else "",
            "x_n_replicates": noise.n_replicates,
            "x_X_d_true_mol_m3": f"{X_d:.6g}",
            "x_c_perm_true_mol_m3": [f"{v:.8g}" for v in c_true[m_idx, i_idx]],
        }
    )


def generate(
    design: tuple[Study, ...] = DESIGN,
    lab: LabMembrane = LabMembrane(),
    noise: Noise = Noise(),
    seed: int = DEFAULT_SEED,
) -> dict[str, pd.DataFrame]:
    """Schema tables, one per study (study key → DataFrame of strings/ints as written)."""
    return {
        s.key: pd.concat([simulate_feed(s, i, lab, noise, seed, si) for i in range(len(s.feeds))], ignore_index=True)
        for si, s in enumerate(design)
    }


def metadata(
    design: tuple[Study, ...], lab: LabMembrane, noise: Noise, seed: int, tables: dict[str, pd.DataFrame]
) -> dict:
    """What the JSON beside the files records: generator version, seed, parameters, design, counts."""
    radii, eps_p, share = lab.pore_classes()
    return {
        "virtual": True,
        "note": "VIRTUAL data from nanoutils.virtual_lab: an imitation of four NF270 studies' designs, not their data",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "command": "python -m nanoutils.virtual_lab",
        "lab_membrane": asdict(lab),
        "noise": asdict(noise),
        "pore_classes": {
            "r_p_nm": [round(r * 1e9, 6) for r in radii],
            "eps_p": [round(e, 4) for e in eps_p],
            "permeate_share": [round(w, 6) for w in share],
        },
        "design": [{**asdict(s), "k_film_m_s": s.cell.k() if s.cell else None} for s in design],
        "points": {k: len(t) for k, t in tables.items()},
        "total_points": sum(len(t) for t in tables.values()),
    }


def write(
    directory: str | Path = measurements.MEASURED_DIR,
    *,
    design: tuple[Study, ...] = DESIGN,
    lab: LabMembrane = LabMembrane(),
    noise: Noise = Noise(),
    seed: int = DEFAULT_SEED,
) -> list[Path]:
    """Generate and write ``virtual_nf270_<study>.csv`` files and ``virtual_nf270.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = generate(design, lab, noise, seed)
    paths = []
    for key, table in tables.items():
        paths.append(directory / f"{PREFIX}{key}.csv")
        table.to_csv(paths[-1], index=False, lineterminator="\n")
    paths.append(directory / METADATA)
    paths[-1].write_text(json.dumps(metadata(design, lab, noise, seed, tables), indent=1, ensure_ascii=False) + "\n")
    return paths


def files(directory: str | Path = measurements.MEASURED_DIR) -> list[Path]:
    """The virtual CSV files in ``directory``, sorted."""
    return sorted(Path(directory).glob(f"{PREFIX}*.csv"))


def load(directory: str | Path = measurements.MEASURED_DIR, **kwargs) -> measurements.Measurements:
    """Load every VIRTUAL study file of ``directory`` as one :class:`nanoutils.measurements.Measurements`."""
    paths = files(directory)
    if not paths:
        raise FileNotFoundError(f"no {PREFIX}*.csv in {directory}; run `python -m nanoutils.virtual_lab`")
    return measurements.load_measurements(paths, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``python -m nanoutils.virtual_lab [--out DIR] [--seed N] [--check]``."""
    parser = argparse.ArgumentParser(description="Regenerate the VIRTUAL NF270 data set (bit-for-bit for a seed).")
    parser.add_argument(
        "--out", default=str(measurements.MEASURED_DIR), help="output directory (default: data/measured)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--check", action="store_true", help="regenerate into a temporary folder and compare")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write(args.out, seed=args.seed):
            print(f"wrote {path}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        new = write(tmp, seed=args.seed)
        differ = (
            [p.name for p in new if not filecmp.cmp(p, Path(args.out) / p.name, shallow=False)]
            if all((Path(args.out) / p.name).is_file() for p in new)
            else ["(missing files)"]
        )
    print("identical" if not differ else f"DIFFERENT: {', '.join(differ)}")
    return 0 if not differ else 1
