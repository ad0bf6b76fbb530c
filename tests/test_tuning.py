"""nanoutils.tuning: the Optuna search of the deep models, shared by worker processes through one file."""

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from nanoutils import models, pretraining_set, tuning

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model", sorted(tuning.DEPTH))
def test_sized_config_takes_the_width_nearest_the_size_inside_the_parameter_band(model):
    """A width step can be wider than the ±15 % band (small models, deep U-Nets: such trials are pruned); at
    the default depth of the default profile every size is reached inside it."""
    knob = tuning.DEPTH[model][0]
    for profile in ("smoke", "default"):
        ref = models.n_parameters(models.build("neural_ode", profile))

        def in_band(n: int, ref: int = ref) -> bool:
            return abs(n - ref) <= tuning.BAND * ref

        default_depth = getattr(models.build(model, profile).config, knob)
        for depth in tuning.DEPTH[model][1]:
            for size in (1 - tuning.SIZE, 1.0, 1 + tuning.SIZE):
                config, n = tuning.sized_config(model, profile, depth, size)
                assert n == models.n_parameters(models.build(model, profile, **config))
                for w in (config["width"] - 1, config["width"] + 1):
                    other = models.n_parameters(models.build(model, profile, **{**config, "width": max(w, 1)}))
                    assert (in_band(n), -abs(n - size * ref)) >= (in_band(other), -abs(other - size * ref))
                if profile == "default" and depth == default_depth:
                    assert in_band(n), (model, depth, size, n, ref)


@pytest.mark.xdist_group("runs_smoke")  # labels the repository's smoke set, as the smoke series does
def test_two_worker_processes_finish_one_file_backed_study_without_lost_or_duplicated_trials(tmp_path):
    pretraining_set.pretraining_set(profile="smoke", verbose=False)  # labelled once, not by both workers at a time
    journal = tmp_path / "tuning.log"
    cmd = [
        sys.executable,
        "-m",
        "nanoutils",
        "tune",
        "--model",
        "resnet",
        "--trials",
        "4",
        "--profile",
        "smoke",
        "--storage",
        str(journal),
        "--study",
        "shared",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    workers = [
        subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = tuning.load_study("resnet", "smoke", journal, "shared")
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers), "a trial number was given twice"
    kept = [t for t in trials if t.number < 4]
    assert sorted(t.number for t in kept) == [0, 1, 2, 3], "a trial of the budget was lost"
    done = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(t.state in done for t in kept)
    extra = [t for t in trials if t.number >= 4]
    assert all(t.state == optuna.trial.TrialState.PRUNED and not t.params for t in extra), "trained past the budget"
    ran = {t.number for t in kept if "seconds" in t.user_attrs}
    assert ran == {t.number for t in kept if t.state == optuna.trial.TrialState.COMPLETE}
    best = tuning.best_settings(study)
    complete = [t for t in kept if t.state == optuna.trial.TrialState.COMPLETE]
    assert best.value == min(t.value for t in complete) and best.model == "resnet"
    ref = models.n_parameters(models.build("neural_ode", "smoke"))
    assert abs(best.n_parameters - ref) <= tuning.BAND * ref
    assert tuning.LR_RANGE[0] <= best.lr <= tuning.LR_RANGE[1]


def test_bad_input_names_the_value(tmp_path):
    with pytest.raises(tuning.TuningError, match="model 'mlp'"):
        tuning.load_study("mlp", "smoke", tmp_path / "j.log")
    with pytest.raises(tuning.TuningError, match="trials 0"):
        tuning.tune("resnet", 0, "smoke", url=tmp_path / "j.log")
    with pytest.raises(tuning.TuningError, match="does not exist"):
        tuning.storage(tmp_path / "missing" / "j.log")
    study = tuning.load_study("resnet", "smoke", tmp_path / "j.log", "empty")
    with pytest.raises(tuning.TuningError, match="no finished trial"):
        tuning.best_settings(study)
