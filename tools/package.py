"""``make package STAGE=dev|prod [ARCH=x86_64|arm64] [RUNTIME=python3.12|python3.13]``: one stage's
deployable artefacts, in ``dist/<stage>/``, from any host (tools/lambda_target.py: the target, not the host).

- ``template.yaml``: what ``chalice package`` makes with infra/cloudformation/chalice-merge.yaml merged in,
  the ``Stage`` parameter pinned to the packaged stage (the ``Instance`` parameter's default too), the runtime
  and the architecture pinned to the target's, the schedule's alarms (``SCHEDULE_ALARMS``) given the
  schedule's period, YAML aliases flattened (CloudFormation rejects them), cfn-lint clean. ``CodeUri`` is
  ``./deployment.zip``.
- ``deployment.zip``: the app (Chalice's zip, packaged without dependencies) and requirements.txt as pip
  resolves it for the target (manylinux wheels of the runtime's CPython and the architecture), without
  what the Lambda never imports or reads (``DROPPED``: the CLI, report and deploy code, the report's
  template engine, Powertools' REST router with its swagger UI, test suites, the models of AWS services it
  never calls), with bytecode compiled by the runtime's Python as unchecked-hash ``.pyc`` (valid whatever
  the files' times after unzipping: Lambda's /var/task is read-only, so a zip without bytecode compiles
  what it imports on every cold start) when this host has that Python, sources only otherwise (said so),
  entries in a fixed order and time.
- The smoke test: every compiled file is for the target (ELF machine, CPython tag, wheel tags); when this
  host is Linux on the target's machine and has the runtime's Python, or ``--target-python`` gives a command
  running the target's Python here (an emulator: qemu-aarch64 and an aarch64 sysroot for arm64 on x86_64),
  the zip is imported as Lambda runs it and its handler handles an event.

Nothing is built until the stage's deploy settings agree with the configuration it deploys
(``chalicelib.deploy.checks``: the policy's cluster ARNs and partition, VPC, timeouts).
``python -m tools.package policy --stage S --write`` renders the stage's policy from its configuration.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chalicelib.config import Config, ConfigError, load_config
from chalicelib.config.settings import is_remote, resolve_source, schedule_minutes
from chalicelib.deploy import checks as deploy_checks
from chalicelib.model.ownership import ENTRY_INSTANCE_TAG
from tools.lambda_target import (
    ARCHITECTURES,
    DEFAULT_RUNTIME,
    RUNTIMES,
    Target,
    TargetError,
    foreign_binaries,
    install_dependencies,
    runtime_interpreter,
)

ROOT = Path(__file__).resolve().parents[1]
MERGE_TEMPLATE = Path("infra") / "cloudformation" / "chalice-merge.yaml"
# The Lambda runtime by default (tools/lambda_target.py says why): Chalice would take the packaging
# interpreter's version, and .pyc files are only read by the Python minor version that wrote them.
RUNTIME = DEFAULT_RUNTIME
REQUIREMENTS = "requirements.txt"
FUNCTIONS = {
    "OnIamEvent": "on_iam_event",
    "ReconcileAll": "reconcile_all",
    "OnIamEvents": "on_iam_events",
    "ReconcileCluster": "reconcile_cluster",
}
# Alarms whose period is the schedule's (read when packaging, as app.py's Rate is): two periods without
# a completed full run, or two failed scheduled runs in a row.
SCHEDULE_ALARMS = ("FullRunHeartbeatAlarm", "ReconcileAllErrorsAlarm")
TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the path compiled into tracebacks

# The AWS services whose botocore models the Lambda loads; every other model (~450 of them, most of the
# zip) is dropped. tests/integration/test_package.py holds this to the clients chalicelib creates.
BOTOCORE_SERVICES = {
    "eks": "DescribeCluster and access entries (chalicelib/adapters)",
    "iam": "the IAM snapshot (chalicelib/adapters/iam.py)",
    "sts": "the EKS token and the function's own ARN (chalicelib/adapters)",
    "s3": "a configuration read from s3:// (chalicelib/adapters/config_source.py)",
    "ssm": "a configuration read from ssm: (Powertools Parameters)",
    "xray": "the X-Ray SDK's sampler (aws_xray_sdk, through Powertools Tracer)",
    "sqs": "work items sent to the work queue (chalicelib/adapters/queue.py)",
    "identitystore": "Identity Center groups and their members (chalicelib/adapters/identity_store.py)",
}
# Never imported or read by the Lambda: paths from the zip's root, and names dropped wherever they occur.
DROPPED = {
    "kubernetes/aio": "the client's asyncio copy (kubernetes 36 and later): the service is synchronous",
    "kubernetes/test": "the client's own tests",
    "kubernetes/e2e_test": "the client's own tests",
    "wrapt-stubs": "type stubs",
    "bin": "console scripts pip installs beside the packages",
    "aws_lambda_powertools/event_handler": "Powertools' REST/AppSync router and its swagger UI: Chalice routes",
    "chalicelib/__main__.py": "the CLI (python -m chalicelib): in the wheel, not the zip",
    "chalicelib/deploy": "deploy-time checks, the policy and RBAC manifests (validate --deploy, rbac, tools/)",
}
# chalicelib/entry holds the handlers' entry (service.py) and the CLI's (cli.py, commands/, output.py,
# ssooutput.py, accessreport/ with its templates): only the first is shipped.
LAMBDA_ENTRY = {"__init__.py", "service.py"}
# Distributions the report alone needs (Jinja2): their packages and their .dist-info.
DROPPED_DISTRIBUTIONS = {"jinja2": "the access report's template engine", "markupsafe": "Jinja2's escaping"}
DROPPED_NAMES = {
    "tests": "dependencies' own test suites",
    "__pycache__": "bytecode of whatever Python wrote it: compiled again for the runtime",
}
DROPPED_SUFFIXES = {".pyi": "type stubs", ".data": "install-time scripts (a wheel's .data directory)"}
# The handlers' imports, and what the first relevant event imports (chalicelib.run.runner loads the adapters;
# run.reconcile each identity backend's engine, when a cluster uses it).
SMOKE_IMPORTS = (
    "app",
    "chalicelib.entry.service",
    "chalicelib.run.runner",
    "chalicelib.engine.awsauth.writer",
    "chalicelib.engine.accessentries.backend",
    "chalicelib.adapters.shell",
    "chalicelib.adapters.queue",
)


class PackageError(Exception):
    """Packaging stopped; the message says why and what to do."""


@dataclass
class Built:
    stage: str
    directory: Path
    zip: Path
    template: Path
    chalice_zip_bytes: int  # before: the app and every dependency, nothing dropped, no bytecode
    zip_bytes: int
    compiled: int
    dropped: list[str] = field(default_factory=list)
    target: Target = field(default_factory=Target)
    interpreter: str | None = None  # the runtime's Python that compiled and imported the zip, if any
    smoke: str = ""

    def summary(self) -> list[str]:
        mb = 1024 * 1024
        bytecode = (
            f"{self.compiled} modules compiled by {self.interpreter} (unchecked-hash .pyc)"
            if self.interpreter
            else f"sources only: {cold_start_note(self.target)}"
        )
        return [
            f"{self.zip}: {self.zip_bytes / mb:.1f} MiB (before dropping what the Lambda never imports: "
            f"{self.chalice_zip_bytes / mb:.1f} MiB), for {self.target.runtime} on {self.target.architecture}",
            f"  {bytecode}",
            f"  smoke test: {self.smoke}",
            f"{self.template}: stage {self.stage}, runtime {self.target.runtime}, architecture "
            f"{self.target.architecture}, aliases flattened, cfn-lint clean",
            *(f"  dropped {item}" for item in self.dropped),
        ]


def cold_start_note(target: Target) -> str:
    return (
        f"no Python {target.version} on this host, so the zip carries no bytecode; Lambda's /var/task is read-only, "
        "so every cold start compiles each module it imports (~2.3 s instead of ~0.5 s for the first event's "
        f"imports, docs/deployment.md). Package on a host with python{target.version} to ship bytecode."
    )


def stage_and_config(project: Path, stage_name: str, config_file: str | None) -> tuple[deploy_checks.Stage, Config]:
    chalice_config = json.loads((project / deploy_checks.CHALICE_DIR / "config.json").read_text())
    try:
        stage = deploy_checks.read_stage(chalice_config, stage_name)
    except KeyError:
        known = ", ".join(sorted(chalice_config.get("stages", {})))
        raise PackageError(f"no stage {stage_name!r} in .chalice/config.json (stages: {known})") from None
    source = config_file or resolve_source(stage.config_source, project)
    if is_remote(source):
        raise PackageError(
            f"stage {stage_name} reads its configuration from {source}: give a copy of that document with "
            "--config FILE (make package ... CONFIG=FILE), so that the policy is checked against its clusters"
        )
    try:
        return stage, load_config(source)
    except ConfigError as err:
        raise PackageError(f"invalid configuration:\n{err}") from err


def check(project: Path, stage_name: str, config: Config) -> None:
    problems = deploy_checks.project_problems(project, stage_name, config)
    if problems:
        fix = f"python -m tools.package policy --stage {stage_name} --write"
        listed = "\n".join(f"  {p}" for p in problems)
        raise PackageError(f"stage {stage_name} does not match its configuration:\n{listed}\n(policy: `{fix}`)")


def render_policy(project: Path, stage_name: str, config_file: str | None) -> tuple[Path, str]:
    """The stage's policy file and its text, generated statements from the configuration and the
    operator's own statements kept."""
    stage, config = stage_and_config(project, stage_name, config_file)
    path = project / deploy_checks.CHALICE_DIR / stage.policy_file
    existing = json.loads(path.read_text()) if path.is_file() else None
    merged = deploy_checks.merged_policy(deploy_checks.render_policy(stage, config), existing)
    return path, deploy_checks.render_json(merged)


def app_project(project: Path, scratch: Path) -> Path:
    """The project as Chalice should see it: the app and its configuration, no requirements (pip resolves
    them for the target, not Chalice for the host)."""
    staged = scratch / "app"
    staged.mkdir()
    for name in ("app.py", "chalicelib"):
        (staged / name).symlink_to((project / name).resolve())
    ignore = shutil.ignore_patterns("deployments", "venv")
    shutil.copytree(project / deploy_checks.CHALICE_DIR, staged / deploy_checks.CHALICE_DIR, ignore=ignore)
    (staged / REQUIREMENTS).write_text("")
    return staged


def run_chalice(project: Path, stage: str, out: Path, merge_template: Path) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice) if chalice.exists() else "chalice", "--project-dir", str(project), "package"]
    command += ["--stage", stage, "--merge-template", str(merge_template), str(out)]
    # Chalice insists on a region; nothing it writes depends on it.
    env = {**os.environ}
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise PackageError(f"chalice package failed:\n{done.stdout}{done.stderr}")


def finish_template(template: dict[str, Any], stage: str, target: Target | None = None) -> dict[str, Any]:
    """The packaged stage is the only Stage this template accepts; the runtime and architecture are the
    target's (the wheels in the zip are built for them)."""
    target = target or Target()
    description = f"eks-iam-sync, stage {stage} (tools/package.py: make package STAGE={stage})"
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Description": "", **template}
    template["Description"] = description
    template["Parameters"]["Stage"] = {
        "Type": "String",
        "Default": stage,
        "AllowedValues": [stage],
        "Description": "The Chalice stage this template was packaged for (names the roles and log groups).",
    }
    # The instance defaults to the stage (a stack parameter: a second install of the stage, in this region
    # or on the same clusters, is given its own name).
    if "Instance" in template["Parameters"]:
        template["Parameters"]["Instance"] = {**template["Parameters"]["Instance"], "Default": stage}
        for condition in role_conditions(template):
            for key in [k for k in condition if k.endswith(f"/{ENTRY_INSTANCE_TAG}")]:
                condition[key] = {"Ref": "Instance"}  # the stage's policy names the stage: the stack's instance
    for logical in FUNCTIONS:
        template["Resources"][logical]["Properties"]["Runtime"] = target.runtime
        template["Resources"][logical]["Properties"]["Architectures"] = [target.architecture]
    for logical in SCHEDULE_ALARMS:
        template["Resources"][logical]["Properties"]["Period"] = schedule_minutes() * 60
    return template


def role_conditions(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every condition operator's block (key -> values) of the roles' inline policies."""
    return [
        keys
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::IAM::Role"
        for policy in resource.get("Properties", {}).get("Policies", [])
        for statement in policy.get("PolicyDocument", {}).get("Statement", [])
        for keys in statement.get("Condition", {}).values()
    ]


class _FlatDumper(yaml.SafeDumper):
    """Writes every repeated node out in full: CloudFormation rejects YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_template(template: Mapping[str, Any]) -> str:
    text: str = yaml.dump(dict(template), Dumper=_FlatDumper, sort_keys=False, default_flow_style=False, width=120)
    return text


def slim(tree: Path) -> list[str]:
    """Removes what the Lambda never imports or reads; returns what went, with why."""
    dropped: list[str] = []
    for relative, why in DROPPED.items():
        if (tree / relative).is_dir():
            shutil.rmtree(tree / relative)
            dropped.append(f"{relative}/: {why}")
        elif (tree / relative).exists():
            (tree / relative).unlink()
            dropped.append(f"{relative}: {why}")
    dropped += drop_cli_entry(tree)
    dropped += drop_distributions(tree)
    for path in sorted(tree.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        if path.is_dir() and _dropped_directory(path, nested=path.parent != tree):
            shutil.rmtree(path)
        elif path.is_file() and path.suffix == ".pyi":
            path.unlink()
    dropped += [f"*/{name}/: {why}" for name, why in DROPPED_NAMES.items()]
    dropped += [f"*{suffix}: {why}" for suffix, why in DROPPED_SUFFIXES.items()]
    dropped.append(trim_botocore(tree))
    return dropped


def drop_cli_entry(tree: Path) -> list[str]:
    """Everything of chalicelib/entry but ``LAMBDA_ENTRY``: the CLI, its commands and output, the report."""
    entry = tree / "chalicelib" / "entry"
    dropped = []
    for path in sorted(entry.iterdir()) if entry.is_dir() else ():
        if path.name in LAMBDA_ENTRY or path.name == "__pycache__":
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        dropped.append(f"chalicelib/entry/{path.name}{'/' if path.suffix != '.py' else ''}: the CLI's (in the wheel)")
    return dropped


def drop_distributions(tree: Path) -> list[str]:
    """``DROPPED_DISTRIBUTIONS``' import packages and metadata (``jinja2/``, ``jinja2-3.1.6.dist-info/``)."""
    dropped = []
    for path in sorted(tree.iterdir()):
        name = path.name.lower()
        if name in DROPPED_DISTRIBUTIONS or (
            name.endswith(".dist-info") and name.split("-")[0] in DROPPED_DISTRIBUTIONS
        ):
            shutil.rmtree(path)
            dropped.append(f"{path.name}/: {DROPPED_DISTRIBUTIONS[name.split('-')[0]]} (the report only)")
    return dropped


def _dropped_directory(path: Path, nested: bool) -> bool:
    """__pycache__ anywhere; a test suite inside a package; a wheel's .data directory at the top."""
    if path.name == "__pycache__":
        return True
    return path.name in DROPPED_NAMES if nested else path.suffix == ".data"


def trim_botocore(tree: Path) -> str:
    """Keeps the models of ``BOTOCORE_SERVICES`` only, in botocore's data, boto3's resources and the
    endpoints table (read whole by every new botocore session: 1.2 MB of JSON, ~20 ms each)."""
    data = tree / "botocore" / "data"
    if not data.is_dir():
        raise PackageError("the zip has no botocore/data: is boto3 still in requirements.txt?")
    missing = [s for s in BOTOCORE_SERVICES if not (data / s).is_dir()]
    if missing:
        raise PackageError(f"botocore has no model for {', '.join(missing)}")
    removed = 0
    for models in (data, tree / "boto3" / "data"):
        for service in models.iterdir() if models.is_dir() else ():
            if service.is_dir() and service.name not in BOTOCORE_SERVICES:
                shutil.rmtree(service)
                removed += 1
    prefixes = {_endpoint_prefix(data / service) for service in BOTOCORE_SERVICES}
    endpoints_file = data / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text())
    for partition in endpoints["partitions"]:
        partition["services"] = {k: v for k, v in partition["services"].items() if k in prefixes}
    endpoints_file.write_text(json.dumps(endpoints, separators=(",", ":")))
    return f"{removed} AWS service models and their endpoints: only {', '.join(sorted(BOTOCORE_SERVICES))} are called"


def _endpoint_prefix(service: Path) -> str:
    [version] = sorted(service.iterdir())[-1:]
    model = version / "service-2.json"
    text = model.read_text() if model.exists() else gzip.decompress(model.with_suffix(".json.gz").read_bytes()).decode()
    prefix: str = json.loads(text)["metadata"]["endpointPrefix"]
    return prefix


def compile_tree(tree: Path, python: str) -> int:
    """Bytecode by the runtime's Python, next to the sources, valid whatever the files' times (unchecked-hash)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # no -O, no pycache prefix
    command = [python, "-m", "compileall", "-q", "-j", "0", "-d", TASK_ROOT]
    done = subprocess.run(
        [*command, "--invalidation-mode", "unchecked-hash", str(tree)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        # A file no Python 3 can compile is one nobody imports; say which, and go on.
        failed = [line for line in done.stdout.splitlines() if line.startswith("***")]
        print(f"warning: not compiled: {'; '.join(failed) or done.stdout[-500:]}", file=sys.stderr)
    return sum(1 for _ in tree.rglob("__pycache__/*.pyc"))


def template_runtime(template: Mapping[str, Any], logical: str = "OnIamEvent") -> str:
    runtime: str = template["Resources"][logical]["Properties"]["Runtime"]
    return runtime


def lambda_env(template: Mapping[str, Any], tree: Path, logical: str = "OnIamEvent") -> dict[str, str]:
    """What Lambda gives a function's process: its variables from the template, the task root, a name
    (Powertools and the X-Ray SDK behave as in Lambda: tracing on, no sampler client)."""
    properties = template["Resources"][logical]["Properties"]
    variables = properties.get("Environment", {}).get("Variables", {})
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **{k: _resolved(v, template.get("Parameters", {})) for k, v in variables.items()},
        "LAMBDA_TASK_ROOT": str(tree),
        "AWS_LAMBDA_FUNCTION_NAME": f"eks-iam-sync-{FUNCTIONS[logical]}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 512)),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{properties['Runtime']}",
        "AWS_REGION": "us-east-2",
        "AWS_DEFAULT_REGION": "us-east-2",
        "_HANDLER": str(properties.get("Handler", "")),
    }


def _resolved(value: Any, parameters: Mapping[str, Any]) -> str:
    """A variable as the stack would set it when it is a parameter's default (the instance); other
    references as written (nothing the smoke test's ignored event reads)."""
    if isinstance(value, Mapping) and set(value) == {"Ref"} and "Default" in parameters.get(value["Ref"], {}):
        return str(parameters[value["Ref"]]["Default"])
    return str(value)


def lambda_python(tree: Path, python: str | Sequence[str] | None = None) -> list[str]:
    """A plain interpreter of the runtime's version (default: ``RUNTIME``'s on this host; or a command that
    runs one, such as ``["qemu-aarch64", "-L", sysroot, f"{sysroot}/usr/bin/python3.13"]``) as Lambda runs
    one on the zip: no site-packages but the zip, no bytecode written."""
    python = python or runtime_interpreter(Target(RUNTIME))
    if python is None:
        raise PackageError(f"no {RUNTIME} interpreter on this host to run the zip with")
    command = [python] if isinstance(python, str) else list(python)
    return [*command, "-I", "-S", "-B", "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); exec(sys.argv[1])"]


# An EventBridge IAM event for a group no rule names: the handler reads the configuration, finds nothing to
# do, and answers without a network call (what most events in an account are).
SMOKE_EVENT = {
    "version": "0",
    "id": "00000000-0000-0000-0000-000000000000",
    "detail-type": "AWS API Call via CloudTrail",
    "source": "aws.iam",
    "account": "123456789012",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "eventSource": "iam.amazonaws.com",
        "eventName": "AddUserToGroup",
        "eventTime": "2026-01-01T00:00:00Z",
        "eventID": "00000000-0000-0000-0000-000000000001",
        "awsRegion": "us-east-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/smoke", "accountId": "123456789012"},
        "requestParameters": {"groupName": "eks-iam-sync-smoke-test-unmapped", "userName": "smoke"},
        "recipientAccountId": "123456789012",
    },
}
SMOKE_SCRIPT = """
import importlib, json, platform, sys
print(json.dumps([platform.machine(), '%d.%d' % sys.version_info[:2]]))
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
import boto3
for service in json.loads(sys.argv[3]):
    boto3.client(service, region_name='us-east-2', aws_access_key_id='x', aws_secret_access_key='x')
class Context:
    function_name = 'eks-iam-sync-smoke'
    aws_request_id = 'smoke'
    invoked_function_arn = 'arn:aws:lambda:us-east-2:123456789012:function:eks-iam-sync-smoke'
    memory_limit_in_mb = 512
    def get_remaining_time_in_millis(self):
        return 60000
import app
result = app.on_iam_event(json.loads(sys.argv[4]), Context())
print(json.dumps(result))
"""


def smoke_test(
    tree: Path,
    template: Mapping[str, Any],
    target: Target,
    python: str | None,
    target_python: Sequence[str] | None = None,
) -> str:
    """Every compiled file is for the target. When this host can run the target's wheels with the runtime's
    Python (``python``), or ``target_python`` is a command that runs the target's Python (an emulator's, such
    as ``["qemu-aarch64", "-L", sysroot, f"{sysroot}/usr/bin/python3.13"]``): the unpacked zip imports its
    handlers and the cluster path, builds a client for each kept model and its handler handles an event, in
    an interpreter that says it is the target's machine and version. Returns what was proven."""
    problems = foreign_binaries(tree, target)
    if problems:
        listed = "\n".join(f"  {p}" for p in problems[:20])
        raise PackageError(f"the zip holds files that do not load on {target.runtime}/{target.architecture}:\n{listed}")
    checked = f"every compiled file is for {target.machine} and cp{target.cpython}"
    host = f"{platform.system()} {platform.machine()}"
    if target_python:
        command = list(target_python)
    elif not target.host_runs_it():
        return f"{checked}; not imported: this host ({host}) cannot load Linux {target.machine} wheels"
    elif python is None:
        return f"{checked}; not imported: no Python {target.version} on this host"
    else:
        command = [python]
    imported = import_and_handle(tree, template, target, command)
    return f"{checked}; imported by {imported} and on_iam_event handled an event"


def import_and_handle(tree: Path, template: Mapping[str, Any], target: Target, command: Sequence[str]) -> str:
    """``SMOKE_SCRIPT`` in the unpacked zip as Lambda runs it, with ``command`` as the interpreter; returns
    which interpreter, on which machine, it was."""
    arguments = [json.dumps(SMOKE_IMPORTS), json.dumps(sorted(BOTOCORE_SERVICES)), json.dumps(SMOKE_EVENT)]
    env = {**lambda_env(template, tree), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    done = subprocess.run(
        [*lambda_python(tree, command), SMOKE_SCRIPT, *arguments], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise PackageError(f"the packaged code does not import as Lambda runs it:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    if lines[:1] != [json.dumps([target.machine, target.version])]:
        ran = lines[0] if lines else done.stderr[-2000:]
        raise PackageError(f"{' '.join(command)} is not Python {target.version} on {target.machine}: {ran}")
    answer = lines[-1]
    if '"not-configured"' not in answer:
        raise PackageError(
            f"the packaged handler did not handle the smoke test's event: {answer or done.stderr[-2000:]}"
        )
    return f"{' '.join(command)} ({target.machine})"


def write_zip(tree: Path, target: Path) -> None:
    """Entries sorted, at one fixed time, readable by all (Lambda's user), executable bits kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            name = path.relative_to(tree).as_posix()
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | (path.stat().st_mode & 0o777) | 0o444) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=6)


def lint(template: Path) -> None:
    found = Path(sys.executable).with_name("cfn-lint")
    cfn_lint = str(found) if found.exists() else shutil.which("cfn-lint")
    if cfn_lint is None:
        raise PackageError("cfn-lint is not installed (pip install -r requirements-dev.txt)")
    done = subprocess.run([cfn_lint, str(template)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackageError(f"cfn-lint found problems in {template}:\n{done.stdout}{done.stderr}")


def build(
    stage: str,
    out: Path | None = None,
    project: Path = ROOT,
    config_file: str | None = None,
    keep_chalice_zip: Path | None = None,
    template_only: bool = False,
    runtime: str = RUNTIME,
    architecture: str = "x86_64",
    target_python: Sequence[str] | None = None,
) -> Built:
    """Checks the stage against its configuration, runs Chalice, and writes the template and (unless
    ``template_only``) the zip for ``runtime`` on ``architecture`` into ``out`` (default dist/<stage>).
    ``keep_chalice_zip`` receives the zip before anything is dropped or compiled. ``target_python``: a
    command that runs the target's Python here (an emulator's), for the smoke test's import."""
    try:
        target = Target(runtime, architecture)
    except TargetError as err:
        raise PackageError(str(err)) from None
    _, config = stage_and_config(project, stage, config_file)
    check(project, stage, config)
    directory = out or project / "dist" / stage
    with tempfile.TemporaryDirectory(prefix="eks-iam-sync-package-") as scratch:
        chalice_out, tree = Path(scratch) / "chalice", Path(scratch) / "tree"
        run_chalice(app_project(project, Path(scratch)), stage, chalice_out, project / MERGE_TEMPLATE)
        template = finish_template(yaml.safe_load((chalice_out / "sam.yaml").read_text()), stage, target)
        directory.mkdir(parents=True, exist_ok=True)
        zip_path, template_path = directory / "deployment.zip", directory / "template.yaml"
        template_path.write_text(dump_template(template))
        lint(template_path)
        if template_only:
            return Built(stage, directory, zip_path, template_path, 0, 0, 0, target=target)
        with zipfile.ZipFile(chalice_out / "deployment.zip") as archive:
            archive.extractall(tree)
        try:
            install_dependencies(project / REQUIREMENTS, tree, target)
        except TargetError as err:
            raise PackageError(str(err)) from None
        untrimmed = keep_chalice_zip or Path(scratch) / "untrimmed.zip"
        write_zip(tree, untrimmed)
        dropped = slim(tree)
        python = runtime_interpreter(target)
        if python is None:
            print(f"note: {cold_start_note(target)}", file=sys.stderr)
        compiled = compile_tree(tree, python) if python else 0
        smoke = smoke_test(tree, template, target, python, target_python)
        write_zip(tree, zip_path)
        return Built(
            stage=stage,
            directory=directory,
            zip=zip_path,
            template=template_path,
            chalice_zip_bytes=untrimmed.stat().st_size,
            zip_bytes=zip_path.stat().st_size,
            compiled=compiled,
            dropped=dropped,
            target=target,
            interpreter=python,
            smoke=smoke,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.package", description="One stage's deployable artefacts.")
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="write dist/<stage>/deployment.zip and template.yaml")
    policy_command = commands.add_parser("policy", help="render .chalice/policy-<stage>.json from the configuration")
    for sub in (build_command, policy_command):
        sub.add_argument("--stage", required=True)
        sub.add_argument("--config", help="the configuration (default: the stage's EKS_IAM_SYNC_CONFIG)")
        sub.add_argument("--project-dir", type=Path, default=ROOT)
    build_command.add_argument("--out", type=Path, help="default: dist/<stage>")
    build_command.add_argument(
        "--arch", choices=sorted(ARCHITECTURES), default="x86_64", help="the functions' architecture"
    )
    build_command.add_argument(
        "--runtime", choices=RUNTIMES, default=RUNTIME, help=f"the Lambda runtime (default {RUNTIME})"
    )
    build_command.add_argument(
        "--target-python",
        type=shlex.split,
        help="a command running the target's Python on this host, to import the zip with (arm64 on x86_64: "
        "'qemu-aarch64 -L SYSROOT SYSROOT/usr/bin/python3.13', tests/harness/install-arm64-python.sh)",
    )
    policy_command.add_argument("--write", action="store_true", help="write the file instead of printing it")
    args = parser.parse_args(argv)
    try:
        if args.command == "policy":
            path, text = render_policy(args.project_dir, args.stage, args.config)
            if args.write:
                path.write_text(text)
                print(f"wrote {path}", file=sys.stderr)
            else:
                print(text, end="")
            return 0
        built = build(
            args.stage,
            args.out,
            args.project_dir,
            args.config,
            runtime=args.runtime,
            architecture=args.arch,
            target_python=args.target_python,
        )
    except PackageError as err:
        print(f"package: {err}", file=sys.stderr)
        return 1
    print("\n".join(built.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
