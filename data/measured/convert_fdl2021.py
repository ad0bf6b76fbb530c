"""Convert the digitised NF270 data of Fernández de Labastida & Yaroshchuk (2021) to the schema.

Source: ``sources/nf270_fdl2021_rejection.csv`` (M. Fernández de Labastida and A. Yaroshchuk,
Membranes 11 (2021) 272, doi:10.3390/membranes11040272, CC BY 4.0; values digitised from the
paper's Figures 1-4). Output: ``nf270_fdl2021.csv``. Run from anywhere::

    python data/measured/convert_fdl2021.py [--out PATH]

Decisions (see README.md):
- feed = dominant salt (0.01 mol/L) + NaNO3 + NH4Cl (2e-4 mol/L each), written as the full
  ion composition in mol/m³ and as the salt recipe; 20 °C; rejections are intrinsic.
- σ_R = max(dR_read, SIGMA_R_FLOOR): dR_read is the digitisation reading error, not
  experimental scatter, so a floor stands for the run-to-run scatter. The flux reading error
  dJv_read becomes sigma_Jv_um_s; propagated through dR/dJv it would change σ_R by < 6e-4
  after the floor, so it is not folded into σ_R.
- numbers are copied verbatim from the source; the authors' SDEM fit, the raw dR_read and the
  digitiser's quality flag are kept as x_ columns.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from nanoutils import ions
from nanoutils.measurements import format_feed, load_measurements, quantity

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "sources" / "nf270_fdl2021_rejection.csv"
OUT = HERE / "nf270_fdl2021.csv"
SIGMA_R_FLOOR = 0.02
STUDY, MEMBRANE, T_C = "fdl2021", "NF270", "20"
CITATION = (
    "M. Fernández de Labastida and A. Yaroshchuk, Membranes 11 (2021) 272, "
    "doi:10.3390/membranes11040272 (CC BY 4.0); digitised from Figs 1-4 by the choupo project"
)
COLUMNS = [
    "study",
    "feed_id",
    "membrane",
    "T_C",
    "feed_salts",
    "feed_mol_m3",
    "rejection_type",
    "quantity",
    "Jv_um_s",
    "sigma_Jv_um_s",
    "R_frac",
    "sigma_R_frac",
    "source",
    "x_R_authors_SDEM_fit",
    "x_dR_read",
    "x_quality",
]


def _mM(molar: str) -> str:
    return f"{float(molar) * 1000:g}"


def convert_row(src: dict[str, str]) -> dict[str, str]:
    """One source row → one schema row (strings)."""
    salt = src["dominant_salt"]
    recipe = " + ".join(
        [f"{salt} {_mM(src['dominant_c_molL'])} mM"]
        + [f"{t} {_mM(src['trace_c_molL'])} mM" for t in src["trace_salts"].split("+")]
    )
    feed = ions.Feed.from_salts(recipe)
    dR = float(src["dR_read"])
    return {
        "study": STUDY,
        "feed_id": f"{salt}-{_mM(src['dominant_c_molL'])}mM",
        "membrane": MEMBRANE,
        "T_C": T_C,
        "feed_salts": recipe,
        "feed_mol_m3": format_feed(feed),
        "rejection_type": "intrinsic",
        "quantity": quantity(src["ion"]).name,
        "Jv_um_s": src["Jv_um_s"],
        "sigma_Jv_um_s": src["dJv_read_um_s"],
        "R_frac": src["R_intrinsic"],
        "sigma_R_frac": src["dR_read"] if dR >= SIGMA_R_FLOOR else f"{SIGMA_R_FLOOR:g}",
        "source": CITATION,
        "x_R_authors_SDEM_fit": src["R_authors_SDEM_fit"],
        "x_dR_read": src["dR_read"],
        "x_quality": src["quality"],
    }


def convert(source: Path = SOURCE, out: Path = OUT) -> Path:
    """Write the converted CSV to ``out`` and return its path (validated by loading it)."""
    with source.open(newline="", encoding="utf-8") as fh:
        rows = [convert_row(r) for r in csv.DictReader(fh)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    load_measurements(out)  # raises if the output breaks the schema
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    path = convert(args.source, args.out)
    print(load_measurements(path).report)


if __name__ == "__main__":
    main()
