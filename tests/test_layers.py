"""How the package's modules depend on each other: the NumPy layer never pulls torch, no module imports
another package's private modules, and the old module names are aliases of the new ones."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nanoutils"
#: Modules that need no torch (the old names included: they are aliases).
NUMPY_MODULES = (
    "activity",
    "constants",
    "data",
    "datasets",
    "dspmde",
    "env",
    "fitting",
    "friction",
    "ions",
    "measurements",
    "metrics",
    "prediction",
    "pretraining_set",
    "profiles",
    "report",
    "sampling",
    "training_data",
    "transport_data",
    "units",
    "virtual_lab",
)


def _pulls_torch(modules: tuple[str, ...]) -> bool:
    code = "import sys\n" + "".join(f"import nanoutils.{m}\n" for m in modules) + "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent)
    return out.stdout.strip() == "True"


def test_numpy_modules_do_not_import_torch():
    if _pulls_torch(NUMPY_MODULES):
        culprits = [m for m in NUMPY_MODULES if _pulls_torch((m,))]
        pytest.fail(f"importing these modules pulls torch: {culprits}")


def test_a_torch_module_is_seen_importing_torch():
    """The check above can fail: a module that needs torch is detected."""
    assert _pulls_torch(("training",))


def _private_imports(source: str, package: tuple[str, ...]) -> list[str]:
    """Modules imported by ``source`` (a module of ``package``, e.g. ("nanoutils", "friction")) that are private
    (a name component starting with ``_``) to a package other than ``package`` or one of its parents."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            names = (
                [base + tuple(node.module.split("."))]
                if node.module
                else [base + (alias.name,) for alias in node.names]
            )
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split(".")) for alias in node.names]
        else:
            continue
        for name in names:
            private = [i for i, part in enumerate(name) if part.startswith("_") and part != "__future__"]
            if private and name[: private[0]] != package[: private[0]]:
                found.append(".".join(name))
    return found


def _package(path: Path) -> tuple[str, ...]:
    return path.relative_to(PACKAGE.parent).parts[:-1]


def test_no_module_imports_another_packages_private_modules():
    offenders = {
        str(p.relative_to(PACKAGE.parent)): bad
        for p in sorted(PACKAGE.rglob("*.py"))
        if (bad := _private_imports(p.read_text(encoding="utf-8"), _package(p)))
    }
    assert not offenders, offenders


def test_the_private_import_check_flags_foreign_private_modules_only():
    source = (
        "from ..dspmde._solver import solve_cases\nfrom torchdiffeq._impl.odeint import SOLVERS\n"
        "from ._fit import fit\nfrom .._inputs import check_inputs\nimport numpy._core\n"
    )
    assert _private_imports(source, ("nanoutils", "friction")) == [
        "nanoutils.dspmde._solver",
        "torchdiffeq._impl.odeint",
        "numpy._core",
    ]


@pytest.mark.parametrize(
    "old, new", [("data", "measurements"), ("datasets", "pretraining_set"), ("transport_data", "training_data")]
)
def test_old_module_names_are_the_new_modules(old, new):
    assert importlib.import_module(f"nanoutils.{old}") is importlib.import_module(f"nanoutils.{new}")
