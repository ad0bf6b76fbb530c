"""Calibrating the hybrid model (:class:`nanoutils.models.HybridDSPMDE`) and reading what its network learned.

:func:`fit` does the two stages on measured rejections:

1. the fitted constant-parameter DSPM-DE the closure starts from: ``dspmde_plus`` (Z, Langmuir binding of the
   divalent cations, a ΔW_i per ion; :func:`nanoutils.dspmde_plus.fitted`, budget ``dspmde_plus_fit`` of the
   profile), so a network with zero output is that fit exactly;
2. the closure network, trained by the shared loop as every learned model is fine-tuned
   (:func:`nanoutils.finetuning.finetune`: eq. 5 noise on the measurements, checkpoints, resume, early stopping on
   validation feeds when given), with the regulariser toward the fit of
   :meth:`~nanoutils.models.HybridDSPMDE.auxiliary_loss`; loop, width, bounds and weight from the profile's knob
   ``hybrid``. It trains in float64 (the DSPM-DE solve is float64 anyway).

:func:`closure_frame` tabulates the learned membrane state (X_d, the charge X the isotherm makes of it, ΔW_i)
for any feeds, :func:`plot_closure` draws it along a path of feed compositions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import dspmde, dspmde_plus, env, finetuning, fitting, ions
from .measurements import Measurements
from .models import HybridConfig, HybridDSPMDE
from .profiles import Profile, get
from .training import TrainConfig, TrainResult
from .training_data import TransportData


def train_config(profile: str | Profile, seed: int = 0, validation: bool = False) -> TrainConfig:
    """The loop of the profile's knob ``hybrid`` (float64; early stopping with the ``finetuning`` patience when
    there are validation feeds)."""
    P = get(profile)
    s = P.settings.hybrid
    patience = P.settings.finetuning["patience"] if validation else None
    return TrainConfig(
        epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=seed, dtype="float64", patience=patience
    )


def fit(
    meas: Measurements,
    *,
    profile: str | Profile = "default",
    seed: int = 0,
    val_meas: Measurements | None = None,
    simulated: TransportData | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool | str = False,
    progress: bool = False,
    loop: TrainConfig | None = None,
    **overrides,
) -> tuple[TrainResult, fitting.FitResult]:
    """The hybrid model calibrated on ``meas`` (see module docstring) and the ``dspmde_plus`` fit it starts from.

    The base fit uses its default start (seed 0 for every ``seed``: the fit does not depend on it), the network's
    initialisation and the noise use ``seed``. ``simulated`` (a pre-training split) mixes in the profile's
    ``hybrid.simulated_feeds`` DSPM-DE feeds (default 0). The model's temperature is the median of the data's;
    ``loop`` replaces the profile's loop (:func:`train_config`); ``overrides`` go to
    :class:`~nanoutils.models.HybridConfig` (e.g. ``reg_weight``)."""
    P = get(profile)
    base = dspmde_plus.fitted(meas, "dspmde_plus", 0, **P.settings.dspmde_plus_fit)
    config = HybridConfig.for_profile(
        P,
        **{
            "base": base.model.to_dict(),
            "known_ions": dspmde_plus.partition_ions(meas),
            "temperature": float(np.median(meas.arrays().T)),
            **overrides,
        },
    )
    env.seed_everything(seed)
    model = HybridDSPMDE(config)
    result = finetuning.finetune(
        model,
        meas,
        val_meas,
        profile=P,
        simulated=simulated,
        n_simulated=P.settings.hybrid["simulated_feeds"] if simulated is not None else 0,
        config=loop or train_config(P, seed, validation=val_meas is not None),
        run_dir=run_dir,
        resume=resume,
        progress=progress,
    )
    return result, base


def closure_frame(model: HybridDSPMDE, feeds: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """The membrane state the network gives each feed (mol/m³): one row per feed with X_d (mol/m³), X (the
    charge the fit's isotherm makes of X_d for that feed, mol/m³), ε_p, the fit's values X_d_fit, X_fit, and per
    ion of the feed ``dW[ion]`` and ``dW_fit[ion]`` (k_B T; ions outside ``model.config.known_ions`` keep the
    fit's value and are listed in ``uncorrected``)."""
    species = model.config.species
    conc, _ = ions.stack([ions.Feed(f) for f in feeds], species)
    dtype = model.z.dtype
    with torch.no_grad():
        c = torch.as_tensor(conc, dtype=dtype)
        params, dW = model.closure(c, c > 0)
    fit = model.fitted
    X = [
        float((fit.isotherm or dspmde.ChargeIsotherm()).charge(float(p), conc[n], species))
        for n, p in enumerate(params[:, 3])
    ]
    rows = []
    base_w = {ions.canonical(k): v for k, v in fit.partition_energy.items()}
    for n in range(len(conc)):
        present = [s for s, v in zip(species, conc[n], strict=True) if v > 0]
        row = {
            "feed": "; ".join(f"{s}={v:g}" for s, v in zip(species, conc[n], strict=True) if v > 0),
            "X_d": float(params[n, 3]),
            "X": float(X[n]),
            "eps_p": float(params[n, 2]),
            "X_d_fit": fit.membrane.X_d,
            "X_fit": float(fit.charge(conc[n], species)),
            "uncorrected": ", ".join(s for s in present if s not in model.config.known_ions),
        }
        for s in present:
            row[f"dW[{s}]"] = float(dW[n, species.index(s)])
            row[f"dW_fit[{s}]"] = float(base_w.get(s, 0.0))
        rows.append(row)
    return pd.DataFrame(rows)


def mixing_path(a: Mapping[str, float], b: Mapping[str, float], n: int = 21) -> tuple[np.ndarray, list[dict]]:
    """Feeds (1 − x) a + x b for x from 0 to 1 in ``n`` steps (mol/m³, ion → concentration): (x, feeds)."""
    x = np.linspace(0.0, 1.0, n)
    names = list(dict.fromkeys([*a, *b]))
    feeds = [{s: (1 - t) * a.get(s, 0.0) + t * b.get(s, 0.0) for s in names} for t in x]
    return x, [{s: v for s, v in f.items() if v > 0} for f in feeds]


def plot_closure(
    models: Mapping[str, HybridDSPMDE],
    path: Sequence[tuple[str, Mapping[str, float]]],
    *,
    n: int = 21,
    marks: Sequence[str] = (),
):
    """The learned closure along a path of feeds (``path``: (label, feed) stops, mixed linearly between
    neighbours, ``n`` points per leg) for each of ``models`` (label → model): the charge X (mol/m³) and ΔW_i
    (k_B T) of the ions on the path, the fit's values dashed. ``marks``: labels of stops to mark (e.g. the
    held-out feed). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax_x, ax_w) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    legs = list(zip(path[:-1], path[1:], strict=True))
    styles = ("-", "--", ":", "-.")
    for k, (label, model) in enumerate(models.items()):
        frames = []
        for i, ((_, fa), (_, fb)) in enumerate(legs):
            x, feeds = mixing_path(fa, fb, n)
            frames.append(closure_frame(model, feeds).assign(s=i + x))
        frame = pd.concat(frames, ignore_index=True)
        ax_x.plot(frame["s"], frame["X"], color=f"C{k}", label=label)
        ax_x.plot(frame["s"], frame["X_fit"], color=f"C{k}", ls=":", lw=1)
        ions_on_path = [c[3:-1] for c in frame.columns if c.startswith("dW[")]
        for j, ion in enumerate(ions_on_path):
            ax_w.plot(
                frame["s"], frame[f"dW[{ion}]"], color=f"C{j}", ls=styles[k % len(styles)], label=f"{ion} ({label})"
            )
            ax_w.plot(frame["s"], frame[f"dW_fit[{ion}]"], color=f"C{j}", ls=":", lw=0.8)
    ticks = np.arange(len(path))
    for ax in (ax_x, ax_w):
        ax.set_xticks(ticks, [lbl for lbl, _ in path])
        for t, (lbl, _) in zip(ticks, path, strict=True):
            if lbl in marks:
                ax.axvline(t, color="0.6", lw=4, alpha=0.3)
    ax_x.set(ylabel="membrane charge X (mol/m³)", title="learned charge (dotted: fit)")
    ax_w.set(ylabel="ΔW (k_B T)", title="learned partition energies (dotted: fit)")
    ax_x.legend(fontsize=7)
    ax_w.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def transfer_closure(
    bench, meas: Measurements, path: Sequence[str], held_out: str, *, seed: int = 0, name: str = "hybrid_dspmde"
):
    """:func:`plot_closure` of the models ``name`` of a :func:`nanoutils.transfer.benchmark` (``keep_models``):
    calibrated on all feeds and without ``held_out`` (feed id, e.g. "NaCl-10mM"), along the feeds ``path`` (feed
    ids of ``meas``, in order), the held-out feed marked. Returns the figure."""
    from .transfer import IN_SAMPLE

    keys = {k.split("/")[-1]: k for k in meas.feed_keys}
    missing = [f for f in (*path, held_out) if f not in keys]
    if missing:
        raise ValueError(f"feed(s) {missing} not in the data; feeds: {list(keys)}")
    models = {
        "all feeds": bench.models[(name, seed, IN_SAMPLE)],
        f"{held_out} held out": bench.models[(name, seed, keys[held_out])],
    }
    return plot_closure(models, [(f, meas.feeds[keys[f]]) for f in path], marks=(held_out,))
