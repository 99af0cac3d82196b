"""The package as pip installs it, not as the checkout happens to hold it: the wheel carries every
module of chalicelib and the shipped configuration, each module imports from the installed copy
(outside the checkout), and the CLI runs from it: ``python -m chalicelib`` and the ``eks-iam-sync``
script, ``--help`` of every command, ``validate`` of the shipped configuration and ``rbac``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "chalicelib"
KNOWN_COMMANDS = {"validate", "rbac", "plan", "apply", "explain", "backups", "restore"}
# What never belongs in a build: VCS, environments, caches, earlier build output, deployment artefacts.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".chalice",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".import_linter_cache",
    ".hypothesis",
    "__pycache__",
    "*.pyc",
    "build",
    "dist",
    "*.egg-info",
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    site: Path
    outside: Path  # a working directory outside the checkout


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("packaging")
    # An in-tree build writes build/ and *.egg-info into the checkout, which others are editing:
    # build from a copy of the sources instead.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1", "PIP_NO_INPUT": "1"}
    built = _run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index", "-w", "dist"],
        source,
        quiet,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (source / "dist").glob("*.whl")
    site = work / "site"
    done = _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        work,
        quiet,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outside = work / "elsewhere"
    outside.mkdir()
    return Installed(wheel, site, outside)


def child_env(installed: Installed) -> dict[str, str]:
    """The installed copy first on the path, and nothing that points back at the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EKS_IAM_SYNC_", "AWS_ENDPOINT_URL"))}
    env.update(PYTHONPATH=str(installed.site), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    env.update(POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_METRICS_DISABLED="true")
    return env


def in_child(installed: Installed, *argv: str) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, *argv], installed.outside, child_env(installed))


def wheel_files(installed: Installed) -> set[str]:
    with zipfile.ZipFile(installed.wheel) as wheel:
        return {name for name in wheel.namelist() if name.startswith(f"{PACKAGE}/")}


def checkout_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def test_the_wheel_holds_every_module_and_data_file_of_the_checkout(installed: Installed) -> None:
    shipped, present = wheel_files(installed), checkout_files()
    assert {p for p in shipped if p.endswith(".py")} == {p for p in present if p.endswith(".py")}
    assert f"{PACKAGE}/default-config.yaml" in shipped
    assert present - shipped == set(), "files of the package that pip would not install"


def test_every_module_imports_from_the_installed_copy(installed: Installed) -> None:
    modules = sorted(module_name(p) for p in wheel_files(installed) if p.endswith(".py"))
    modules.remove(f"{PACKAGE}.__main__")  # runs the CLI: exercised by `python -m chalicelib` below
    script = (
        "import importlib, json, sys\n"
        "names = json.loads(sys.argv[1])\n"
        "found = {name: importlib.import_module(name).__file__ for name in names}\n"
        "print(json.dumps(found))\n"
    )
    child = in_child(installed, "-c", script, json.dumps(modules))
    assert child.returncode == 0, child.stderr
    found: dict[str, str] = json.loads(child.stdout)
    assert set(found) == set(modules)
    site = installed.site.resolve()
    outside = {name: file for name, file in found.items() if not Path(file).resolve().is_relative_to(site)}
    assert outside == {}, f"imported from elsewhere than {site}"
    assert Path(found[PACKAGE]).resolve() == site / PACKAGE / "__init__.py"
    assert not Path(found[PACKAGE]).resolve().is_relative_to(ROOT)


def commands_of(help_text: str) -> set[str]:
    section = help_text.split("commands:", 1)[1]
    return set(re.findall(r"^ {4}([a-z][a-z-]*)(?:\s|$)", section, flags=re.MULTILINE))


def test_the_cli_runs_from_the_installed_copy(installed: Installed) -> None:
    top = in_child(installed, "-m", PACKAGE, "--help")
    assert top.returncode == 0, top.stderr
    commands = commands_of(top.stdout)
    assert commands >= KNOWN_COMMANDS, top.stdout
    script = installed.site / "bin" / "eks-iam-sync"
    runs = {
        "validate": [sys.executable, "-m", PACKAGE, "validate"],
        "rbac": [sys.executable, "-m", PACKAGE, "rbac"],
        "script": [sys.executable, str(script), "--help"],
        **{f"{c} --help": [sys.executable, "-m", PACKAGE, c, "--help"] for c in sorted(commands)},
    }
    env = child_env(installed)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(zip(runs, pool.map(lambda argv: _run(argv, installed.outside, env), runs.values()), strict=True))
    failed = {name: r.stderr[-2000:] for name, r in results.items() if r.returncode != 0}
    assert failed == {}

    shipped = installed.site.resolve() / PACKAGE / "default-config.yaml"
    validated = results["validate"].stdout
    assert validated.startswith(f"{shipped}: valid: "), validated  # the shipped example, from the install
    manifest = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(results["rbac"].stdout)]
    assert manifest == [
        ("ClusterRole", "eks-iam-sync"),
        ("ClusterRoleBinding", "eks-iam-sync"),
        ("Role", "eks-iam-sync-aws-auth"),
        ("RoleBinding", "eks-iam-sync-aws-auth"),
        ("ClusterRole", "eks-iam-sync-admin-view"),  # AmazonEKSAdminViewPolicy's equivalent on aws-auth clusters
    ]
    assert commands_of(results["script"].stdout) == commands
    for command in commands:
        assert results[f"{command} --help"].stdout.startswith(f"usage: eks-iam-sync {command}")
