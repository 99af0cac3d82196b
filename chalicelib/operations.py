"""What the operator CLI does, with the same stages as the Lambdas. Loads the kubernetes client."""

from __future__ import annotations

import argparse
from typing import Any

import boto3
from kubernetes import client as k8s
from kubernetes import config as kubeconfig
from kubernetes.client.rest import ApiException

from chalicelib.adapters.configmaps import ConfigMaps
from chalicelib.adapters.iam import IamReader, iam_client
from chalicelib.adapters.rolebindings import RoleBindings
from chalicelib.awsauth.parse import read_aws_auth
from chalicelib.awsauth.writer import AwsAuthWriter
from chalicelib.config import Config, grantable_cluster_roles
from chalicelib.desired import desired_state
from chalicelib.errors import SyncError
from chalicelib.explain import explain, refusals_for
from chalicelib.observability import Observer
from chalicelib.ownership import AWS_AUTH_NAME, AWS_AUTH_NAMESPACE
from chalicelib.reconcile import ClusterReport, Options, aws_auth_writer
from chalicelib.runner import clients_for, own_arn, reconcile_clusters

Result = ClusterReport | SyncError


def clients(config: Config, args: argparse.Namespace, session: boto3.Session) -> dict[str, Any]:
    if not (args.kubeconfig or args.context):
        return clients_for(config, session, args.cluster)
    names = [c.name for c in config.clusters if args.cluster in (None, c.name)]
    if len(names) != 1:
        raise SystemExit("with --kubeconfig/--context, name the configured cluster it reaches with --cluster")
    return {names[0]: kubeconfig.new_client_from_config(config_file=args.kubeconfig, context=args.context)}


def full_reconcile(config: Config, args: argparse.Namespace, dry_run: bool, force: bool) -> dict[str, Result]:
    session = boto3.Session()
    reached = clients(config, args, session)
    snapshot = IamReader(iam_client(session)).full_snapshot()
    options = Options(
        dry_run=dry_run,
        force_deletions=force,
        own_arns=frozenset({own_arn(session)}),  # whoever runs this must not lock themselves out
        reason="eks-iam-sync plan" if dry_run else "eks-iam-sync apply",
    )
    return reconcile_clusters(config, reached, snapshot, None, options)


def succeeded(result: Result) -> bool:
    return (
        isinstance(result, ClusterReport)
        and result.aws_auth.status != "refused"
        and not result.bindings.failed
        and not result.bindings.refused
    )


def changed(result: Result) -> bool:
    return isinstance(result, ClusterReport) and result.changed


def as_json(result: Result) -> dict[str, Any]:
    if isinstance(result, SyncError):
        return {"status": "failed", "error": str(result)}
    outcome = result.aws_auth
    return {
        "status": "changes" if result.changed else "no-changes",
        "awsAuth": {
            "status": outcome.status,
            "changes": [
                {
                    "action": c.action,
                    "key": c.key,
                    "arn": c.arn,
                    "before": _entry(c.before),
                    "after": _entry(c.after),
                    "source": c.source,
                }
                for c in outcome.changes
            ],
            "conflicts": [c.describe() for c in outcome.conflicts],
            "refusals": [{"reason": r.reason, "message": r.message} for r in outcome.refusals],
        },
        "roleBindings": [
            {
                "action": a.action,
                "namespace": a.key[0],
                "name": a.key[1],
                "clusterRole": a.desired.cluster_role if a.desired else None,
                "subject": f"{a.desired.subject_kind}/{a.desired.subject_name}" if a.desired else None,
                "source": a.desired.source if a.desired else (a.observed.source if a.observed else None),
            }
            for a in result.binding_plan
        ],
        "grantRefusals": [
            {"principal": r.principal, "subject": r.subject, "reason": r.reason, "message": r.message}
            for r in result.desired.refusals
        ],
        "skipped": list(result.desired.skipped),
        "problems": result.bindings.skipped + result.bindings.conflicts + result.bindings.refused,
    }


def _entry(entry: Any) -> dict[str, Any] | None:
    return None if entry is None else {"arn": entry.arn, "username": entry.username, "groups": list(entry.groups)}


def as_text(name: str, result: Result, dry_run: bool) -> list[str]:
    if isinstance(result, SyncError):
        return [f"cluster {name}: FAILED: {result}"]
    lines = [f"cluster {name}: " + ("changes" if result.changed else "no changes") + (" (plan)" if dry_run else "")]
    outcome = result.aws_auth
    lines.append(f"  aws-auth: {outcome.status}")
    lines += [f"  {c.describe()}" for c in outcome.changes]
    lines += [f"  {c.describe()}" for c in outcome.conflicts]
    lines += [f"  ! {r.render()}" for r in outcome.refusals]
    lines.append(f"  rolebindings: {len(result.binding_plan)} change(s)")
    lines += [f"  {a.describe()}" for a in result.binding_plan]
    lines += [f"  ! {r.render()}" for r in result.desired.refusals]
    lines += [f"  ! skipped: {s}" for s in result.desired.skipped]
    lines += [f"  ! {p}" for p in result.bindings.skipped + result.bindings.conflicts + result.bindings.refused]
    return lines


def explain_text(config: Config, args: argparse.Namespace) -> tuple[list[str], bool]:
    session = boto3.Session()
    snapshot = IamReader(iam_client(session)).full_snapshot()
    lines: list[str] = []
    found = False
    for name, api in clients(config, args, session).items():
        if isinstance(api, SyncError):
            lines.append(f"cluster {name}: FAILED: {api}")
            continue
        desired = desired_state(config, snapshot, RoleBindings(api).namespaces())
        observed = ConfigMaps(api).read(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME)
        reading = read_aws_auth(observed.data if observed else {})
        rules = _rules(api, {b.cluster_role for b in desired.bindings})
        explanations = explain(args.principal, desired, reading, rules)
        lines.append(f"cluster {name}")
        for item in explanations:
            found = True
            entry = item.owned.entry
            lines.append(f"  {entry.arn} ({item.owned.key}), in aws-auth now: {'yes' if item.in_aws_auth else 'NO'}")
            lines.append(f"    username: {entry.username}")
            lines.append(f"    kubernetes groups: {', '.join(entry.groups) or '(none)'}")
            lines.append(f"    because: {item.owned.source}")
            if not item.grants:
                lines.append("    no RoleBinding applies")
            for grant in item.grants:
                b = grant.binding
                lines.append(f"    + namespace {b.namespace}: ClusterRole {b.cluster_role} via {grant.via}")
                lines += [f"        can {rule}" for rule in grant.can]
            lines += [f"    ! {r.render()}" for r in item.refusals]
        if not explanations:
            lines.append(
                f"  {args.principal}: no mapping (not in a configured group, no configured role, no tag grant)"
            )
            lines += [f"  ! {r.render()}" for r in refusals_for(args.principal, desired)]
    return lines, found


def _rules(api: Any, roles: set[str]) -> dict[str, list[str]]:
    rbac = k8s.RbacAuthorizationV1Api(api)
    found: dict[str, list[str]] = {}
    for role in sorted(roles):
        try:
            rules = rbac.read_cluster_role(role).rules or []
        except ApiException as err:
            found[role] = [f"(cannot read ClusterRole {role}: HTTP {err.status})"]
            continue
        found[role] = [
            f"{', '.join(r.resources or r.non_resource_ur_ls or [])}: {', '.join(r.verbs)}"
            + (f" (only {', '.join(r.resource_names)})" if r.resource_names else "")
            for r in rules
        ]
    return found


def _writer(config: Config, api: Any, own_arns: frozenset[str] = frozenset()) -> AwsAuthWriter:
    # Restores protect what the Lambdas protect (break-glass entries), and whoever runs them.
    return aws_auth_writer(config, api, Options(own_arns=own_arns, reason="eks-iam-sync restore"), Observer())


def backups_text(config: Config, args: argparse.Namespace) -> list[str]:
    lines = []
    for name, api in clients(config, args, boto3.Session()).items():
        if isinstance(api, SyncError):
            lines.append(f"cluster {name}: FAILED: {api}")
            continue
        lines.append(f"cluster {name}")
        kept = _writer(config, api).backups()
        if not kept:
            lines.append("  no backups yet (one is kept before each write)")
        for backup in kept:
            entries = read_aws_auth(backup.data)
            count = len(entries.entries("mapRoles")) + len(entries.entries("mapUsers"))
            version = f"rv {backup.resource_version:<10}"
            lines.append(f"  {backup.sequence:>5}  {backup.taken_at}  {count:>4} entries  {version} {backup.reason}")
    return lines


def restore(config: Config, args: argparse.Namespace) -> tuple[bool, list[str]]:
    session = boto3.Session()
    reached = clients(config, args, session)
    if len(reached) != 1:
        return False, ["restore works on one cluster: name it with --cluster"]
    ((name, api),) = reached.items()
    if isinstance(api, SyncError):
        return False, [f"cluster {name}: FAILED: {api}"]
    try:
        outcome = _writer(config, api, frozenset({own_arn(session)})).restore(args.version, force=args.force)
    except LookupError as err:
        return False, [str(err)]
    lines = [f"cluster {name}: restore of backup {args.version}: {outcome.status}"]
    lines += [f"  ! {r.render()}" for r in outcome.refusals]
    if outcome.backup_sequence:
        lines.append(f"  the version it replaced is backup {outcome.backup_sequence} (restore it to undo)")
    return outcome.status in ("written", "unchanged"), lines


def live_problems(config: Config, args: argparse.Namespace) -> list[str]:
    session = boto3.Session()
    iam = iam_client(session)
    problems = []
    for group in config.identities.groups:
        try:
            iam.get_group(GroupName=group.iam_group, MaxItems=1)
        except iam.exceptions.NoSuchEntityException:
            problems.append(f"IAM group {group.iam_group!r} does not exist")
    for role in config.identities.roles:
        try:
            iam.get_role(RoleName=role.iam_role)
        except iam.exceptions.NoSuchEntityException:
            problems.append(f"IAM role {role.iam_role!r} does not exist")
    listed = {ns for g in config.namespace_grants for ns in g.namespaces or ()}
    for name, api in clients(config, args, session).items():
        if isinstance(api, SyncError):
            problems.append(f"cluster {name}: unreachable: {api}")
            continue
        rbac = k8s.RbacAuthorizationV1Api(api)
        for cluster_role in grantable_cluster_roles(config):
            try:
                rbac.read_cluster_role(cluster_role)
            except ApiException as err:
                state = "missing" if err.status == 404 else f"HTTP {err.status}"
                problems.append(f"cluster {name}: ClusterRole {cluster_role!r}: {state}")
        existing = RoleBindings(api).namespaces()
        problems += [f"cluster {name}: namespace {ns!r} does not exist" for ns in sorted(listed - set(existing))]
    return problems
