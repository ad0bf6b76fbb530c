"""Run the notebook series headlessly with papermill.

``python -m nanoutils run --profile smoke|default|paper [--only NN ...] [--device auto|cpu|cuda]``
executes ``notebooks/NN_*.ipynb`` in order, writes executed copies to
``runs/<profile>/notebooks/``, stops at the first failing notebook (naming it and
the failing cell) and prints a summary table.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from .env import DEVICES
from .profiles import ROOT, Profile, get

NOTEBOOK_DIR = ROOT / "notebooks"
_NOTEBOOK_RE = re.compile(r"^(\d\d)_.+\.ipynb$")


def _kernel_manager() -> type:
    """The kernel manager the runner starts kernels with: on POSIX one whose kernel talks over Unix sockets
    (transport "ipc") instead of TCP ports. With TCP, jupyter_client picks free ports, frees them and the kernel
    binds them later; clean-clone CI runs hung at the start of a notebook with papermill waiting on an idle kernel
    while other tests ran beside it, under ipykernel 7 and 6 alike, which fits a message lost in that window. Unix
    sockets have no such window. Windows has no ipc transport and keeps TCP."""
    import os
    import sys
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    if sys.platform == "win32":
        return AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")
        def _ip_default(self) -> str:  # an absolute, unique socket prefix (jupyter_client's is "kernel-ipc" in the cwd)
            return os.path.join(tempfile.gettempdir(), f"nanoutils-kernel-{uuid.uuid4().hex[:16]}")

    return IPCKernelManager


class SeriesError(RuntimeError):
    """A notebook of the series failed; the message names the notebook and the cell."""

    runs: list[NotebookRun]  # the outcome of every notebook of the series, set where it is raised


@dataclass
class NotebookRun:
    """Outcome of one notebook: ``status`` is ``ok``, ``FAILED`` or ``not run``; seconds of wall time."""

    notebook: str
    status: str = "not run"
    seconds: float = 0.0
    output: Path | None = None


def discover(notebook_dir: Path = NOTEBOOK_DIR, only: list[str] | None = None) -> list[Path]:
    """The series' notebooks ``NN_*.ipynb`` in order, optionally only the numbers in ``only``."""
    found = sorted(p for p in notebook_dir.glob("*.ipynb") if _NOTEBOOK_RE.match(p.name))
    if not only:
        return found
    wanted = {f"{int(n):02d}" for n in only if str(n).isdigit()}
    bad = [n for n in only if not str(n).isdigit()]
    if bad:
        raise ValueError(f"--only takes notebook numbers such as 00 or 3, got {bad}")
    missing = wanted - {p.name[:2] for p in found}
    if missing:
        raise ValueError(f"no notebook numbered {', '.join(sorted(missing))} in {notebook_dir}")
    return [p for p in found if p.name[:2] in wanted]


def run_series(
    profile: str | Profile,
    *,
    only: list[str] | None = None,
    device: str = "auto",
    notebook_dir: Path = NOTEBOOK_DIR,
    progress_bar: bool = True,
    max_epochs: int | None = None,
) -> list[NotebookRun]:
    """Execute the series with papermill; raise :class:`SeriesError` at the first failure.

    Every notebook gets the parameters ``profile`` and ``device``; a notebook that trains declares
    ``max_epochs`` in its parameters cell and gets ``max_epochs`` too (None: no cap), which caps every
    training run: a check that a profile runs end to end, not a result. Returns one
    :class:`NotebookRun` per notebook (the ones after a failure are ``not run``);
    the runs are also attached to a raised :class:`SeriesError` as ``runs``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    prof = get(profile, max_epochs=max_epochs)  # refuses a cap below 1 before any notebook runs
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    notebooks = discover(notebook_dir, only)
    if not notebooks:
        raise ValueError(f"no notebooks NN_*.ipynb found in {notebook_dir}")
    out_dir = prof.subdir("notebooks")
    runs = [NotebookRun(nb.name) for nb in notebooks]
    for nb, run in zip(notebooks, runs, strict=True):
        run.output = out_dir / nb.name
        parameters: dict[str, object] = {"profile": prof.name, "device": device}
        if "max_epochs" in papermill.inspect_notebook(str(nb)):
            parameters["max_epochs"] = prof.max_epochs
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(nb),
                str(run.output),
                parameters=parameters,
                kernel_name="python3",
                kernel_manager_class=_kernel_manager(),
                progress_bar=progress_bar,
                cwd=str(notebook_dir),
            )
        except PapermillExecutionError as err:
            run.status, run.seconds = "FAILED", time.perf_counter() - start
            # papermill's cell_index counts its injected-parameters cell; exec_count is what Jupyter shows.
            error = SeriesError(
                f"{nb.name} failed in cell [{err.exec_count}] (cell index {err.cell_index}): "
                f"{err.ename}: {err.evalue}\nexecuted copy with the traceback: {run.output}"
            )
            error.runs = runs
            raise error from None
        run.status, run.seconds = "ok", time.perf_counter() - start
    return runs


def summary_table(runs: list[NotebookRun]) -> str:
    """A plain-text table: notebook, seconds, status."""
    width = max([len("notebook"), *(len(r.notebook) for r in runs)])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  status", f"{'-' * width}  {'-' * 8}  ------"]
    lines += [f"{r.notebook:<{width}}  {r.seconds:8.1f}  {r.status}" for r in runs]
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in runs):8.1f}")
    return "\n".join(lines)
