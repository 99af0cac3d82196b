"""Act two of `make demo`: a second cluster whose authentication mode (API_AND_CONFIG_MAP) has EKS
access entries, in the same local stack (the same moto and EKS emulator; a second control plane).
The function's configuration names both clusters with ``backend: auto``: the same CloudTrail event
maps a user in aws-auth on the CONFIG_MAP cluster and creates an access entry on the other one."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import yaml
from kubernetes import client

from chalicelib.entry import cli
from demo.show import say, step, table
from tests.harness.cloudtrail import iam_event
from tests.harness.eks_emulator import ACCESS_ENTRY_OPERATIONS, EksEmulator
from tests.harness.function import cluster_config, deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, write_aws_auth
from tests.harness.service import (
    NODE_ROLE,
    bootstrap_access_entry_cluster,
)
from tests.harness.stack import CLUSTER, REGION, Stack, start_cluster

SECOND = "bttrm-eks-dev-1"
GROUP = "iam-bttrm-web-ro-group"


def act_two(stack: Stack, people: dict[str, Principal], workdir: Path, log: io.StringIO) -> None:
    assert stack.eks is not None, "the local stack runs the EKS emulator"
    eks_emulator = stack.eks
    started = time.monotonic()
    say(f"Act two: a second cluster, {SECOND}, in authentication mode API_AND_CONFIG_MAP (EKS access entries)")
    with ExitStack() as cluster_stack:
        plane, _ = start_cluster(cluster_stack, stack.aws_endpoint, SECOND, eks=eks_emulator, mode="API_AND_CONFIG_MAP")
        bootstrap(plane, stack.service.role_arn)
        up = time.monotonic() - started
        say(f"  cluster up in {up:.1f} s: apiserver {plane.endpoint}, registered in the EKS emulator")
        say("  operator's bootstrap: an access entry for the function's role (group eks-iam-sync, what")
        say("           infra/cloudformation/cluster-bootstrap.yaml creates), infra/kubernetes/rbac.yaml applied,")
        say("           aws-auth holding the node role only; the same ClusterRole and namespaces")
        say(f"  configuration: both clusters, backend auto; {SECOND} without an endpoint, so DescribeCluster")
        say("           gives its endpoint, CA and authentication mode")
        say()
        aws_auth_before = aws_auth_of(plane)
        both = (CLUSTER, SECOND)
        iam = boto3.client("iam")
        workdir.mkdir()
        with deployed(stack.service, two_clusters(stack), workdir) as fn:
            step(8, "reconcile_all (the schedule) on both clusters", lambda: None, {}, fn, log, both)
            say()
            eks_emulator.clear_calls()
            step(
                9,
                "AddUserToGroup bob, the event of step 2 again",
                lambda: iam.add_user_to_group(GroupName=GROUP, UserName="bob"),
                iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "bob"}),
                fn,
                log,
                both,
            )
            say(f"    EKS calls for this event on {SECOND}: {calls_on(eks_emulator, SECOND)}")
            describe_entry(people["bob"].arn)
            untouched(plane, aws_auth_before)
            table(plane, SECOND, people, f"kubectl auth can-i ({SECOND})")
            report_json(workdir / "eks-iam-sync.yaml", BEFORE, log)
            eks_emulator.clear_calls()
            step(
                10,
                "RemoveUserFromGroup bob",
                lambda: iam.remove_user_from_group(GroupName=GROUP, UserName="bob"),
                iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": "bob"}),
                fn,
                log,
                both,
            )
            say(f"    EKS calls for this event on {SECOND}: {calls_on(eks_emulator, SECOND)}")
            describe_entry(people["bob"].arn)
            untouched(plane, aws_auth_before)
            table(plane, SECOND, people, f"kubectl auth can-i ({SECOND})")
            write_report(workdir / "eks-iam-sync.yaml", log)
        say(f"  act two took {time.monotonic() - started:.1f} s")
        say()


def bootstrap(plane: ControlPlane, service_role_arn: str) -> None:
    """What an operator does once for an API_AND_CONFIG_MAP cluster (see the README's deployment guide)."""
    bootstrap_access_entry_cluster(plane, SECOND, service_role_arn, REGION)
    write_aws_auth(plane, map_roles=[NODE_ROLE])  # EKS keeps node roles in aws-auth in this mode


def two_clusters(stack: Stack) -> str:
    """The act-one configuration (the first cluster reached at its configured endpoint), plus the
    second cluster by name and region only."""
    seed = yaml.safe_load(cluster_config(stack.plane))
    seed["clusters"].append({"name": SECOND, "region": REGION, "backend": "auto"})
    return yaml.safe_dump(seed, sort_keys=False)


def calls_on(eks_emulator: EksEmulator, cluster: str) -> str:
    return ", ".join(c.operation for c in eks_emulator.calls_to(*ACCESS_ENTRY_OPERATIONS, cluster=cluster))


def describe_entry(principal_arn: str) -> None:
    """The entry as an operator sees it: `aws eks describe-access-entry`."""
    say(f"    $ aws eks describe-access-entry --cluster-name {SECOND} --principal-arn {principal_arn}")
    eks = boto3.client("eks", region_name=REGION)
    try:
        entry: Any = eks.describe_access_entry(clusterName=SECOND, principalArn=principal_arn)["accessEntry"]
    except eks.exceptions.ResourceNotFoundException as err:
        say(f"      {err.response['Error']['Code']}: {err.response['Error']['Message']}")
        return
    groups = ", ".join(entry["kubernetesGroups"])
    say(f"      type: {entry['type']}, username: {entry['username']}, kubernetesGroups: {groups}")
    for key, value in sorted(entry["tags"].items()):
        say(f"      tag {key}: {value}")


def aws_auth_of(plane: ControlPlane) -> tuple[str, dict[str, str]]:
    found = client.CoreV1Api(plane.admin()).read_namespaced_config_map("aws-auth", "kube-system")
    return str(found.metadata.resource_version), dict(found.data or {})


def untouched(plane: ControlPlane, before: tuple[str, dict[str, str]]) -> None:
    version, data = aws_auth_of(plane)
    state = "untouched" if (version, data) == before else "CHANGED"
    say(f"    aws-auth on {SECOND}: {state} (resourceVersion {version}; the node role only)")


REPORT = Path(tempfile.gettempdir()) / "eks-iam-sync-access.html"
BEFORE = Path(tempfile.gettempdir()) / "eks-iam-sync-access-before.json"
AFTER = Path(tempfile.gettempdir()) / "eks-iam-sync-access.json"
CSV = Path(tempfile.gettempdir()) / "eks-iam-sync-access.csv"


def report_json(config: Path, path: Path, log: io.StringIO) -> int:
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        return cli.main(["report", "--config", str(config), "--format", "json", "--output", str(path)])


def write_report(config: Path, log: io.StringIO) -> None:
    """The final state of both clusters as the access report, read with the function's own identity,
    as a page, JSON and CSV; and what changed since the JSON taken before step 10 (`report diff`)."""
    say("11. eks-iam-sync report: who can reach which namespace, and why (read-only)")
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        code = cli.main(["report", "--config", str(config), "--output", str(REPORT)])
        cli.main(["report", "--config", str(config), "--format", "csv", "--output", str(CSV)])
    report_json(config, AFTER, log)
    say(f"    {'written' if code == 0 else f'written, exit {code}'}: {REPORT} (open it in a browser)")
    say(f"    and as JSON and CSV: {AFTER}, {CSV} ({len(CSV.read_text().splitlines()) - 1} rows)")
    say(f"12. eks-iam-sync report diff: what step 10 changed ({BEFORE.name} -> {AFTER.name})")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(log):
        changed = cli.main(["report", "diff", str(BEFORE), str(AFTER)])
    for line in out.getvalue().splitlines()[:12]:
        say(f"    {line}")
    say(f"    exit {changed} (0 no change, 2 changes, 1 error)")
