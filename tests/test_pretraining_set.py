"""nanoutils.pretraining_set: the cached, DSPM-DE-labelled pre-training set and its splits."""

import numpy as np
import pytest

from nanoutils import dspmde, ions, metrics, pretraining_set, sampling
from nanoutils.profiles import SETTINGS

SPEC = pretraining_set.PretrainingSpec(n_compositions=12, n_flux=3, seed=4)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_labels_are_dspmde_and_metadata_round_trips(cache, capsys):
    data = pretraining_set.pretraining_set(SPEC, cache)
    assert "cache miss" in capsys.readouterr().out
    meta = data.metadata
    assert meta["spec"]["n_compositions"] == 12 and meta["spec"]["seed"] == 4
    assert meta["spec"]["membrane"]["X_d"] == dspmde.Membrane.nf270().X_d
    assert meta["spec"]["j_max_lmh"] == pytest.approx(216.0) and meta["spec"]["film"] is None
    assert meta["n_compositions_labelled"] == 12 and meta["n_points_labelled"] == 36
    assert len(data) == 12 - meta["n_compositions_dropped"]
    np.testing.assert_allclose(data.flux[0], sampling.flux_grid(3))
    # the stored labels are the solver's answer for those feeds (not a stand-in)
    direct = dspmde.solve(data.feed[:2], data.flux[0], species=data.species)
    np.testing.assert_allclose(data.permeate[:2], np.nan_to_num(direct.permeate) * data.target_mask[:2], rtol=1e-9)
    z = ions.charges(data.species)
    assert np.abs(data.permeate @ z).max() <= 1e-6 * data.permeate.max()

    again = pretraining_set.pretraining_set(SPEC, cache)
    assert "cache hit" in capsys.readouterr().out
    assert again.metadata == meta
    np.testing.assert_array_equal(again.permeate, data.permeate)


def test_changed_specification_is_a_cache_miss(cache, capsys):
    pretraining_set.pretraining_set(SPEC, cache)
    capsys.readouterr()
    other = pretraining_set.pretraining_set(pretraining_set.PretrainingSpec(n_compositions=12, n_flux=3, seed=5), cache)
    assert "specification differs" in capsys.readouterr().out
    assert other.metadata["spec"]["seed"] == 5


def test_split_is_by_composition_and_feeds_the_rejection_metric(cache):
    data = pretraining_set.pretraining_set(SPEC, cache, verbose=False)
    parts = pretraining_set.split(data)
    assert sum(len(p) for p in parts.values()) == len(data)
    rows = {k: {tuple(r) for r in p.feed} for k, p in parts.items()}
    assert not (rows["train"] & rows["val"]) and not (rows["train"] & rows["test"]) and not (rows["val"] & rows["test"])
    test = parts["test"]
    frame = test.to_frame(test.permeate * 0.9)
    assert len(frame) == test.target_mask.sum()
    np.testing.assert_allclose(frame["R_pred"], 1 - 0.9 * (1 - frame["R_meas"]))
    score = metrics.rejection_error(frame)
    assert score.value == pytest.approx(100 * (0.1 * (1 - frame["R_meas"])).abs().mean())


def test_bad_specifications_raise():
    with pytest.raises(ValueError, match="compositions"):
        pretraining_set.PretrainingSpec(n_compositions=1)
    with pytest.raises(ValueError, match="fraction"):
        pretraining_set.PretrainingSpec(val_fraction=0.6, test_fraction=0.5)
    assert (
        pretraining_set.PretrainingSpec.for_profile("smoke").n_compositions
        == SETTINGS["pretraining_compositions"].smoke
    )


def test_dask_labelling_on_a_local_cluster_is_bit_identical_to_serial(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = pretraining_set.PretrainingSpec(n_compositions=2 * pretraining_set.CHUNK + 5, n_flux=2, seed=7)
    serial = pretraining_set.label(spec)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc,
        distributed.Client(lc) as client,
        distributed.get_task_stream(client) as stream,
    ):
        data = pretraining_set.pretraining_set(spec, tmp_path, verbose=False, scheduler=client)
    assert len(stream.data) == 3, "one task per chunk of compositions, run on the cluster"
    threads = pretraining_set.label(spec, "threads")
    assert np.array_equal(threads[0], serial[0], equal_nan=True) and np.array_equal(threads[1], serial[1])
    expect = pretraining_set.TransportData.from_labels(
        spec.compositions().concentration,
        spec.compositions().mask,
        spec.fluxes(),
        *serial[:2],
        spec.compositions().species,
        {},
    )
    assert np.array_equal(data.permeate, expect.permeate) and np.array_equal(data.feed, expect.feed)
    assert data.metadata["spec"] == spec.metadata()  # the scheduler is not in the cache key
    assert "cache hit" in _labelled_again(spec, tmp_path)


def _labelled_again(spec, directory):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        pretraining_set.pretraining_set(spec, directory, scheduler=None)
    return out.getvalue()


def test_unknown_scheduler_is_named():
    with pytest.raises(pretraining_set.LabellingError, match="scheduler 'gpu'"):
        pretraining_set.label(SPEC, "gpu")
