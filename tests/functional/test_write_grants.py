"""Every write the function is granted is one an adapter makes, and every write an adapter makes is
granted (issue 22, item 3), for each configuration shape that changes the grants (SHAPES).

Both sides are derived, not listed by hand:

- **Granted:** every mutating action the function's IAM policy allows (the stage policy
  ``deploy.checks.render_policy`` renders from the configuration, and the template's policies on the
  function roles) and every mutating verb the RBAC manifest ``deploy.rbac_manifest`` renders grants
  the service's group (only the roles bound to it).
- **Made:** the adapter methods the deployed functions call while a scenario runs through the queued
  path on the fakes (which adapter method each port operation is), and, for each method, the SDK calls
  in its source (``chalicelib/adapters``, read as an AST): a boto3 client method is the botocore
  operation of that name (its IAM action: the service's signing name and the operation), a kubernetes
  client method is the verb and resource its generated ``*_with_http_info`` sends (path and HTTP method),
  a botocore credential fetcher the client calls in its own source (AssumeRole). An AWS action is a write
  unless its name says it reads (IAM's Write access level: sts:AssumeRole is one).

The writes the Lambda platform makes with the function's role (its logs, traces, VPC interfaces, the
SQS event source mapping, the failure destination) are no adapter call: they are named below, each by
the statement that grants it, and must each still be granted. A write only ``eks-iam-sync uninstall``
makes (the operator's) must be granted to nobody here.
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import botocore.credentials
import botocore.session
import kubernetes.client
import pytest
from botocore import xform_name

from chalicelib.config import Config, load_config
from chalicelib.deploy.checks import read_stage, render_policy
from chalicelib.deploy.rbac_manifest import manifest_documents
from chalicelib.entry.cli import main
from chalicelib.model.ownership import AWS_AUTH_NAME, AWS_AUTH_NAMESPACE, SERVICE_GROUP
from tests.cfn import load
from tests.functional.fakes import GROUP, KUBERNETES_GROUP, PROJECTS, SEED, FakePort, FakeShell
from tests.functional.queued_lambdas import QueuedLambdas, lambdas

__all__ = ["lambdas"]  # the queued path's fixture: the functions as deployed

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "chalicelib" / "adapters"
MERGE_TEMPLATE = ROOT / "infra" / "cloudformation" / "chalice-merge.yaml"
FUNCTION_ROLES = {"OnIamEventRole", "ReconcileAllRole"}
A, B = PROJECTS

# The configuration shapes whose grants differ: aws-auth only, access entries only, both, and a cluster in
# another account (reached as its role: the function is granted sts:AssumeRole, that role the cluster's
# EKS writes, so that cluster is an aws-auth one here: its writes are Kubernetes', granted by the manifest).
OTHER_ACCOUNT_ROLE = "arn:aws:iam::222222222222:role/platform/eks-iam-sync-access"
SHAPES: dict[str, dict[str, dict[str, str]]] = {
    "aws-auth only": {"fn-east": {"backend": "configMap"}, "fn-west": {"backend": "configMap"}},
    "access entries only": {"fn-east": {"backend": "accessEntries"}, "fn-west": {"backend": "accessEntries"}},
    "both": {"fn-east": {"backend": "configMap"}, "fn-west": {"backend": "auto"}},
    "across accounts": {
        "fn-east": {"backend": "accessEntries"},
        "fn-west": {"backend": "configMap", "roleArn": OTHER_ACCOUNT_ROLE},
    },
}
MODES = {"accessEntries": "API", "auto": "API_AND_CONFIG_MAP"}  # what DescribeCluster answers for the fakes

# Kubernetes verbs that change something (get, list, watch do not). ``bind`` and ``escalate`` on a role
# are what the API server's escalation check asks of whoever writes a binding to it.
MUTATING_VERBS = {"create", "update", "patch", "delete", "deletecollection", "bind", "escalate", "impersonate"}
RBAC = "rbac.authorization.k8s.io"
# An AWS action is a read when its name says so (IAM's Read and List access levels).
READ_PREFIXES = ("Get", "List", "Describe", "Is", "Head", "Search", "Lookup", "BatchGet")

# Written by the Lambda platform with the function's role, never by the code: (statement, action) -> who.
PLATFORM: dict[tuple[str, str], str] = {
    **{
        ("WriteOwnLogs", f"logs:{a}"): "Lambda's runtime writes the function's logs (chalice deploy: its group too)"
        for a in ("CreateLogGroup", "CreateLogStream", "PutLogEvents")
    },
    **{
        ("Trace", f"xray:{a}"): "Lambda's X-Ray integration sends the traces"
        for a in ("PutTraceSegments", "PutTelemetryRecords")
    },
    **{
        ("UseVpcNetworkInterfaces", f"ec2:{a}"): "Lambda attaches the function to the stage's VPC"
        for a in (
            "CreateNetworkInterface",
            "DeleteNetworkInterface",
            "AssignPrivateIpAddresses",
            "UnassignPrivateIpAddresses",
        )
    },
    **{
        (sid, f"sqs:{a}"): "Lambda's SQS event source mapping, as the consuming function"
        for sid in ("ConsumeEventQueue", "ConsumeWorkQueue")
        for a in ("ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility")
    },
    (
        "send-failed-invocations-to-dead-letters",
        "sqs:SendMessage",
    ): "Lambda's on-failure destination of async invocations",
}


def write(kind: str, action: str) -> str:
    return f"{kind} {action}"


# --- made: the adapters' SDK calls, by method ------------------------------------------------------


@cache
def kube_write(method: str) -> str | None:
    """``create_namespaced_role_binding`` -> ``k8s create rbac.authorization.k8s.io/rolebindings``, from the
    path and HTTP method the kubernetes client sends; None for a read or a name no API class has."""
    for api in _kube_apis():
        found = getattr(api, f"{method}_with_http_info", None)
        if found is None:
            continue
        match = re.search(r"call_api\(\s*'([^']+)',\s*'([A-Z]+)'", inspect.getsource(found))
        assert match, f"{api.__name__}.{method}: no call_api(path, method) in its source"
        path, http = match.groups()
        group, resource, named = _resource(path)
        verb = _verb(http, named)
        return write("k8s", f"{verb} {group}/{resource}") if verb in MUTATING_VERBS else None
    return None


def _kube_apis() -> list[type]:
    return [c for n, c in vars(kubernetes.client).items() if n.endswith("Api") and isinstance(c, type)]


def _resource(path: str) -> tuple[str, str, bool]:
    """(API group, resource[/subresource], whether the path names one object)."""
    core = path.startswith("/api/")
    parts = path.strip("/").split("/")[2 if core else 3 :]
    group = "" if core else path.strip("/").split("/")[1]
    if len(parts) > 2 and parts[0] == "namespaces" and parts[1] == "{namespace}":
        parts = parts[2:]
    named = len(parts) > 1 and parts[1] == "{name}"
    resource = parts[0] + (f"/{parts[2]}" if named and len(parts) > 2 else "")
    return group, resource, named


def _verb(http: str, named: bool) -> str:
    verbs = {"GET": ("list", "get"), "POST": ("create", "create"), "PUT": ("update", "update")}
    verbs |= {"PATCH": ("patch", "patch"), "DELETE": ("deletecollection", "delete")}
    return verbs[http][named]


@cache
def aws_operations(services: frozenset[str]) -> dict[str, set[str]]:
    """boto3 client method (and paginator) name -> the IAM actions of that operation, in ``services``."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service in services:
        model = session.get_service_model(service)
        for operation in model.operation_names:
            # SQS authorizes a batch as its single action (no sqs:SendMessageBatch action exists).
            action = operation.removesuffix("Batch") if service == "sqs" else operation
            found.setdefault(xform_name(operation), set()).add(f"{model.signing_name}:{action}")
    return found


def aws_write(action: str) -> str | None:
    return None if action.split(":", 1)[1].startswith(READ_PREFIXES) else write("aws", action)


def adapter_services(tree: ast.Module) -> frozenset[str]:
    """The AWS services the adapters make clients for: bounded_client(session, "eks", ...), .client("sts")."""
    services = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            args = node.args[1:2] if name == "bounded_client" else node.args[:1] if name == "client" else []
            services |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return frozenset(services)


@cache
def adapter_writes() -> dict[tuple[str, str], frozenset[str]]:
    """(class, method) -> the writes its SDK calls make, for every adapter method that makes any."""
    trees = {path.stem: ast.parse(path.read_text()) for path in sorted(ADAPTERS.glob("*.py"))}
    operations = aws_operations(frozenset().union(*(adapter_services(t) for t in trees.values())))
    found: dict[tuple[str, str], frozenset[str]] = {}
    for tree in trees.values():
        for owner, function in _functions(tree):
            writes = set()
            for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                writes |= _call_writes(call, operations)
            if writes:
                found[(owner, function.name)] = frozenset(writes)
    return found


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            yield from ((node.name, f) for f in node.body if isinstance(f, ast.FunctionDef))
        elif isinstance(node, ast.FunctionDef):
            yield "", node


def _call_writes(call: ast.Call, operations: dict[str, set[str]]) -> set[str]:
    if isinstance(call.func, ast.Name):
        return _fetcher_writes(call.func.id, operations)
    if not isinstance(call.func, ast.Attribute):
        return set()
    name = call.func.attr
    if name == "get_paginator" and call.args and isinstance(call.args[0], ast.Constant):
        name = str(call.args[0].value)
    kube = kube_write(name)
    actions = operations.get(name, set())
    assert not (kube and actions), f"{name} is both a kubernetes and a boto3 method: say which"
    return {kube} if kube else {w for a in actions if (w := aws_write(a))}


def _fetcher_writes(name: str, operations: dict[str, set[str]]) -> set[str]:
    """A botocore credential fetcher an adapter builds (AssumeRoleCredentialFetcher) calls STS itself:
    the client methods in its source, as operations."""
    fetcher = getattr(botocore.credentials, name, None)
    if not isinstance(fetcher, type):
        return set()
    called = re.findall(r"client\.(\w+)\(", inspect.getsource(fetcher))
    return {w for method in called for a in operations.get(method, set()) if (w := aws_write(a))}


# --- granted: the policy and the manifest ----------------------------------------------------------


def aws_grants(config: Config, vpc: bool = False) -> set[tuple[str, str]]:
    """(statement, action) for every action the function roles are allowed (Sid, or the policy's name)."""
    stage = read_stage(json.loads((ROOT / ".chalice" / "config.json").read_text()), "dev")
    if vpc:
        stage = replace(stage, subnet_ids=("subnet-0a",), security_group_ids=("sg-0a",))
    statements = [(s.get("Sid", ""), s) for s in render_policy(stage, config)["Statement"]]
    for resource in load(MERGE_TEMPLATE)["Resources"].values():
        roles = {r.get("Ref") for r in resource.get("Properties", {}).get("Roles", [])}
        if resource["Type"] == "AWS::IAM::Policy" and roles & FUNCTION_ROLES:
            name = resource["Properties"]["PolicyName"]
            statements += [(s.get("Sid", name), s) for s in resource["Properties"]["PolicyDocument"]["Statement"]]
    grants = set()
    for where, statement in statements:
        if statement["Effect"] == "Allow":
            actions = statement["Action"]
            grants |= {(where, a) for a in ([actions] if isinstance(actions, str) else actions)}
    assert not [a for _, a in grants if "*" in a], "a wildcard action cannot be proven needed"
    return grants


def kube_grants(config: Config) -> set[str]:
    """Every mutating verb on a resource that the manifest's roles bound to the service's group grant."""
    documents = manifest_documents(config)
    bound = {
        (d["metadata"].get("namespace"), d["roleRef"]["name"])
        for d in documents
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding") and {s["name"] for s in d["subjects"]} == {SERVICE_GROUP}
    }
    grants = set()
    for document in (d for d in documents if d["kind"] in ("Role", "ClusterRole")):
        if (document["metadata"].get("namespace"), document["metadata"]["name"]) not in bound:
            continue
        for rule in document["rules"]:
            grants |= {
                write("k8s", f"{verb} {group}/{resource}")
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
                if verb in MUTATING_VERBS
            }
    return grants


def implied(made: set[str]) -> set[str]:
    """What the API server asks besides the call itself: writing a binding to a ClusterRole whose
    permissions the writer does not hold needs ``bind`` on it (Kubernetes RBAC, "Restrictions on role
    binding creation or update")."""
    binds = {
        write("k8s", f"{v} {RBAC}/{r}") for v in ("create", "update") for r in ("rolebindings", "clusterrolebindings")
    }
    return {write("k8s", f"bind {RBAC}/clusterroles")} if made & binds else set()


# --- the scenario: the deployed functions, through the queue, on each shape ------------------------

# The fakes that stand for each adapter class: their operations are the adapter's method names.
ADAPTER_OF_FAKE = {"FakeConfigMapStore": "ConfigMaps", "FakeAccessEntries": "AccessEntries"}


def grants(policies: list[dict[str, Any]], group: str = KUBERNETES_GROUP) -> dict[str, Any]:
    """The seed's identities and namespace grants, its IAM group's rule with ``policies`` and mapped to ``group``."""
    found = copy.deepcopy({"identities": SEED["identities"], "namespaceGrants": SEED["namespaceGrants"]})
    found["identities"]["groups"][0] |= {"accessPolicies": policies, "kubernetesGroups": [group]}
    found["namespaceGrants"][0]["kubernetesGroup"] = group
    return dict(found)


EDIT_A = {"policy": "AmazonEKSEditPolicy", "namespaces": [A]}
EDIT_AB = {"policy": "AmazonEKSEditPolicy", "namespaces": [A, B]}
VIEW = {"policy": "AmazonEKSViewPolicy"}  # cluster scope: a ClusterRoleBinding of `view` on aws-auth clusters
# The configurations the deployment runs with in turn: a policy; a new scope and a second policy at
# cluster scope; the first dropped (one step at a time: the deletion breaker holds a run that removes
# half or more); the group's members mapped to another Kubernetes group (its RoleBindings replaced).
STEPS = (grants([EDIT_A]), grants([EDIT_AB, VIEW]), grants([VIEW]), grants([VIEW], f"{KUBERNETES_GROUP}-2"))


def calls_of(shell: FakeShell) -> set[tuple[str, str]]:
    """(adapter class, method) of every port operation called on the shell's clusters so far. A binding
    without a namespace is a ClusterRoleBinding: the RoleBindings adapter hands it to ClusterRoleBindings."""
    called = set()
    for cluster in shell.clusters.values():
        fakes: list[FakePort | None] = [cluster.config_maps, cluster.access_entries]
        for fake in (f for f in fakes if f is not None):
            called |= {(ADAPTER_OF_FAKE[type(fake).__name__], op) for op, n in fake.calls.items() if n}
        for logged in cluster.bindings.writes:  # "create NAMESPACE/NAME"
            op, target = logged.split(" ", 1)
            called.add(("RoleBindings" if target.split("/")[0] not in ("", "None") else "ClusterRoleBindings", op))
    # A role assumed (FakeShell stands for adapters/assumed.py, whose _build makes the session).
    return called | ({("", "_build")} if shell.assumed else set())


def run_deployment(
    shell: FakeShell, lambdas: QueuedLambdas, write_config: Callable[..., Path], shape: dict[str, dict[str, str]]
) -> tuple[set[tuple[str, str]], list[Config]]:
    """A deployment's life on this shape: members mapped with an access policy (aws-auth absent at
    first), bindings edited by hand, the policies widened (one at cluster scope), one dropped, the
    Kubernetes group renamed, a member removed. The adapter methods the functions called, and the
    configurations they ran with."""
    for name, settings in shape.items():
        if settings["backend"] in MODES:
            shell.clusters[name].with_access_entries(MODES[settings["backend"]])
        if "roleArn" in settings:
            shell.trusted_roles[settings["roleArn"]] = None
    shell.clusters["fn-east"].config_maps.objects.pop((AWS_AUTH_NAMESPACE, AWS_AUTH_NAME))
    sends: list[int] = []
    send = lambdas.queue.send

    def counted(messages: Any) -> None:
        sends.append(len(messages))
        send(messages)

    lambdas.queue.send = counted  # type: ignore[method-assign]
    configs = []
    for name in ("alice", "bob", "carol"):  # alice leaves at the end: a third of the owned entries
        shell.iam_port.add_user(name, groups=[GROUP])
    for step, keys in enumerate(STEPS):
        configs.append(load_config(write_config(cluster_settings=shape, **keys)))
        lambdas.reconcile_all()
        for cluster in shell.clusters.values():  # edited by hand: the next run puts them back
            owned = sorted(cluster.bindings.owned(), key=str)
            for namespace, name in [owned[0], *[key for key in owned if not key[0]]] if step < 2 and owned else []:
                cluster.bindings.touch(namespace, name, subjects=(("User", "mallory"),))
    shell.iam_port.remove_from_group("alice", GROUP)
    lambdas.reconcile_all()
    assert sends, "the functions sent no work item"
    return calls_of(shell) | {("SqsWorkQueue", "send")}, configs


@pytest.mark.parametrize("shape", SHAPES)
def test_every_write_granted_is_made_by_an_adapter_and_every_write_made_is_granted(
    shape: str, shell: FakeShell, lambdas: QueuedLambdas, write_config: Callable[..., Path]
) -> None:
    called, configs = run_deployment(shell, lambdas, write_config, SHAPES[shape])
    writes = adapter_writes()
    made = set().union(*(writes.get(method, frozenset()) for method in called))
    made |= implied(made)
    aws = set().union(*(aws_grants(c, vpc=True) for c in configs))
    kube = set().union(*(kube_grants(c) for c in configs))

    known = {write("aws", "sqs:SendMessage"), write("k8s", f"create {RBAC}/rolebindings")}
    known |= {write("aws", "sts:AssumeRole")} if shape == "across accounts" else set()
    assert known <= made, made
    assert set(PLATFORM) <= aws, f"named as the platform's, and granted by nothing: {sorted(set(PLATFORM) - aws)}"
    unneeded = {f"{where}: {a}" for where, a in aws if aws_write(a) and write("aws", a) not in made} - {
        f"{where}: {a}" for where, a in PLATFORM
    }
    unneeded |= kube - made
    assert not unneeded, f"{shape}: granted, and no adapter call makes it: {sorted(unneeded)}"
    missing = made - kube - {write("aws", a) for _, a in aws}
    assert not missing, f"{shape}: an adapter makes it, and the function is not granted it: {sorted(missing)}"


def test_each_shape_grants_only_its_backend_s_writes(shell: FakeShell, write_config: Callable[..., Path]) -> None:
    """The shapes differ where they should, so that the test above compares something on each."""
    grants = {}
    for shape, settings in SHAPES.items():
        config = load_config(write_config(cluster_settings=settings, **STEPS[1]))
        grants[shape] = {a for _, a in aws_grants(config)} | kube_grants(config)
    assert "eks:CreateAccessEntry" not in grants["aws-auth only"]
    assert write("k8s", "update /configmaps") not in grants["access entries only"]
    assert {"eks:CreateAccessEntry", write("k8s", "update /configmaps")} <= grants["both"]


def test_every_adapter_write_is_made_by_the_functions_or_by_uninstall_alone(
    shell: FakeShell, lambdas: QueuedLambdas, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """No adapter write escapes the scenarios: each is made by the deployed functions on some shape, or
    only by ``uninstall`` (the operator's, with a cluster admin's rights), which nothing grants the service."""
    called, _ = run_deployment(shell, lambdas, write_config, SHAPES["both"])  # both backends, one each
    before = calls_of(shell)
    assert main(["uninstall", "--config", str(write_config(cluster_settings=SHAPES["both"]))]) == 0, capsys.readouterr()
    operator = calls_of(shell) - before - called
    writes = adapter_writes()
    assert {("AccessEntries", "create"), ("ConfigMaps", "put"), ("RoleBindings", "delete")} <= writes.keys()
    across = {("", "_build")}  # the role assumed: made in the shape "across accounts" (asserted there)
    assert set(writes) - called - operator - across == set(), (
        "an adapter write no scenario makes: add it to run_deployment"
    )
    assert writes[("", "_build")] == {write("aws", "sts:AssumeRole")}
    operator_writes = set().union(*(writes[m] for m in operator if m in writes))
    assert operator_writes == {write("k8s", "delete /configmaps")}
    for settings in SHAPES.values():
        config = load_config(write_config(cluster_settings=settings))
        assert not operator_writes & kube_grants(config)
