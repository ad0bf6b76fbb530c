"""Notebook hygiene and the smoke run of the whole series through the runner."""

import os
import shutil
import sys

import nbformat
import pytest

from nanoutils import profiles
from nanoutils.runner import NOTEBOOK_DIR, SeriesError, discover, run_series, summary_table

NOTEBOOKS = discover()
META = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(metadata=META)
    nb.cells = [nbformat.v4.new_code_cell('profile = "default"\ndevice = "auto"', metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_series_is_numbered_from_00():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("00_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_parameters_cell_and_kernel_metadata(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one parameters cell"
    namespace: dict = {}
    exec(tagged[0].source, namespace)  # the parameters cell holds plain assignments only
    assert namespace["profile"] == "default" and namespace["device"] == "auto"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["language_info"]["name"] == "python"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


# Tests that start Jupyter kernels share the smoke series' worker: jupyter_client picks "free" ports by binding and
# releasing them, so two workers launching kernels at the same moment can collide, and a kernel that lost the race
# leaves papermill waiting for it forever (seen once: the series stalled at notebook 02's kernel start while the
# test below ran on the other worker).
KERNELS = pytest.mark.xdist_group("runs_smoke")


@KERNELS
def test_runner_stops_at_first_failure_naming_notebook_and_cell(tmp_path):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    _notebook(nb_dir / "00_ok.ipynb", "x = 1")
    _notebook(nb_dir / "01_bad.ipynb", "y = 2", "raise RuntimeError('boom ' + profile)")
    _notebook(nb_dir / "02_after.ipynb", "z = 3")
    prof = profiles.Profile("smoke", root=tmp_path)
    with pytest.raises(SeriesError) as info:
        run_series(prof, notebook_dir=nb_dir, progress_bar=False)
    message = str(info.value)
    assert "01_bad.ipynb" in message and "RuntimeError: boom smoke" in message and "cell [" in message
    assert [r.status for r in info.value.runs] == ["ok", "FAILED", "not run"]
    assert (tmp_path / "runs" / "smoke" / "notebooks" / "01_bad.ipynb").exists()
    assert "01_bad.ipynb" in summary_table(info.value.runs)


def test_runner_only_selects_and_rejects_unknown_numbers(tmp_path):
    _notebook(tmp_path / "00_a.ipynb")
    _notebook(tmp_path / "03_b.ipynb")
    assert [p.name for p in discover(tmp_path, ["3"])] == ["03_b.ipynb"]
    with pytest.raises(ValueError, match="05"):
        discover(tmp_path, ["05"])
    with pytest.raises(ValueError, match="abc"):
        discover(tmp_path, ["abc"])


def test_unknown_profile_and_device_are_refused():
    with pytest.raises(ValueError, match="fast"):
        profiles.get("fast")
    with pytest.raises(ValueError, match="tpu"):
        run_series("smoke", device="tpu", notebook_dir=NOTEBOOK_DIR)


@pytest.mark.slow
@KERNELS  # also: it writes the repository's runs/smoke, as the tuning test's labelling does
def test_smoke_run_of_the_whole_series():
    smoke = profiles.get("smoke")
    shutil.rmtree(smoke.run_dir / "figures", ignore_errors=True)  # only this run's figures count below
    runs = run_series(smoke, device="cpu", progress_bar=False)
    assert [r.notebook for r in runs] == [p.name for p in NOTEBOOKS]
    assert all(r.status == "ok" and r.output.exists() for r in runs)
    print("\n" + summary_table(runs))
    # every figure and table committed in figures/ (the default run's) is made by the smoke run too
    committed = {p.name for p in profiles.FIGURES_DIR.iterdir() if p.is_file()}
    made = {p.name for p in smoke.figures_dir.iterdir()}
    assert committed <= made, f"not produced by the smoke run: {sorted(committed - made)}"


@KERNELS
def test_max_epochs_reaches_the_notebooks_that_declare_it_as_a_parameter(tmp_path):
    _notebook(tmp_path / "00_plain.ipynb", "assert 'max_epochs' not in globals()")
    nbformat.write(
        nbformat.v4.new_notebook(
            metadata=META,
            cells=[
                nbformat.v4.new_code_cell(
                    'profile = "default"\ndevice = "auto"\nmax_epochs = None', metadata={"tags": ["parameters"]}
                ),
                nbformat.v4.new_code_cell("assert max_epochs == 3"),
            ],
        ),
        tmp_path / "01_trains.ipynb",
    )
    run_series(profiles.Profile("smoke", root=tmp_path), notebook_dir=tmp_path, progress_bar=False, max_epochs=3)
    with pytest.raises(ValueError, match="max_epochs"):
        run_series(profiles.Profile("smoke", root=tmp_path), notebook_dir=tmp_path, max_epochs=0)


def _code(path):
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


TRAINS = (
    "training.train(",
    "comparison.pretrain(",
    "comparison.run_deep(",
    "comparison.finetune_run(",
    "finetuning.finetune(",
)


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if any(call in _code(p) for call in TRAINS)], ids=lambda p: p.name
)
def test_training_notebooks_take_max_epochs_into_their_profile(path):
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {}
    exec([c for c in nb.cells if "parameters" in c.metadata.get("tags", [])][0].source, namespace)
    assert "max_epochs" in namespace and namespace["max_epochs"] is None
    assert any("max_epochs=max_epochs" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no ipc transport; the runner keeps TCP there")
def test_the_runner_starts_kernels_on_unix_sockets_each_with_its_own_absolute_path():
    from nanoutils.runner import _kernel_manager

    cls = _kernel_manager()
    a, b = cls(kernel_name="python3"), cls(kernel_name="python3")
    assert a.transport == b.transport == "ipc"
    assert os.path.isabs(a.ip) and a.ip != b.ip  # not jupyter_client's shared "kernel-ipc" in the cwd
