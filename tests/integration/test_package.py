"""``make package``: the zip Lambda runs and the template CloudFormation takes (tools/package.py).

One build of the dev stage for x86_64 serves this module and tests/integration/test_infra.py (``packaged``).
The zip is unpacked and imported as Lambda runs it: a read-only folder, a plain interpreter of the runtime's
Python version that writes no bytecode and sees nothing but the zip and the standard library (``-I -S -B``),
the function's environment. One build for arm64 (``packaged_arm``), as a host without the runtime's Python
makes it: checked by its contents. Another (``packaged_arm_compiled``), with bytecode, as this host makes it:
imported the same way by Debian's aarch64 CPython under qemu-user (tests/harness/install-arm64-python.sh).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
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
from tools import lambda_target, package

ROOT = Path(__file__).parents[2]
FIRST_EVENT = ("app", "chalicelib.run.runner", "chalicelib.adapters.shell")
NO_AWS_FILES = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
CACHE = Path(os.environ.get("EKS_IAM_SYNC_CACHE", Path.home() / ".cache" / "eks-iam-sync"))
ARM64_SYSROOT = CACHE / "arm64" / "sysroot"  # tests/harness/install-arm64-python.sh


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


def _unpacked_read_only(zip_path: Path, tree: Path) -> Path:
    """The zip unpacked as Lambda's /var/task: read-only."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tree)
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    atexit.register(_writable, tree)  # before _scratch's rmtree: atexit runs last-registered first
    return tree


@functools.cache
def packaged_dev() -> Packaged:
    """The dev stage, packaged once per test session (and shared with test_infra.py)."""
    work = _scratch()
    built = package.build("dev", out=work / "dist" / "dev", keep_chalice_zip=work / "chalice.zip")
    return Packaged(built, _unpacked_read_only(built.zip, work / "unpacked"), work / "chalice.zip")


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


@dataclass(frozen=True)
class PackagedArm:
    built: package.Built
    tree: Path
    printed: str  # what packaging wrote to stderr


@functools.cache
def packaged_arm() -> PackagedArm:
    """The dev stage for arm64, on a host without the runtime's Python (no bytecode can be compiled)."""
    work = _scratch()
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(printed):
        patch.setattr(package, "runtime_interpreter", lambda target: None)
        built = package.build("dev", out=work / "dist", architecture="arm64")
    tree = work / "unpacked"
    with zipfile.ZipFile(built.zip) as archive:
        archive.extractall(tree)
    return PackagedArm(built, tree, printed.getvalue())


@functools.cache
def packaged_arm_compiled() -> Packaged:
    """The dev stage for arm64 as `make package ARCH=arm64` makes it here: bytecode by this host's Python of
    the runtime's version, its wheels not imported by the build (no --target-python)."""
    work = _scratch()
    built = package.build("dev", out=work / "dist", keep_chalice_zip=work / "chalice.zip", architecture="arm64")
    return Packaged(built, _unpacked_read_only(built.zip, work / "unpacked"), work / "chalice.zip")


@pytest.fixture(scope="module")
def packaged() -> Packaged:
    return packaged_dev()


@pytest.fixture(scope="module")
def arm() -> PackagedArm:
    return packaged_arm()


def arm64_python() -> list[str]:
    """The runtime's Python for arm64 on this host: Debian's aarch64 CPython under qemu-user."""
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    python = ARM64_SYSROOT / "usr" / "bin" / package.RUNTIME
    # A failure, not a skip, as for x86_64: without it the arm64 zip would go unimported and the suite green.
    assert qemu is not None and python.is_file() and (ARM64_SYSROOT / ".complete").is_file(), (
        f"no qemu-aarch64 or no {package.RUNTIME} in {ARM64_SYSROOT}: run bash tests/harness/install-arm64-python.sh "
        "(make test does)"
    )
    return [qemu, "-L", str(ARM64_SYSROOT), str(python)]


def runtime_python() -> str:
    python = lambda_target.runtime_interpreter(lambda_target.Target(package.RUNTIME))
    # A failure, not a skip: without the runtime's Python the zip would go unimported and the suite green.
    assert python is not None, f"no {package.RUNTIME} interpreter on this host (PATH or pyenv): cannot import the zip"
    return python


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


RUNTIME_CACHE = "import importlib.util, json, sys; print(json.dumps([importlib.util.MAGIC_NUMBER.hex(), sys.implementation.cache_tag]))"


def test_the_zip_carries_unchecked_hash_bytecode_for_the_runtime_for_every_module(packaged: Packaged) -> None:
    python = runtime_python()
    assert packaged.built.interpreter is not None
    magic, tag = json.loads(
        subprocess.run([python, "-I", "-c", RUNTIME_CACHE], capture_output=True, text=True, check=True).stdout
    )
    assert tag == f"cpython-{package.RUNTIME.removeprefix('python').replace('.', '')}"
    sources = [p for p in packaged.tree.rglob("*.py")]
    assert len(sources) > 1000
    missing = [p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").is_file()]
    assert missing == []
    assert packaged.built.compiled == len(sources)
    assert not [p for p in packaged.tree.rglob("*.pyc") if f".{tag}." not in p.name]  # no other Python's bytecode
    for source in (packaged.tree / "app.py", packaged.tree / "kubernetes" / "client" / "api_client.py"):
        header = (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").read_bytes()[:8]
        assert header[:4] == bytes.fromhex(magic)  # the runtime's Python's, not the packaging venv's
        assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked (PEP 552)


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
    runtime_python()
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


DROPPED_FROM_THE_ZIP = (
    "jinja2",
    "markupsafe",
    "bin",
    "wrapt-stubs",
    "aws_lambda_powertools/event_handler",
    "chalicelib/__main__.py",
    "chalicelib/entry/cli.py",
    "chalicelib/entry/commands",
    "chalicelib/entry/output.py",
    "chalicelib/entry/ssooutput.py",
    "chalicelib/entry/accessreport",
    "chalicelib/deploy",
)


def test_what_the_lambda_never_imports_is_not_shipped(packaged: Packaged) -> None:
    tree = packaged.tree
    with zipfile.ZipFile(packaged.chalice_zip) as archive:
        before = archive.namelist()
    for dropped in DROPPED_FROM_THE_ZIP:  # there before trimming, gone after
        assert any(name == dropped or name.startswith(f"{dropped}/") for name in before), dropped
        assert not (tree / dropped).exists(), dropped
    assert not [p for p in tree.glob("*.dist-info") if p.name.lower().startswith(("jinja2-", "markupsafe-"))]
    assert not [p for p in tree.rglob("*") if "swagger" in p.name.lower()]
    assert (tree / "chalicelib" / "entry" / "service.py").is_file() and (
        tree / "chalicelib" / "default-config.yaml"
    ).is_file()
    assert sorted(p.name for p in (tree / "chalicelib" / "entry").iterdir()) == [
        "__init__.py",
        "__pycache__",
        "service.py",
    ]
    assert not (tree / "kubernetes" / "aio").exists()
    assert not [p for p in tree.rglob("tests") if p.is_dir()]
    assert not list(tree.rglob("*.pyi")) and not list(tree.glob("*.data"))
    models = {p.name for p in (tree / "botocore" / "data").iterdir() if p.is_dir()}
    assert models == set(package.BOTOCORE_SERVICES)
    endpoints = json.loads((tree / "botocore" / "data" / "endpoints.json").read_text())
    assert {k for p in endpoints["partitions"] for k in p["services"]} <= set(package.BOTOCORE_SERVICES)
    with zipfile.ZipFile(packaged.chalice_zip) as archive:
        shipped_by_chalice = {name.split("/")[0] for name in archive.namelist()}
    assert {"app.py", "chalicelib", "chalice", "kubernetes", "boto3", "botocore", "jinja2"} <= shipped_by_chalice
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
    runtime_python()
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
        assert properties["Architectures"] == ["x86_64"]
        assert properties["CodeUri"] == "./deployment.zip"
    assert packaged.built.template.parent == packaged.built.zip.parent


def test_make_package_is_the_contract() -> None:
    # Run from `make test`, the outer make's flags would make this one print its directory changes.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    for arguments, expected in (
        (["STAGE=prod"], "-m tools.package build --stage prod --arch x86_64"),
        (
            ["STAGE=prod", "ARCH=arm64", "RUNTIME=python3.12"],
            "-m tools.package build --stage prod --arch arm64 --runtime python3.12",
        ),
    ):
        dry = subprocess.run(
            ["make", "--no-print-directory", "-n", "package", *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        assert dry.stdout.strip().splitlines()[-1].endswith(expected)
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


def test_packaging_refuses_an_unsupported_runtime_or_architecture_and_a_remote_configuration_without_a_copy(
    tmp_path: Path,
) -> None:
    with pytest.raises(package.PackageError, match=r"runtime 'python3\.11' is not one of python3\.12, python3\.13"):
        package.build("dev", out=tmp_path, runtime="python3.11")
    with pytest.raises(package.PackageError, match=r"architecture 'aarch64' is not one of x86_64, arm64"):
        package.build("dev", out=tmp_path, architecture="aarch64")
    assert not list(tmp_path.iterdir())
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


def test_the_lambda_handles_an_event_from_the_trimmed_zip_and_imports_nothing_dropped(packaged: Packaged) -> None:
    """What the build's smoke test proves, asked again here: the handler answers an event, and neither the
    event nor the cluster path imports anything that was dropped."""
    runtime_python()
    script = (
        package.SMOKE_SCRIPT
        + "dropped = ('jinja2', 'markupsafe', 'aws_lambda_powertools.event_handler', 'chalicelib.deploy',"
        + " 'chalicelib.entry.')\n"
        + "print(json.dumps(sorted(m for m in sys.modules if m.startswith(dropped) and m != 'chalicelib.entry.service')))\n"
    )
    arguments = [
        json.dumps(package.SMOKE_IMPORTS),
        json.dumps(sorted(package.BOTOCORE_SERVICES)),
        json.dumps(package.SMOKE_EVENT),
    ]
    python = package.lambda_python(packaged.tree)
    child = subprocess.run(
        [*python, script, *arguments],
        capture_output=True,
        text=True,
        env={**package.lambda_env(packaged.template, packaged.tree), **NO_AWS_FILES},
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    *_, answer, imported_dropped = child.stdout.strip().splitlines()
    assert json.loads(answer)["reason"] == "not-configured"
    assert json.loads(imported_dropped) == []
    assert packaged.built.smoke.endswith("on_iam_event handled an event")


def test_an_arm64_zip_is_built_on_this_host_and_checked_by_its_contents(arm: PackagedArm) -> None:
    target = lambda_target.Target(package.RUNTIME, "arm64")
    template: dict[str, Any] = yaml.safe_load(arm.built.template.read_text())
    for logical in package.FUNCTIONS:
        assert template["Resources"][logical]["Properties"]["Architectures"] == ["arm64"]
        assert template["Resources"][logical]["Properties"]["Runtime"] == package.RUNTIME
    extensions = sorted(p.name for p in arm.tree.rglob("*.so"))
    assert any(name.startswith("_pydantic_core.") for name in extensions) and any(
        name.startswith("_yaml.") for name in extensions
    )
    assert all(f"cpython-{target.cpython}-aarch64-linux-gnu" in name or ".abi3." in name for name in extensions), (
        extensions
    )
    assert lambda_target.foreign_binaries(arm.tree, target) == []
    # The same files are foreign to x86_64 and to another Python: the check can fail.
    assert len(lambda_target.foreign_binaries(arm.tree, lambda_target.Target(package.RUNTIME, "x86_64"))) >= len(
        extensions
    )
    other = "python3.12" if package.RUNTIME != "python3.12" else "python3.13"
    assert lambda_target.foreign_binaries(arm.tree, lambda_target.Target(other, "arm64"))
    assert arm.built.smoke.endswith("cannot load Linux aarch64 wheels")
    # No interpreter of the runtime's version: sources only, and packaging says what that costs.
    assert arm.built.compiled == 0 and arm.built.interpreter is None
    assert not list(arm.tree.rglob("*.pyc")) and not list(arm.tree.rglob("__pycache__"))
    assert "the zip carries no bytecode" in arm.printed and "cold start" in arm.printed
    assert any("sources only" in line for line in arm.built.summary())
    assert not (arm.tree / "jinja2").exists() and not (arm.tree / "chalicelib" / "deploy").exists()


def test_an_x86_64_extension_in_the_tree_is_refused_for_arm64(packaged: Packaged, tmp_path: Path) -> None:
    [extension] = list((packaged.tree / "yaml").glob("_yaml.*.so"))
    tree = tmp_path / "tree"
    (tree / "yaml").mkdir(parents=True)
    shutil.copyfile(extension, tree / "yaml" / "_yaml.cpython-313-aarch64-linux-gnu.so")  # a name that lies
    problems = lambda_target.foreign_binaries(tree, lambda_target.Target("python3.13", "arm64"))
    assert problems == ["yaml/_yaml.cpython-313-aarch64-linux-gnu.so: an ELF for machine 0x3e, not aarch64 (0xb7)"]
    with pytest.raises(package.PackageError, match=r"do not load on python3\.13/arm64"):
        package.smoke_test(tree, packaged.template, lambda_target.Target("python3.13", "arm64"), None)


def test_the_arm64_zip_imports_and_handles_an_event_on_aarch64_under_qemu(tmp_path: Path) -> None:
    """The build's smoke test, run with Debian's aarch64 CPython of the runtime's version under qemu-user on
    the unpacked, read-only zip (-I -S -B): the handlers and the cluster path import (pydantic-core, PyYAML's
    _yaml and the other aarch64 extensions load), a client for each kept model, and the handler answers."""
    command = arm64_python()
    arm = packaged_arm_compiled()
    target = lambda_target.Target(package.RUNTIME, "arm64")
    assert arm.built.interpreter is not None and arm.built.compiled > 1000  # loaded from the shipped bytecode
    assert arm.built.smoke.endswith("cannot load Linux aarch64 wheels")  # the build alone did not import it
    proven = package.smoke_test(arm.tree, arm.template, target, None, command)
    assert proven.endswith(f"imported by {' '.join(command)} (aarch64) and on_iam_event handled an event"), proven
    # It can fail: an aarch64 extension module of another name in pydantic-core's place passes the structural
    # check (machine and CPython tag are right) and only the import finds it broken.
    broken = tmp_path / "broken"
    shutil.copytree(arm.tree, broken, copy_function=shutil.copyfile)
    try:
        (broken / "pydantic_core").chmod(0o755)
        [core] = (broken / "pydantic_core").glob("_pydantic_core.*.so")
        [other] = (broken / "yaml").glob("_yaml.*.so")
        shutil.copyfile(other, core)
        assert lambda_target.foreign_binaries(broken, target) == []
        with pytest.raises(
            package.PackageError, match=r"does not import as Lambda runs it(.|\n)*PyInit__pydantic_core"
        ):
            package.smoke_test(broken, arm.template, target, None, command)
    finally:
        _writable(broken)


def test_the_smoke_test_refuses_an_interpreter_that_is_not_the_targets(packaged: Packaged) -> None:
    """The interpreter says its machine and version: the x86_64 zip imported by this host's Python is no proof
    for arm64, whatever the command given."""
    python = runtime_python()
    with pytest.raises(
        package.PackageError, match=rf'is not Python {re.escape(package.RUNTIME[6:])} on aarch64: \["x86_64"'
    ):
        package.import_and_handle(
            packaged.tree, packaged.template, lambda_target.Target(package.RUNTIME, "arm64"), [python]
        )
