"""The package as users get it: the wheel holds every file the code opens and every data file of
the package, and the version comes from one place (``pyproject.toml``, read back through the
package metadata).

The wheel is built from a clean copy of the package's sources, as from an sdist: a checkout's
stale ``build/lib`` or ``*.egg-info/SOURCES.txt`` can put a file into the wheel that the
configuration no longer ships, which would hide exactly the failure these tests look for.
``.ci/wheel_smoke.sh`` installs such a wheel and runs the study and the browser tests against it.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import shiftlab
from shiftlab.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "shiftlab"
#: What the wheel is built from (``README.md``: the long description; ``LICENSE``: license-files).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")
_FILE_NAME = re.compile(r"[\w.-]+\.\w+")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``shiftlab-<version>-py3-none-any.whl``, built without isolation from a clean copy of
    the sources (needs ``build`` and ``setuptools``, which the test extra installs)."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    tree.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info"))
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"),
                           str(tree)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, (
        "python -m build --wheel failed (pip install -c constraints.txt -e '.[test]' installs build and setuptools):\n"
        + proc.stdout[-3000:] + proc.stderr[-3000:])
    (built,) = (tmp / "dist").glob("shiftlab-*.whl")
    return built


def _dist_info(whl: zipfile.ZipFile, name: str) -> str:
    (path,) = [p for p in whl.namelist() if re.fullmatch(r"shiftlab-[^/]+\.dist-info/" + re.escape(name), p)]
    return whl.read(path).decode("utf-8")


def record_paths(wheel_path: Path) -> set[str]:
    """The paths the wheel's RECORD lists (what ``pip install`` puts into site-packages)."""
    with zipfile.ZipFile(wheel_path) as whl:
        return {row[0] for row in csv.reader(io.StringIO(_dist_info(whl, "RECORD"))) if row}


def _wheel_path(file: Path) -> str:
    return file.relative_to(PACKAGE.parent).as_posix()


def _resource_dirs(tree: ast.Module, module: Path) -> list[Path]:
    """Folders that ``module`` opens files in: a package named in ``files("shiftlab....")``
    (``importlib.resources``) and, where it uses ``__file__``, its own folder."""
    dirs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "__file__":
            dirs.append(module.parent)
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "files"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and node.args[0].value.split(".")[0] == "shiftlab"):
            dirs.append(PACKAGE.parent.joinpath(*node.args[0].value.split(".")))
    return dirs


def opened_files() -> dict[str, str]:
    """Package files the code opens, as wheel paths -> the module that opens them: every string
    constant of a module that names an existing non-Python file in a folder the module opens
    files in (:func:`_resource_dirs`), e.g. ``_asset("explorer.js")`` beside
    ``files("shiftlab.report.explorer")``."""
    opened = {}
    for module in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for folder in _resource_dirs(tree, module):
            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str) and _FILE_NAME.fullmatch(node.value)
                        and (folder / node.value).is_file() and not node.value.endswith(".py")):
                    opened[_wheel_path(folder / node.value)] = _wheel_path(module)
    return opened


def package_data_files() -> list[str]:
    """Every file of the package's source tree that is not Python source, as wheel paths."""
    return sorted(_wheel_path(p) for p in PACKAGE.rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts and p.suffix not in (".py", ".pyc"))


def test_the_scan_finds_the_files_the_report_opens():
    # If the explorer's loader changes shape, the scan must change with it rather than find nothing.
    assert {"shiftlab/report/explorer/explorer.js", "shiftlab/report/explorer/explorer.css"} <= set(opened_files())


def test_the_wheel_holds_every_file_the_code_opens(wheel):
    shipped = record_paths(wheel)
    missing = {path: module for path, module in opened_files().items() if path not in shipped}
    assert not missing, (f"{wheel.name} lacks files the code opens ({missing}, file -> the module that opens it): "
                         "list them under [tool.setuptools.package-data] in pyproject.toml")


def test_the_wheel_holds_every_data_file_of_the_package(wheel):
    shipped = record_paths(wheel)
    missing = [path for path in package_data_files() if path not in shipped]
    assert "shiftlab/py.typed" in package_data_files()  # type checkers read the annotations only with it
    assert not missing, (f"{wheel.name} lacks {missing}: list them under [tool.setuptools.package-data] in "
                         "pyproject.toml (or delete them from src/shiftlab if nothing uses them)")


def test_the_wheel_installs_the_command_the_license_and_the_version(wheel):
    with zipfile.ZipFile(wheel) as whl:
        entry_points = _dist_info(whl, "entry_points.txt")
        metadata = _dist_info(whl, "METADATA")
        assert "MIT License" in _dist_info(whl, "licenses/LICENSE")
    assert "shiftlab = shiftlab.cli.main:main" in entry_points
    assert "License-Expression: MIT" in metadata.splitlines()
    built = re.search(r"^Version: (\S+)$", metadata, re.M).group(1)
    assert wheel.name == f"shiftlab-{built}-py3-none-any.whl"
    assert wheel.name in (ROOT / "README.md").read_text(encoding="utf-8"), "README: install this version's wheel"
    assert shiftlab.__version__ == built, (
        f"shiftlab.__version__ is {shiftlab.__version__!r} but pyproject.toml says {built!r}: the installed metadata "
        "is stale; reinstall (pip install -c constraints.txt -e .)")


def test_version_comes_from_the_package_metadata(capsys):
    assert shiftlab.__version__ == version("shiftlab")
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"shiftlab {version('shiftlab')}\n"
