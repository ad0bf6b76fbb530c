"""nanoutils.profiles: the one settings table of the smoke, default and paper profiles."""

import re
from pathlib import Path

import pytest

import nanoutils
from nanoutils import models, profiles, training
from nanoutils.__main__ import main
from nanoutils.profiles import PROFILES, SETTINGS

REPO = Path(nanoutils.__file__).resolve().parents[1]


def test_every_knob_has_a_value_for_every_profile_and_dict_knobs_the_same_parts():
    for name, knob in SETTINGS.items():
        assert knob.doc, f"{name} says nothing about what it sizes"
        values = [getattr(knob, p) for p in PROFILES]
        assert all(v is not None or name == "neural_ode_solver" for v in values), name
        if any(isinstance(v, dict) for v in values):
            assert all(isinstance(v, dict) and v.keys() == values[0].keys() for v in values), name
    for p in PROFILES:
        assert set(profiles.get(p).settings) == set(SETTINGS)


def test_settings_read_as_attributes_and_items_and_are_copies():
    s = profiles.get("paper").settings
    assert s.pretraining == s["pretraining"] == {"epochs": 1000, "batch_size": 32, "lr": 1e-3}
    s.pretraining["epochs"] = 1  # a copy: the table stays as it is
    assert profiles.get("paper").settings.pretraining["epochs"] == 1000 == SETTINGS["pretraining"].paper["epochs"]
    with pytest.raises(AttributeError, match="no_such_knob"):
        _ = s.no_such_knob
    with pytest.raises(KeyError, match="no_such_knob"):
        s["no_such_knob"]


def test_modules_read_their_sizes_from_the_table():
    for p in PROFILES:
        s = profiles.get(p).settings
        assert models.build("neural_ode", p).config.width == s.neural_ode_width
        assert models.build("neural_ode", p).config.method == s.neural_ode_solver["method"]
        assert models.build("pinn", p).config.width == s.resnet_width == models.build("resnet", p).config.width
        assert models.build("unet", p).config.width == s.unet_width
        hybrid = models.build("hybrid_dspmde", p).config
        assert (hybrid.width, hybrid.reg_weight, hybrid.x_range) == tuple(
            s.hybrid[k] for k in ("width", "reg_weight", "x_range")
        )
        assert training.TrainConfig.for_profile(p).epochs == s.pretraining["epochs"]
        assert training.TrainConfig.for_profile(p, "finetuning").patience == s.finetuning["patience"]


def test_profiles_command_prints_the_one_table(capsys):
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    header, rule, *rows = out.strip().splitlines()
    assert header.split()[:4] == ["knob", *PROFILES]
    names = {row.split()[0] for row in rows}
    for name, knob in SETTINGS.items():
        parts = [f"{name}.{k}" for k in knob.default] if isinstance(knob.default, dict) else [name]
        assert set(parts) <= names, name
    assert re.search(r"^pretraining\.epochs\s+4\s+250\s+1000\s", out, re.M)
    assert re.search(r"^search_lr\s+0\.001\s+0\.001, 0\.003\s+0\.0003, 0\.001, 0\.003\s", out, re.M)


def test_no_module_or_notebook_keeps_its_own_profile_sizes():
    """Sizes come from profiles.SETTINGS only: no Profile.pick, no per-profile dict keyed by profile names."""
    sources = [p for p in (REPO / "nanoutils").rglob("*.py") if p.name != "profiles.py"]
    sources += list((REPO / "notebooks").glob("*.ipynb")) + list((REPO / "benchmarks").glob("*.py"))
    per_profile_dict = re.compile(r"""["']smoke["']\s*:""")
    for path in sources:
        text = path.read_text()
        assert not re.search(r"\.pick\(", text), f"{path.name} picks sizes itself"
        assert not per_profile_dict.search(text), f"{path.name} keeps a dict keyed by profile name"
        assert "NANOUTILS_MAX_EPOCHS" not in text, f"{path.name} reads the epoch cap from the environment"


def test_notebook_setup_builds_what_every_chapter_starts_with(capsys):
    from nanoutils import env

    chapter = env.notebook_setup("smoke", "cpu", max_epochs=2)
    assert chapter.profile == profiles.Profile("smoke", max_epochs=2) and chapter.device == "cpu"
    assert chapter.figures == chapter.profile.figures_dir and chapter.figures.is_dir()
    assert chapter.profile.settings.finetuning["epochs"] == 2  # the cap reaches every training knob
    out = capsys.readouterr().out
    assert "'numpy'" in out and "profile smoke, device cpu" in out and "capped at 2 epochs" in out
    assert env.notebook_setup("default").device is None  # no device asked, none resolved
