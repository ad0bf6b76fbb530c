"""The VIRTUAL NF270 laboratory: deterministic, loadable, electroneutral, clearly labelled."""
import numpy as np
import pandas as pd
import pytest

from nanoutils import ions, virtual_lab


@pytest.fixture(scope="module")
def committed():
    return virtual_lab.load()


def test_committed_files_load_and_are_the_papers_scale(committed):
    assert 800 <= len(committed) <= 900  # ≈ 850 ion-concentration points, as in the paper
    studies = set(committed.table["study"])
    assert studies == {s.key for s in virtual_lab.DESIGN}


def test_every_row_says_it_is_virtual(committed):
    table = committed.table
    assert table["source"].str.startswith("VIRTUAL").all()
    assert table["membrane"].str.contains("VIRTUAL").all()


def test_feeds_and_noise_free_permeates_are_electroneutral():
    for path in virtual_lab.files():
        raw = pd.read_csv(path, keep_default_na=False)
        for (feed_id, jv), rows in raw.groupby(["feed_id", "Jv_um_s"]):
            z = np.array([ions.get(q).z for q in rows["quantity"]])
            c_true = rows["x_c_perm_true_mol_m3"].astype(float).to_numpy()
            assert abs(z @ c_true) <= 1e-6 * (np.abs(z) @ c_true) + 1e-9, (path.name, feed_id, jv)
        for recipe in raw["feed_salts"].unique():
            ions.Feed.from_salts(recipe)  # raises if not neutral


def test_regenerates_bit_for_bit_for_the_seed():
    study_index = [s.key for s in virtual_lab.DESIGN].index("micari2020")
    study = virtual_lab.DESIGN[study_index]
    regenerated = pd.concat(
        [virtual_lab.simulate_feed(study, i, virtual_lab.LabMembrane(), virtual_lab.Noise(), virtual_lab.DEFAULT_SEED,
                                   study_index) for i in range(len(study.feeds))], ignore_index=True)
    committed = pd.read_csv(virtual_lab.files()[[p.name for p in virtual_lab.files()].index("virtual_nf270_micari2020.csv")],
                            dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(regenerated.astype(str), committed)


def test_another_seed_gives_other_noise_but_the_same_truth():
    study = virtual_lab.DESIGN[0]
    a = virtual_lab.simulate_feed(study, 0, virtual_lab.LabMembrane(), virtual_lab.Noise(), 1, 0)
    b = virtual_lab.simulate_feed(study, 0, virtual_lab.LabMembrane(), virtual_lab.Noise(), 2, 0)
    assert (a["x_c_perm_true_mol_m3"] == b["x_c_perm_true_mol_m3"]).all()
    assert (a["c_perm_mol_m3"] != b["c_perm_mol_m3"]).any()


def test_design_table_counts_match_the_files(committed):
    table = virtual_lab.design_table()
    counts = committed.table.groupby("study").size()
    for row in table.itertuples():
        assert counts[row.study] == row.points


def test_load_reports_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nanoutils.virtual_lab"):
        virtual_lab.load(tmp_path)
