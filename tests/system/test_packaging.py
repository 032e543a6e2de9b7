"""The wheel as a user installs it: one import name, the ``hyperswarm-hugin`` command, the demo.

Builds the wheel from this checkout, installs it into a fresh virtualenv (its dependencies first,
from the package index as ``pip install`` would fetch them), and checks what it adds to
site-packages: ``hyperswarm_hugin`` and its dist-info, nothing else.  Then runs the demo through
the installed command from a directory outside the checkout, so nothing of the checkout is importable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.system.processes import ROOT, NodeProcess, assert_demo_greets

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

PIP = ["-m", "pip", "--disable-pip-version-check", "--quiet"]


def _run(*argv: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout


def _requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines without extras: what ``pip install wheel`` installs with it."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def _top_level(site_packages: Path) -> set[str]:
    return {p.name for p in site_packages.iterdir() if p.name != "__pycache__"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A fresh virtualenv with the wheel installed; the top-level names the wheel added."""
    work = tmp_path_factory.mktemp("wheel")
    # A copy of the checkout, so that setuptools' build/ neither lands in it nor brings stale files in.
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"))
    _run(sys.executable, *PIP, "wheel", "--no-deps", "--wheel-dir", work / "dist", source)
    (wheel,) = (work / "dist").glob("hyperswarm_hugin-*.whl")
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, *PIP, "install", *_requirements(wheel))
    site_packages = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    before = _top_level(site_packages)
    _run(python, *PIP, "install", "--no-deps", wheel)
    return venv, _top_level(site_packages) - before


def test_the_wheel_adds_one_import_name(installed: tuple[Path, set[str]]) -> None:
    venv, added = installed
    dist_info = [name for name in added if name.startswith("hyperswarm_hugin-") and name.endswith(".dist-info")]
    assert added == {"hyperswarm_hugin", *dist_info} and len(dist_info) == 1
    probe = ("import importlib.util as u, hyperswarm_hugin.protocol.dht.node, hyperswarm_hugin.actors.runtime, "
             "hyperswarm_hugin.config.settings, hyperswarm_hugin.cli; "
             "print([n for n in ('protocol', 'actors', 'config', 'run_node') if u.find_spec(n)]); "
             "print(u.find_spec('hyperswarm_hugin').origin)")
    found, origin = _run(venv / "bin" / "python", "-c", probe, cwd=venv).splitlines()
    assert found == "[]"
    assert origin.startswith(str(venv)) and Path(origin).with_name("py.typed").is_file()


def test_the_installed_command_and_module_run(installed: tuple[Path, set[str]]) -> None:
    venv, _ = installed
    assert "usage: hyperswarm-hugin" in _run(venv / "bin" / "hyperswarm-hugin", "--help", cwd=venv)
    assert "usage: python -m hyperswarm_hugin" in _run(venv / "bin" / "python", "-m", "hyperswarm_hugin", "--help",
                                                       cwd=venv)


def test_the_demo_runs_from_the_installed_command(installed: tuple[Path, set[str]]) -> None:
    venv, _ = installed
    with NodeProcess("demo", command=[str(venv / "bin" / "hyperswarm-hugin")], cwd=venv) as demo:
        assert_demo_greets(demo)
