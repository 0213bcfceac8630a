"""What pyproject.toml declares matches what the code imports and what the tree holds."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "storage", "tenants")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PACKAGES}


def test_every_imported_distribution_is_declared() -> None:
    """A module the code imports comes from a distribution the project depends on by
    name, not one that happens to be installed as another's dependency."""
    declared = {
        canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]
    }
    # uvicorn[standard] brings these, and the protocol is built on them.
    declared |= {
        canonicalize_name(Requirement(r).name)
        for r in importlib.metadata.requires("uvicorn") or []
        if 'extra == "standard"' in r
    }
    providers = importlib.metadata.packages_distributions()
    undeclared = {
        module: providers.get(module)
        for module in imported_top_level_modules()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & declared
    }
    assert undeclared == {}


def test_every_package_data_pattern_names_existing_files() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    empty = [
        f"{package}/{pattern}"
        for package, globs in patterns.items()
        for pattern in globs
        if not list((ROOT / package).glob(pattern))
    ]
    assert empty == []


def test_a_built_wheel_carries_the_console() -> None:
    """web/ sits beside the packages; setup.py's build_py copies it into
    gateway/console/web/, where an installed gateway finds it (webroot.py)."""
    import shutil
    import subprocess
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info")
        for name in (*PACKAGES, "web"):
            shutil.copytree(ROOT / name, tree / name, ignore=ignore)
        for name in ("pyproject.toml", "setup.py", "README.md", "MANIFEST.in"):
            shutil.copy(ROOT / name, tree / name)
        out = Path(tmp) / "wheel"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(tree)],
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", "HOME": tmp, "CC": "false"},  # no C build needed here
            timeout=110,
        )
        (wheel,) = out.glob("*.whl")
        names = set(zipfile.ZipFile(wheel).namelist())
    web = {p.relative_to(ROOT).as_posix() for p in (ROOT / "web").rglob("*") if p.is_file()}
    assert {"gateway/console/" + name for name in web} <= names
    assert "gateway/console/webroot.py" in names
