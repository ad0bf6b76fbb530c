"""The data files the package reads ship inside it, and a non-editable install runs the CLI."""

import csv
import io
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from nanoutils import dspmde, ions, units

ROOT = Path(__file__).resolve().parents[1]
#: data/ (the documented home) → the package's copy (``make package-data`` refreshes it).
COPIES = {
    "data/ions.csv": "nanoutils/_data/ions.csv",
    "data/pitzer/parameters.csv": "nanoutils/_data/pitzer/parameters.csv",
}


@pytest.mark.parametrize("home, copy", COPIES.items())
def test_packaged_copy_equals_the_data_file(home, copy):
    assert (ROOT / copy).read_bytes() == (ROOT / home).read_bytes(), (
        f"{copy} differs from {home}: run make package-data"
    )


def test_wheel_installed_in_a_fresh_venv_predicts_outside_the_repository(tmp_path):
    """Build a wheel from the package sources, install it (no dependencies, no network) into a fresh venv that
    sees this environment's libraries but not its nanoutils, and run ``python -m nanoutils predict`` elsewhere."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "nanoutils", src / "nanoutils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # a source tree on the path hides the wheel
    run = lambda *args, **kw: subprocess.run(args, capture_output=True, text=True, check=True, env=env, **kw)  # noqa: E731
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        str(src),
        "-w",
        str(tmp_path / "wheel"),
    )
    (wheel,) = (tmp_path / "wheel").glob("nanoutils-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel))
    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # this environment's libraries as a plain path: its .pth files (the editable nanoutils) are not processed
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = run(str(python), "-c", "import nanoutils; print(nanoutils.__file__)", cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(venv), where
    out = run(
        str(python), "-m", "nanoutils", "predict", "--feed", "NaCl 10 mM", "--flux-lmh", "18", cwd=tmp_path
    ).stdout
    rows = {r["ion"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"Na+", "Cl-"}
    expected = dspmde.solve(ions.Feed.from_salts("NaCl 10 mM"), units.lmh_to_m_s(18.0)).to_frame().set_index("ion")
    for ion, row in rows.items():
        assert float(row["R"]) == pytest.approx(expected.at[ion, "R"], rel=1e-9)
