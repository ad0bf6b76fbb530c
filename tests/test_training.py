"""nanoutils.training: data set, loss, noise sampler, the shared loop, checkpoints and resume."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from nanoutils import env, ions, models, training

D = len(ions.species())

FLUX = np.linspace(3e-6, 3e-5, 6)  # m/s


def hindered_salt_data(flux=FLUX):
    """Single-salt feeds with permeate from uncharged hindered transport, applied per salt:
    c_p = c_f φK_c / (1 − (1 − φK_c) exp(−Jv/J0)) (both ions of a salt share it, so permeate is neutral)."""
    salts = [
        ("NaCl", 20.0, 0.8, 1e-5),
        ("MgSO4", 5.0, 0.15, 0.7e-5),
        ("Na2SO4", 50.0, 0.4, 1.2e-5),
        ("MgCl2", 2.0, 0.5, 8e-6),
    ]
    feeds, perms = [], []
    for salt, conc, phik, j0 in salts:
        f = ions.Feed.from_salts(f"{salt} {conc} mM").vector()
        ratio = phik / (1 - (1 - phik) * np.exp(-flux / j0))
        feeds.append(f)
        perms.append(f[None, :] * ratio[:, None])
    feed = np.array(feeds)
    return training.TransportData(feed, feed > 0, np.tile(flux, (len(feed), 1)), np.array(perms))


def noisy_data(n=10, k=3, seed=0):
    rng = np.random.default_rng(seed)
    feed = np.zeros((n, D))
    feed[:, [1, 6]] = rng.uniform(1, 100, (n, 1))  # NaCl
    perm = feed[:, None, :] * rng.uniform(0.3, 1.0, (n, k, 1))
    flux = np.sort(rng.uniform(1e-6, 3e-5, (n, k)), axis=1)
    return training.TransportData(
        feed,
        feed > 0,
        flux,
        perm,
        sigma=0.05 * perm,
        weight=rng.uniform(1, 3, n),
        metadata={"source": "test", "seed": seed, "nested": {"a": [1, 2.5]}},
    )


def test_tiny_model_overfits_a_handful_of_samples():
    data = hindered_salt_data()
    env.seed_everything(0)
    model = models.build("neural_ode", "smoke", width=32).double()
    before = training.evaluate(model, data)
    cfg = training.TrainConfig(epochs=150, batch_size=4, lr=1e-2, lr_step=100, dtype="float64")
    result = training.train(model, data, config=cfg, progress=False)
    after = training.evaluate(result.model, data)
    assert before / after >= 100, (before, after)
    perm = training.predict_dataset(result.model, data)
    z = torch.tensor(ions.charges(ions.species()), dtype=perm.dtype)
    assert models.charge_imbalance(perm, z).max() < 1e-12


def _weights(model):
    return torch.cat([p.detach().ravel() for p in model.parameters()])


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    data, val = noisy_data(10), noisy_data(4, seed=1)
    cfg = training.TrainConfig(epochs=4, batch_size=3, lr=5e-3, lr_step=1, restore_best=False)

    def run(run_dir, callback=None, resume=False, init_seed=7):
        env.seed_everything(init_seed)
        model = models.build("neural_ode", "smoke", width=8)
        return training.train(
            model,
            data,
            val,
            cfg,
            run_dir=run_dir,
            resume=resume,
            callback=callback,
            target_sampler=training.gaussian_targets(11),
            progress=False,
        )

    full = run(tmp_path / "full")

    def kill_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", callback=kill_after_two)
    ran = []
    resumed = run(tmp_path / "killed", resume=True, init_seed=999, callback=lambda r: ran.append(r["epoch"]))
    assert ran == [3, 4], "resume must continue after the last checkpoint, not restart"
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert torch.equal(_weights(resumed.model), _weights(full.model))
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    assert [h["lr"] for h in full.history] == [5e-3, 2.5e-3, 1.25e-3, 6.25e-4]
    with pytest.raises(training.CheckpointMismatchError, match="train config"):
        env.seed_everything(7)
        training.train(
            models.build("neural_ode", "smoke", width=8),
            data,
            val,
            training.TrainConfig(epochs=5, batch_size=3),
            run_dir=tmp_path / "killed",
            resume=True,
            progress=False,
        )
    with pytest.raises(training.CheckpointMismatchError, match="other data"):
        training.train(
            models.build("neural_ode", "smoke", width=8),
            noisy_data(10, seed=5),
            val,
            cfg,
            run_dir=tmp_path / "killed",
            resume=True,
            progress=False,
        )
    finished = run(tmp_path / "killed", resume=True, callback=lambda r: ran.append(r["epoch"]))
    assert ran == [3, 4] and torch.equal(_weights(finished.model), _weights(full.model)), "a finished run only loads"


def test_resume_if_compatible_continues_a_matching_run_and_retrains_over_another(tmp_path):
    data, val = noisy_data(8), noisy_data(4, seed=1)
    cfg = training.TrainConfig(epochs=2, batch_size=4)

    def run(config, resume, init_seed=3):
        env.seed_everything(init_seed)
        return training.train(
            models.build("neural_ode", "smoke", width=8),
            data,
            val,
            config,
            run_dir=tmp_path,
            resume=resume,
            progress=False,
        )

    first = run(cfg, False)
    ran = []
    same = training.train(
        models.build("neural_ode", "smoke", width=8),
        data,
        val,
        cfg,
        run_dir=tmp_path,
        resume="if_compatible",
        progress=False,
        callback=ran.append,
    )
    assert ran == [] and torch.equal(_weights(same.model), _weights(first.model)), "a matching finished run only loads"
    longer = replace(cfg, epochs=3)
    fresh = run(longer, False, init_seed=4)  # the uninterrupted run of the other config, elsewhere in time
    with pytest.raises(training.CheckpointMismatchError, match="train config"):
        run(cfg, True)  # strict resume refuses the checkpoint of the longer run
    with pytest.warns(UserWarning, match="train config"):
        redone = run(cfg, "if_compatible", init_seed=3)
    assert [h["epoch"] for h in redone.history] == [1, 2]
    assert torch.equal(_weights(redone.model), _weights(first.model)), "retrained from the model it was given"
    assert not torch.equal(_weights(redone.model), _weights(fresh.model))
    assert torch.load(tmp_path / "last.pt", weights_only=False)["train_config"]["epochs"] == 2  # replaced
    with pytest.raises(ValueError, match="resume"):
        run(cfg, "maybe")


def test_best_checkpoint_restores_the_model(tmp_path):
    data = noisy_data(6)
    env.seed_everything(0)
    result = training.train(
        models.build("neural_ode", "smoke", width=8),
        data,
        data,
        training.TrainConfig(epochs=3, batch_size=3),
        run_dir=tmp_path,
        progress=False,
    )
    loaded = training.load_model(tmp_path / "best.pt")
    assert training.evaluate(loaded, data) == pytest.approx(result.best_loss, rel=1e-6)
    assert result.best_loss == min(h["val_loss"] for h in result.history)


def test_masked_weighted_mse_by_hand():
    pred = torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]])
    target = torch.tensor([[[0.0, 2.0]], [[1.0, 5.0]]])
    scale = torch.tensor([1.0, 2.0])
    mask = torch.tensor([[[True, True]], [[True, False]]])
    weight = torch.tensor([1.0, 3.0])
    # errors (scaled): sample 0: 1, 0; sample 1: 1 (the masked 2.5 is ignored); weights 1, 1, 3
    assert float(training.masked_mse(pred, target, scale, mask, weight)) == pytest.approx((1 + 0 + 3 * 1) / 5)


def test_gaussian_targets_moments_and_reseeding():
    sample = training.gaussian_targets(5)
    mean, sigma = torch.full((200_000,), 2.0, dtype=torch.float64), torch.full((200_000,), 0.5, dtype=torch.float64)
    draw = sample(mean, sigma, 3)
    assert float(draw.mean()) == pytest.approx(2.0, abs=0.005)
    assert float(draw.std()) == pytest.approx(0.5, rel=0.01)
    assert torch.equal(draw, sample(mean, sigma, 3))
    assert not torch.equal(draw, sample(mean, sigma, 4))
    assert torch.equal(sample(mean, torch.zeros_like(sigma), 9), mean)


def test_dataset_round_trip_with_metadata(tmp_path):
    data = noisy_data()
    loaded = training.TransportData.load(data.save(tmp_path / "d.npz"))
    assert loaded.metadata == data.metadata and loaded.species == data.species
    for name in ("feed", "species_mask", "flux", "flux_mask", "permeate", "sigma", "target_mask", "weight"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(data, name))
    data.metadata["bad"] = object()
    with pytest.raises(ValueError, match="JSON"):
        data.save(tmp_path / "e.npz")


def test_from_labels_drops_and_counts_unconverged():
    feed = np.zeros((3, D))
    feed[:, [1, 6]] = 10.0
    converged = np.array([[True, False, True], [False, False, False], [True, True, True]])
    perm = np.where(converged[..., None], feed[:, None, :] * 0.5, np.nan)
    data = training.TransportData.from_labels(
        feed, feed > 0, [1e-5, 2e-5, 3e-5], perm, converged, ions.species(), {"seed": 1}
    )
    assert len(data) == 2
    assert data.metadata == {
        "seed": 1,
        "n_compositions_labelled": 3,
        "n_points_labelled": 9,
        "n_points_unconverged": 4,
        "n_compositions_dropped": 1,
    }
    np.testing.assert_array_equal(data.flux_mask, [[True, False, True], [True, True, True]])
    assert not data.target_mask[0, 1].any()


def test_split_by_composition_keeps_feeds_together():
    data = noisy_data(10)
    both = training.TransportData.concat([data, data.subset([0, 1, 2])])  # three feeds appear twice
    train, val = training.split_by_composition(both, 0.3, seed=2)
    assert len(train) + len(val) == len(both)
    rows = lambda d: {tuple(r) for r in d.feed}  # noqa: E731
    assert not rows(train) & rows(val)
    assert len(rows(val)) == 3


def test_concat_pads_flux_axis():
    a, b = noisy_data(3, k=2), noisy_data(2, k=4, seed=3)
    both = training.TransportData.concat([a, b])
    assert both.flux.shape == (5, 4) and not both.flux_mask[:3, 2:].any()
    assert both.metadata == {"parts": [a.metadata, b.metadata]}


@pytest.mark.parametrize(
    "case,match",
    [
        ("wrong_dim", r"shape \(N, 12\)"),
        ("nan_feed", "not finite"),
        ("negative_flux", "flux is negative"),
        ("target_on_absent", "absent species"),
        ("nan_target", "permeate is not finite"),
        ("bad_weight", "weight"),
    ],
)
def test_bad_data_raises_clear_errors(case, match):
    feed = np.zeros((2, D))
    feed[:, [1, 6]] = 10.0
    kw = dict(feed=feed, species_mask=feed > 0, flux=np.full((2, 3), 1e-5), permeate=np.repeat(feed[:, None], 3, 1))
    if case == "wrong_dim":
        kw["feed"], kw["species_mask"] = feed[:, :11], feed[:, :11] > 0
    elif case == "nan_feed":
        kw["feed"] = np.where(feed > 0, np.nan, 0.0)
    elif case == "negative_flux":
        kw["flux"] = np.full((2, 3), -1e-5)
    elif case == "target_on_absent":
        kw["target_mask"] = np.ones((2, 3, D), bool)
    elif case == "nan_target":
        kw["permeate"] = np.full((2, 3, D), np.nan)
    elif case == "bad_weight":
        kw["weight"] = np.array([1.0, -1.0])
    with pytest.raises(ValueError, match=match):
        training.TransportData(**kw)


def test_early_stopping_and_in_memory_best_weights():
    train_set = noisy_data(8)
    # validation targets = the feed itself (zero rejection): learning the training set's rejection makes it worse
    val = training.TransportData(
        train_set.feed,
        train_set.species_mask,
        train_set.flux,
        np.repeat(train_set.feed[:, None], train_set.flux.shape[1], 1),
    )
    env.seed_everything(0)
    cfg = training.TrainConfig(epochs=10, batch_size=4, lr=1e-2, patience=2)
    result = training.train(models.build("neural_ode", "smoke", width=8), train_set, val, cfg, progress=False)
    assert result.stopped_early and result.best_epoch == 1 and len(result.history) == 3
    assert training.evaluate(result.model, val) == pytest.approx(result.history[0]["val_loss"], rel=1e-5)


def test_feed_loss_scale_is_the_rejection_error():
    data = hindered_salt_data()
    env.seed_everything(0)
    model = models.build("neural_ode", "smoke").double()
    pred = training.predict_dataset(model, data).numpy()
    cf = data.feed[:, None, :]
    r_err = np.where(data.target_mask, (pred - data.permeate) / np.where(cf > 0, cf, 1), 0.0)
    expected = (r_err**2).sum() / data.target_mask.sum()
    assert training.evaluate(model, data, loss_scale="feed") == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="bogus"):
        training.TrainConfig(loss_scale="bogus")


def test_max_epochs_caps_every_profile_config_and_refuses_nonsense():
    from nanoutils import finetuning, profiles

    assert training.TrainConfig.for_profile("paper").epochs == 1000
    capped = profiles.get("paper", max_epochs=2)
    paper = training.TrainConfig.for_profile(capped, lr=5e-4)
    assert paper.epochs == 2 and paper.lr == 5e-4 and paper.batch_size == 32 and paper.step_epochs == 1
    assert finetuning.finetune_config(capped).epochs == 2
    assert training.TrainConfig.for_profile(profiles.get("smoke", max_epochs=2)).epochs == 2
    assert training.TrainConfig.for_profile(profiles.get("smoke", max_epochs=100)).epochs == 4  # a cap, not a setting
    assert training.TrainConfig.for_profile("paper").epochs == 1000  # the cap lives in its profile only
    for bad in (0, 2.5, "3"):
        with pytest.raises(ValueError, match="max_epochs"):
            profiles.get("default", max_epochs=bad)
    with pytest.raises(ValueError, match="stage"):
        training.TrainConfig.for_profile("smoke", "warmup")


def test_only_the_default_profile_writes_the_committed_figures(tmp_path):
    from nanoutils import profiles

    assert profiles.Profile("default", root=tmp_path).figures_dir == tmp_path / "figures"
    for name in ("smoke", "paper"):
        assert profiles.Profile(name, root=tmp_path).figures_dir == tmp_path / "runs" / name / "figures"


def _pretrain_then_finetune(threads_before: int, threads: int | None):
    """A seeded U-Net pre-training (convolutions: sums split over threads) and a noisy fine-tuning of it, started
    with ``threads_before`` torch threads in the caller and the global generators in an arbitrary state."""
    torch.set_num_threads(threads_before)
    torch.rand(threads_before), np.random.rand(threads_before)  # whatever the caller drew before
    env.seed_everything(5)
    model = models.build("unet", "default")
    cfg = training.TrainConfig(epochs=2, batch_size=48, lr=3e-3, seed=5, threads=threads)
    pre = training.train(model, noisy_data(n=48, k=4, seed=1), None, cfg, device="cpu", progress=False).model
    tuned = training.train(
        models.clone(pre),
        noisy_data(n=48, k=4, seed=2),
        None,
        cfg,
        device="cpu",
        progress=False,
        target_sampler=training.gaussian_targets(5),
    ).model
    return [p.detach().clone() for p in (*pre.parameters(), *tuned.parameters())]


def test_seeded_pretraining_and_finetuning_give_identical_weights_whatever_the_callers_threads():
    before = torch.get_num_threads()
    try:
        pin = training.TrainConfig().threads  # the default pin
        a, b = _pretrain_then_finetune(2, pin), _pretrain_then_finetune(1, pin)
        assert torch.get_num_threads() == 1, "train restores the caller's thread count"
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
        # the pin matters: with the caller's counts (threads=None) the same runs differ in their last bits
        c, d = _pretrain_then_finetune(1, None), _pretrain_then_finetune(2, None)
        assert any(not torch.equal(p, q) for p, q in zip(c, d, strict=True))
    finally:
        torch.set_num_threads(before)
