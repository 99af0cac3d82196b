"""``make package``: the zip Lambda runs and the template CloudFormation takes (tools/package.py).

One build of the dev stage serves this module and tests/integration/test_infra.py (``packaged``). The zip
is unpacked and imported as Lambda runs it: a read-only folder, a plain interpreter that writes no
bytecode and sees nothing but the zip and the standard library (``-I -S -B``), the function's environment.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.config import DEFAULT_CONFIG_PATH, load_config
from tools import package

ROOT = Path(__file__).parents[2]
FIRST_EVENT = ("app", "chalicelib.run.runner", "chalicelib.adapters.shell")
NO_AWS_FILES = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@dataclass(frozen=True)
class Packaged:
    built: package.Built
    tree: Path  # the zip, unpacked read-only
    chalice_zip: Path  # what `chalice package` alone makes

    @property
    def template(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.built.template.read_text())
        return loaded


def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="eks-iam-sync-test-package-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _writable(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


@functools.cache
def packaged_dev() -> Packaged:
    """The dev stage, packaged once per test session (and shared with test_infra.py)."""
    work = _scratch()
    built = package.build("dev", out=work / "dist" / "dev", keep_chalice_zip=work / "chalice.zip")
    tree = work / "unpacked"
    with zipfile.ZipFile(built.zip) as archive:
        archive.extractall(tree)
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    atexit.register(_writable, tree)  # before _scratch's rmtree: atexit runs last-registered first
    return Packaged(built, tree, work / "chalice.zip")


@functools.cache
def packaged_in_a_vpc() -> tuple[Path, dict[str, Any]]:
    """A stage with VPC settings, its policy rendered from the configuration: the template only."""
    project = _scratch() / "project"
    (project / ".chalice").mkdir(parents=True)
    for name in ("app.py", "chalicelib", "requirements.txt", "infra"):
        (project / name).symlink_to(ROOT / name)
    # Chalice's dependency cache: the same app files and requirements hash to the same archive.
    (project / ".chalice" / "deployments").symlink_to(ROOT / ".chalice" / "deployments", target_is_directory=True)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["vpc"] = {
        "iam_policy_file": "policy-vpc.json",
        "subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"],
        "security_group_ids": ["sg-0ccc3333"],
    }
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    path, text = package.render_policy(project, "vpc", None)
    path.write_text(text)
    built = package.build("vpc", out=project / "dist", project=project, template_only=True)
    template: dict[str, Any] = yaml.safe_load(built.template.read_text())
    return project, template


@pytest.fixture(scope="module")
def packaged() -> Packaged:
    return packaged_dev()


def in_lambda(packaged: Packaged, script: str, *flags: str) -> subprocess.CompletedProcess[str]:
    python = package.lambda_python(packaged.tree)
    return subprocess.run(
        [python[0], *flags, *python[1:], script],
        capture_output=True,
        text=True,
        env={**package.lambda_env(packaged.template, packaged.tree), **NO_AWS_FILES},
        timeout=120,
        check=False,
    )


def test_the_zip_carries_unchecked_hash_bytecode_for_the_runtime_for_every_module(packaged: Packaged) -> None:
    sources = [p for p in packaged.tree.rglob("*.py")]
    assert len(sources) > 1000
    missing = [p for p in sources if not Path(importlib.util.cache_from_source(str(p))).is_file()]
    assert missing == []
    assert packaged.built.compiled == len(sources)
    for source in (packaged.tree / "app.py", packaged.tree / "kubernetes" / "client" / "api_client.py"):
        header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER  # this Python's, and RUNTIME is this Python's version
        assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked (PEP 552)
    assert package.interpreter_runtime() == package.RUNTIME


def test_lambda_loads_every_module_from_the_shipped_bytecode(packaged: Packaged) -> None:
    """-v says where each code object came from: every module of the zip the first relevant event imports
    is read from its .pyc, none compiled from source, nothing written."""
    script = (
        "import importlib, json, sys\n"
        + "".join(f"importlib.import_module({m!r})\n" for m in FIRST_EVENT)
        + f"root = {str(packaged.tree)!r}\n"
        + "print(json.dumps(sorted(m.__cached__ for m in list(sys.modules.values())"
        + " if (getattr(m, '__file__', None) or '').startswith(root) and m.__file__.endswith('.py'))))\n"
    )
    child = in_lambda(packaged, script, "-v")
    assert child.returncode == 0, child.stderr[-3000:]
    root = re.escape(str(packaged.tree))
    from_bytecode = set(re.findall(rf"^# code object from '({root}/[^']+\.pyc)'$", child.stderr, re.M))
    from_source = re.findall(rf"^# code object from ({root}/\S+\.py)$", child.stderr, re.M)
    imported: list[str] = json.loads(child.stdout.strip().splitlines()[-1])
    assert len(imported) > 900, "the first relevant event imports the kubernetes client and boto3"
    assert from_source == []
    assert set(imported) <= from_bytecode
    assert "# wrote" not in child.stderr


def test_what_the_lambda_never_imports_is_not_shipped(packaged: Packaged) -> None:
    tree = packaged.tree
    assert not (tree / "kubernetes" / "aio").exists()
    assert not [p for p in tree.rglob("tests") if p.is_dir()]
    assert not list(tree.rglob("*.pyi")) and not list(tree.glob("*.data"))
    models = {p.name for p in (tree / "botocore" / "data").iterdir() if p.is_dir()}
    assert models == set(package.BOTOCORE_SERVICES)
    endpoints = json.loads((tree / "botocore" / "data" / "endpoints.json").read_text())
    assert {k for p in endpoints["partitions"] for k in p["services"]} <= set(package.BOTOCORE_SERVICES)
    with zipfile.ZipFile(packaged.chalice_zip) as archive:
        shipped_by_chalice = {name.split("/")[0] for name in archive.namelist()}
    assert {"app.py", "chalicelib", "chalice", "kubernetes", "boto3", "botocore"} <= shipped_by_chalice
    assert packaged.built.zip_bytes < packaged.built.chalice_zip_bytes
    with zipfile.ZipFile(packaged.built.zip) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted((i.filename for i in infos), key=lambda name: name.split("/"))
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert all((i.external_attr >> 16) & 0o444 == 0o444 for i in infos)  # readable by Lambda's user


def test_every_aws_client_chalicelib_creates_has_its_model_and_endpoints(packaged: Packaged) -> None:
    created = set()
    for source in (ROOT / "chalicelib").rglob("*.py"):
        text = source.read_text()
        created |= set(re.findall(r"(?:\.client\(|\bbounded_client\([^\"\n]*?)\s*\"([a-z0-9-]+)\"", text))
        if re.search(r"\bparameters\.(?:get_parameter|SSMProvider)\(", text):
            created.add("ssm")
    assert created and created <= set(package.BOTOCORE_SERVICES), "add the service to tools/package.py"
    regions = ["us-east-1", "us-east-2", "eu-west-1", "cn-north-1", "us-gov-west-1"]
    script = (
        "import boto3, json\n"
        f"urls = {{f'{{s}} {{r}}': boto3.client(s, region_name=r, aws_access_key_id='x', aws_secret_access_key='x')"
        f".meta.endpoint_url for s in {sorted(package.BOTOCORE_SERVICES)!r} for r in {regions!r}}}\n"
        "print(json.dumps(urls))\n"
    )
    child = in_lambda(packaged, script)
    assert child.returncode == 0, child.stderr[-3000:]
    # The same in this venv's full botocore, with nothing of the test session's (moto endpoints) in the way.
    env = {"PATH": os.environ.get("PATH", ""), **NO_AWS_FILES}
    full = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, env=env, check=True)
    assert json.loads(child.stdout) == json.loads(full.stdout)  # trimmed endpoints resolve like botocore's own


def test_the_template_pins_the_stage_and_the_runtime_and_has_no_aliases(packaged: Packaged) -> None:
    text = packaged.built.template.read_text()
    assert not re.search(r"[&*]id\d+", text)

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise AssertionError("a YAML alias: CloudFormation rejects it")
            return super().compose_node(parent, index)

    template = yaml.load(text, Loader=NoAliases)
    assert template["Parameters"]["Stage"]["Default"] == "dev"
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["dev"]
    for logical in package.FUNCTIONS:
        properties = template["Resources"][logical]["Properties"]
        assert properties["Runtime"] == package.RUNTIME
        assert properties["CodeUri"] == "./deployment.zip"
    assert packaged.built.template.parent == packaged.built.zip.parent


def test_make_package_is_the_contract() -> None:
    # Run from `make test`, the outer make's flags would make this one print its directory changes.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "package", "STAGE=prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert dry.stdout.strip().splitlines()[-1].endswith("-m tools.package build --stage prod")
    assert "dist/$(STAGE)/deployment.zip" in (ROOT / "Makefile").read_text()


def test_packaging_refuses_a_stage_whose_policy_does_not_match_its_configuration(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("clusters: [{name: platform, region: eu-west-1}]\n")
    with pytest.raises(package.PackageError) as refused:
        package.check(ROOT, "prod", load_config(other))
    message = str(refused.value)
    assert "FindConfiguredClusters lacks arn:aws:eks:eu-west-1:*:cluster/platform" in message
    assert "python -m tools.package policy --stage prod --write" in message
    package.check(ROOT, "prod", load_config(DEFAULT_CONFIG_PATH))


def test_packaging_refuses_another_python_and_a_remote_configuration_without_a_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(package, "interpreter_runtime", lambda: "python3.12")
    with pytest.raises(package.PackageError, match=r"needs Python 3\.11 .* this is python3\.12"):
        package.build("dev", out=tmp_path)
    project = tmp_path / "project"
    shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments"))
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"]["prod"]["environment_variables"] = {"EKS_IAM_SYNC_CONFIG": "ssm:/eks-iam-sync/prod"}
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    with pytest.raises(package.PackageError, match="give a copy of that document with --config FILE"):
        package.stage_and_config(project, "prod", None)
    _, text = package.render_policy(project, "prod", str(DEFAULT_CONFIG_PATH))
    assert '"ssm:GetParameter"' in text


def test_nothing_of_the_packaging_environment_leaks_into_the_bytecode(packaged: Packaged) -> None:
    """Compiled with no -O (Lambda runs without it) and no PYTHONPYCACHEPREFIX: next to the sources."""
    assert not [p for p in packaged.tree.rglob("*.pyc") if p.parent.name != "__pycache__"]
    assert os.environ.get("PYTHONOPTIMIZE") is None or not list(packaged.tree.rglob("*.opt-*.pyc"))
