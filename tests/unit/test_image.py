"""The container image's recipe, built here without a Docker engine: the Dockerfile's Python environment comes from
scripts/image-venv.sh, which this test runs the same way, so a lock file that misses a runtime dependency, a dev tool
that leaks into the image, or a chart that disagrees with the image's user or tag fails here. The operator alone,
on its declared dependencies (no runtime extra), must start too."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from modelops import __version__
from tests.support.paths import ROOT

CHART = ROOT / "charts" / "modelops"


def uv() -> str:
    found = os.environ.get("MODELOPS_UV") or shutil.which("uv")
    assert found, "no uv: run the tests through `make test` (it sets MODELOPS_UV)"
    return found


def installed(venv: Path, lock: str) -> Path:
    """A virtualenv with the lock file's packages and modelops itself, as the image gets them."""
    for step in ("deps", "app"):
        done = subprocess.run(
            ["sh", "scripts/image-venv.sh", step, str(venv)],
            cwd=ROOT,
            env={**os.environ, "UV": uv(), "LOCK": lock},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr
    return venv


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed(tmp_path_factory.mktemp("image") / "venv", "requirements-image.lock")


def locked(lock: str) -> dict[str, str]:
    """name → version of a lock file."""
    pins = (line.split(" ")[0].split("==") for line in (ROOT / lock).read_text().splitlines() if "==" in line)
    return {name: version for name, version in pins}


def test_the_operator_starts_on_its_declared_dependencies_alone(tmp_path: Path) -> None:
    venv = installed(tmp_path / "venv", "requirements-operator.lock")
    python = str(venv / "bin" / "python")
    started = subprocess.run([str(venv / "bin" / "modelops"), "run", "--help"], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    done = subprocess.run([python, "-c", "import modelops.controllers.main"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for library in ("sklearn", "pandas", "bentoml"):  # so none of them is what the operator needs
        absent = subprocess.run([python, "-c", f"import {library}"], capture_output=True, text=True)
        assert absent.returncode != 0, f"{library} is installed with the operator's own dependencies"
    everything = locked("requirements.lock")
    assert {n: everything.get(n) for n in locked("requirements-operator.lock")} == locked("requirements-operator.lock")


def test_image_runs_the_operator_the_trainer_and_the_server(image_venv: Path) -> None:
    helped = subprocess.run([str(image_venv / "bin" / "modelops"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    for command in ("run", "train", "serve"):
        assert f" {command} " in helped.stdout
    imports = "import modelops.controllers.main, modelops.runtime.train, modelops.runtime.serve, modelops.drift"
    done = subprocess.run([str(image_venv / "bin" / "python"), "-c", imports], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_image_has_no_dev_tools(image_venv: Path) -> None:
    listed = subprocess.run(
        [uv(), "pip", "list", "--python", str(image_venv / "bin" / "python"), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    dev_names = {requirement.split("==")[0].lower() for requirement in dev}
    assert dev_names.isdisjoint({p["name"].lower() for p in yaml.safe_load(listed)})


def test_chart_and_image_agree() -> None:
    """The chart runs the image's user, and its default tag is the package's version (the image built from it)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER 65532:65532" in dockerfile
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "runAsUser: 65532" in deployment and "runAsGroup: 65532" in deployment
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == __version__
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == __version__
