"""Tests of the package surface: version, public names, lazily loaded submodules."""

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import lenet_blocks as lb

ROOT = Path(__file__).resolve().parent.parent


def test_version_matches_installed_metadata():
    assert lb.__version__ == importlib.metadata.version("lenet_blocks")


@pytest.mark.parametrize("name", ["datasets", "export", "pipeline", "search", "training", "tuning"])
def test_submodule_is_reachable_after_plain_import(name):
    module = getattr(lb, name)
    assert module.__name__ == f"lenet_blocks.{name}"


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        lb.nonsense  # noqa: B018


def test_plain_import_loads_no_keras_or_tensorflow():
    script = "import sys, lenet_blocks; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    command = [sys.executable, "-c", script]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    """The wheel and the sdist, built from this checkout by `python -m build`."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--sdist",
            "--wheel",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_wheel_has_py_typed_license_and_metadata(distributions):
    wheel, _ = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert "lenet_blocks/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = metadata.decode()
    for expected in ("Project-URL: Source", "Python :: 3.11", 'extra == "all"', "Typing :: Typed"):
        assert expected in metadata
    assert "Requires-Dist: tqdm" not in metadata.split("Provides-Extra")[0]
    assert "scripts/setup.sh" not in metadata and "](docs/" not in metadata


def test_tests_run_from_the_unpacked_sdist(distributions, tmp_path):
    _, sdist = distributions
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (root,) = tmp_path.iterdir()
    for helper in ("conftest.py", "idx_helpers.py", "layer_helpers.py", "cli_helpers.py"):
        assert (root / "tests" / helper).is_file()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
         "tests/test_layers.py", "-k", "not passes_every_generic_check",  # the quick ones
         "tests/test_package.py::test_unknown_attribute_raises_attribute_error"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert (
        f"{root}/lenet_blocks"
        in subprocess.run(
            [sys.executable, "-c", "import lenet_blocks; print(lenet_blocks.__file__)"],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
        ).stdout
    )
