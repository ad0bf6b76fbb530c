"""`python -m nanoutils calibrate` and `predict --model`: the happy path and the bad-input matrix.

Every bad input gives exit code 2, one line `error: …` naming the path and what is wrong, no traceback, and
leaves no output file (nor a temporary one) behind.
"""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from nanoutils import measurements
from nanoutils.__main__ import main

REAL = measurements.MEASURED_DIR / "nf270_fdl2021.csv"
HEADER = "study,feed_id,membrane,T_C,feed_mol_m3,rejection_type,quantity,Jv_um_s,R_frac,source"
ROW = "lab,A,NF270,25,Na+=10; Cl-=10,intrinsic,NaCl,5,0.4,notebook"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """A dspmde and an sf bundle of the real data, calibrated from the command line with the smoke budgets."""
    root = tmp_path_factory.mktemp("bundles")
    out = {}
    for name in ("dspmde", "sf"):
        out[name] = root / name
        assert main(["calibrate", str(REAL), "--model", name, "--out", str(out[name]), "--profile", "smoke"]) == 0
    return out


@pytest.fixture
def feeds_csv(tmp_path) -> Path:
    path = tmp_path / "feeds.csv"
    path.write_text("feed_id,salts\nfdl,NaCl 10 mM + NaNO3 0.2 mM + NH4Cl 0.2 mM\nbrine,MgCl2 50 mM + NaCl 2 mM\n")
    return path


def test_calibrate_writes_a_complete_bundle(bundles):
    d = bundles["dspmde"]
    spec = json.loads((d / "model.json").read_text())
    assert spec["name"] == "dspmde" and spec["point_estimate"] and len(spec["members"]) == 9
    assert all((d / m).is_file() for m in spec["members"])
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["data"][0]["sha256"] == __import__("hashlib").sha256(REAL.read_bytes()).hexdigest()
    domain = json.loads((d / "domain.json").read_text())
    assert domain["c_mM"]["Mg2+"] == [10.0, 10.0] and domain["pretraining"] is None
    assert 201 < domain["flux_LMH"][1] < 202 and domain["T_C"] == [20.0, 20.0]
    for name in ("summary.md", "errors_per_feed.csv", "errors_per_ion.csv", "parity.png", "residuals.png"):
        assert (d / "report" / name).is_file()
    assert len(pd.read_csv(d / "report" / "errors_per_feed.csv")) == 3
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]  # no temporary directory left


def test_predict_from_a_bundle_keeps_the_columns_and_flags_extrapolation(bundles, feeds_csv, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                str(bundles["dspmde"]),
                "--feeds-csv",
                str(feeds_csv),
                "--flux-lmh",
                "50",
                "300",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    frame = pd.read_csv(out, keep_default_na=False)
    today = ["feed_id", "Jv_m_s", "Jv_LMH", "ion", "c_feed_mM", "c_perm_mM", "R", "converged"]
    assert set(today + ["R_std", "extrapolated", "why"]) <= set(frame.columns)
    assert list(frame.columns[:7]) == today[:7]
    high = frame[frame["Jv_LMH"] == 300]
    assert high["extrapolated"].all() and high["why"].str.contains("flux 300 LMH > 201 LMH seen", regex=False).all()
    mid = frame[frame["Jv_LMH"] == 50]
    assert (mid["extrapolated"] == (mid["feed_id"] == "brine")).all()  # the calibration feed lies inside
    assert mid.loc[mid["feed_id"] == "brine", "why"].str.contains("Mg2+ 50 mM > 10 mM seen", regex=False).all()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "extrapolate" in err[0]
    assert (frame["R_std"] >= frame["R_std_param"]).all() and (frame["R_std"] > 0).all()


def test_predict_from_a_bundle_at_another_temperature_flags_it(bundles, feeds_csv, tmp_path, capsys):
    """The bundle of the 20 °C data predicts at 20 °C unless told; 35 °C is predicted and flagged."""
    at = {}
    for T in (None, "20", "35"):
        out = tmp_path / f"{T}.csv"
        assert (
            main(
                [
                    "predict",
                    "--model",
                    str(bundles["dspmde"]),
                    "--feeds-csv",
                    str(feeds_csv),
                    "--flux-lmh",
                    "50",
                    "--out",
                    str(out),
                ]
                + (["--temperature-C", T] if T else [])
            )
            == 0
        )
        at[T] = pd.read_csv(out, keep_default_na=False).query("feed_id == 'fdl'")
    pd.testing.assert_frame_equal(at[None], at["20"])
    assert not at["20"]["extrapolated"].any()
    assert at["35"]["extrapolated"].all() and (at["35"]["why"] == "temperature 35 °C > 20 °C seen").all()
    assert (at["35"]["R"] - at["20"]["R"]).abs().max() > 1e-3


def test_predict_with_checkpoint_still_works(tmp_path, feeds_csv):
    from nanoutils import models, training

    ckpt = training.save_model(models.build("neural_ode", "smoke").double(), tmp_path / "m.pt")
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(ckpt),
                "--feeds-csv",
                str(feeds_csv),
                "--flux-lmh",
                "20",
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    assert len(pd.read_csv(tmp_path / "p.csv")) == 4 + 3


def _csv(tmp_path, text: str) -> Path:
    path = tmp_path / f"data{len(list(tmp_path.glob('data*.csv')))}.csv"
    path.write_text(text)
    return path


def _cases(tmp_path: Path, bundles: dict[str, Path], feeds: Path) -> dict[str, tuple[list[str], str, str]]:
    """name → (argv, the file the error must name, a fragment of the message); output goes to tmp/out*."""
    out, pred = str(tmp_path / "out"), str(tmp_path / "out.csv")

    def cal(path, *extra):
        return ["calibrate", str(path), "--out", out, "--profile", "smoke", *extra]

    def pr(model, *extra):
        return ["predict", "--feeds-csv", str(feeds), "--flux-lmh", "20", "--out", pred, *model, *extra]

    def bundle_copy(edit) -> Path:
        d = tmp_path / f"bundle{len(list(tmp_path.glob('bundle*')))}"
        shutil.copytree(bundles["dspmde"], d)
        edit(d)
        return d

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_text("garbage\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    (tmp_path / "adir").mkdir()
    exists = tmp_path / "exists.txt"
    exists.write_text("mine")
    several_T = bundle_copy(
        lambda d: (d / "domain.json").write_text(
            json.dumps({**json.loads((d / "domain.json").read_text()), "T_C": [15.0, 25.0]})
        )
    )
    from nanoutils import models, training

    ckpt = training.save_model(models.build("neural_ode", "smoke").double(), tmp_path / "ode.pt")
    newer = bundle_copy(
        lambda d: (d / "model.json").write_text(
            json.dumps({**json.loads((d / "model.json").read_text()), "nanoutils_version": "99.0.0"})
        )
    )
    return {
        "missing data file": (cal(tmp_path / "nope.csv"), "nope.csv", "no such file"),
        "data is a directory": (cal(tmp_path / "adir"), "adir", "is a directory"),
        "empty CSV": (cal(empty), "empty.csv", "empty file"),
        "binary file": (cal(garbage), "garbage.bin", "not a UTF-8 text CSV"),
        "header only": (cal(_csv(tmp_path, HEADER + "\n")), "data", "no data rows"),
        "missing column": (
            cal(_csv(tmp_path, HEADER.replace(",source", "") + "\n" + ROW.rsplit(",", 1)[0])),
            "data",
            "source",
        ),
        "unknown column": (cal(_csv(tmp_path, HEADER + ",pressure\n" + ROW + ",3")), "data", "pressure"),
        "bad unit": (cal(_csv(tmp_path, HEADER.replace("Jv_um_s", "Jv_gfd") + "\n" + ROW)), "data", "Jv_gfd"),
        "non-numeric value": (cal(_csv(tmp_path, HEADER + "\n" + ROW.replace(",5,", ",five,"))), "data", "five"),
        "non-neutral feed": (cal(_csv(tmp_path, HEADER + "\n" + ROW.replace("Cl-=10", "Cl-=7"))), "data", "neutral"),
        "unknown ion": (cal(_csv(tmp_path, HEADER + "\n" + ROW.replace(",NaCl,", ",Xq+,"))), "data", "Xq+"),
        "unknown model": (cal(REAL, "--model", "nonsense"), "", "unknown model 'nonsense'"),
        "model cannot take the data": (
            cal(_csv(tmp_path, HEADER + "\n" + ROW), "--model", "dspmde_langmuir"),
            "",
            "divalent",
        ),
        "out in a missing directory": (
            ["calibrate", str(REAL), "--out", str(tmp_path / "no" / "b")],
            "no",
            "does not exist",
        ),
        "out is a foreign file": (
            ["calibrate", str(REAL), "--out", str(exists), "--profile", "smoke"],
            "exists.txt",
            "not a model bundle",
        ),
        "corrupt checkpoint": (pr(["--checkpoint", str(corrupt)]), "corrupt.pt", "not a readable torch checkpoint"),
        "foreign checkpoint": (pr(["--checkpoint", str(foreign)]), "foreign.pt", "not a nanoutils model checkpoint"),
        "checkpoint is a directory": (pr(["--checkpoint", str(tmp_path / "adir")]), "adir", "is a directory"),
        "missing bundle": (pr(["--model", str(tmp_path / "nobundle")]), "nobundle", "no such model bundle"),
        "bundle is a file": (pr(["--model", str(exists)]), "exists.txt", "not a model bundle directory"),
        "bundle without model.json": (pr(["--model", str(tmp_path / "adir")]), "adir", "no model.json"),
        "garbled model.json": (
            pr(["--model", str(bundle_copy(lambda d: (d / "model.json").write_text("{oops")))]),
            "model.json",
            "not valid JSON",
        ),
        "missing member": (
            pr(["--model", str(bundle_copy(lambda d: (d / "member_3.json").unlink()))]),
            "member_3.json",
            "member file missing",
        ),
        "corrupt member": (
            pr(["--model", str(bundle_copy(lambda d: (d / "member_0.json").write_text("[1, 2")))]),
            "member_0.json",
            "not valid JSON",
        ),
        "bundle of a newer version": (pr(["--model", str(newer)]), "bundle", "newer than this nanoutils"),
        "missing feeds CSV": (
            ["predict", "--feeds-csv", str(tmp_path / "f.csv"), "--flux-lmh", "5", "--out", pred],
            "f.csv",
            "no such file",
        ),
        "negative flux": (["predict", "--feed", "NaCl 10 mM", "--flux-lmh", "-5", "--out", pred], "", "≥ 0"),
        "predict out in a missing directory": (
            ["predict", "--feed", "NaCl 10 mM", "--flux-lmh", "5", "--out", str(tmp_path / "no" / "p.csv")],
            "no",
            "does not exist",
        ),
        "predict out is a directory": (
            ["predict", "--feed", "NaCl 10 mM", "--flux-lmh", "5", "--out", str(tmp_path / "adir")],
            "adir",
            "is a directory",
        ),
        "bundle over several temperatures, none given": (
            pr(["--model", str(several_T)]),
            "",
            "calibrated at 15–25 °C: give the temperature",
        ),
        "temperature for a checkpoint without a temperature input": (
            pr(["--checkpoint", str(ckpt)], "--temperature-C", "30"),
            "",
            "no temperature input",
        ),
        "feed the model cannot take": (
            ["predict", "--feed", "KCl 10 mM", "--flux-lmh", "5", "--out", pred, "--model", str(bundles["sf"])],
            "",
            "K+",
        ),
    }


CASES = [
    "missing data file",
    "data is a directory",
    "empty CSV",
    "binary file",
    "header only",
    "missing column",
    "unknown column",
    "bad unit",
    "non-numeric value",
    "non-neutral feed",
    "unknown ion",
    "unknown model",
    "model cannot take the data",
    "out in a missing directory",
    "out is a foreign file",
    "corrupt checkpoint",
    "foreign checkpoint",
    "checkpoint is a directory",
    "missing bundle",
    "bundle is a file",
    "bundle without model.json",
    "garbled model.json",
    "missing member",
    "corrupt member",
    "bundle of a newer version",
    "missing feeds CSV",
    "negative flux",
    "predict out in a missing directory",
    "predict out is a directory",
    "bundle over several temperatures, none given",
    "temperature for a checkpoint without a temperature input",
    "feed the model cannot take",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_line_error_and_no_output(case, tmp_path, bundles, feeds_csv, capsys):
    argv, path, fragment = _cases(tmp_path, bundles, feeds_csv)[case]
    before = set(os.listdir(tmp_path))
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0] and path in lines[0], lines[0]
    assert "Traceback" not in err
    after = set(os.listdir(tmp_path))
    assert after <= before, f"left behind: {after - before}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.csv").exists()


def test_the_matrix_has_every_case():
    assert len(CASES) >= 15 and len(set(CASES)) == len(CASES)
