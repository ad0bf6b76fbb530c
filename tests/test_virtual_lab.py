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
    study_index = [s.key for s in virtual_lab.DESIGN].index("epsztein2018")
    study = virtual_lab.DESIGN[study_index]
    regenerated = pd.concat(
        [
            virtual_lab.simulate_feed(
                study, i, virtual_lab.LabMembrane(), virtual_lab.Noise(), virtual_lab.DEFAULT_SEED, study_index
            )
            for i in range(len(study.feeds))
        ],
        ignore_index=True,
    )
    committed = pd.read_csv(
        virtual_lab.files()[[p.name for p in virtual_lab.files()].index("virtual_nf270_epsztein2018.csv")],
        dtype=str,
        keep_default_na=False,
    )
    pd.testing.assert_frame_equal(regenerated.astype(str), committed)


def test_another_seed_gives_other_noise_but_the_same_truth():
    study = virtual_lab.DESIGN[0]
    a = virtual_lab.simulate_feed(study, 0, virtual_lab.LabMembrane(), virtual_lab.Noise(), 1, 0)
    b = virtual_lab.simulate_feed(study, 0, virtual_lab.LabMembrane(), virtual_lab.Noise(), 2, 0)
    assert (a["x_c_perm_true_mol_m3"] == b["x_c_perm_true_mol_m3"]).all()
    assert (a["c_perm_mol_m3"] != b["c_perm_mol_m3"]).any()


def test_rich_model_reduces_to_dspmde_in_its_limit():
    """One pore class, constant charge, fixed ε_p, ideal activity: the lab model is DSPM-DE (film included)."""
    from nanoutils import dspmde
    from nanoutils.virtual_lab import observed_permeate

    lab = virtual_lab.LabMembrane(
        r_median=0.51e-9, n_classes=1, dx_e=1.27e-6, eps_p=43.56, K_F=51.23, n_F=0.0, X_M=0.0, activity="ideal"
    )
    feed = ions.Feed.from_salts("NaCl 20 mM + MgSO4 5 mM")
    jv = np.array([3.0, 10.0, 25.0]) * 1e-6
    for k in (None, 3e-5):
        c_p, X_d = observed_permeate(feed.vector(feed.ions), feed.ions, jv, lab, film_k=k, temperature=298.15)
        ref = dspmde.solve([feed], jv, membrane=dspmde.Membrane.nf270(), film=None if k is None else dspmde.Film(k=k))
        assert X_d == -51.23
        np.testing.assert_allclose(c_p, ref.permeate[0], rtol=1e-9)


def test_charge_isotherm_and_pore_classes():
    lab = virtual_lab.LabMembrane()
    x = [lab.charge(np.array([c, c]), ("Na+", "Cl-")) for c in (1.0, 10.0, 100.0, 1000.0)]
    assert (
        all(a > b for a, b in zip(x, x[1:], strict=False)) and x[0] < 0
    )  # Freundlich: more negative with concentration
    assert lab.charge(np.array([10.0, 20.0]), ("Mg2+", "Cl-")) > lab.charge(np.array([20.0, 20.0]), ("Na+", "Cl-"))
    r, eps, share = lab.pore_classes()
    assert share.sum() == pytest.approx(1.0) and np.all(np.diff(r) > 0) and np.all(np.diff(eps) > 0)
    assert lab.eps_star < eps.min() and eps.max() < 78.54
    area = share / r**2
    assert (area * lab.flux_scale()).sum() / area.sum() == pytest.approx(1.0)  # area-average flux is J_v


def test_design_table_counts_match_the_files(committed):
    table = virtual_lab.design_table()
    counts = committed.table.groupby("study").size()
    for row in table.itertuples():
        assert counts[row.study] == row.points


def test_load_reports_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nanoutils.virtual_lab"):
        virtual_lab.load(tmp_path)
