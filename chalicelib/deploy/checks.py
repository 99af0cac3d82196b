"""Deploy settings from one source of truth: the configuration. Pure data in, data out (and plain file reads).

The functions' IAM policy (``.chalice/policy-<stage>.json``) is *rendered* from the configuration the
stage deploys: the clusters' ARNs (partition from each cluster's region), the stage's own log groups,
the ENI permissions when the stage runs in a VPC, the read of a remote configuration source. Statements
with other Sids (a ``kms:Decrypt`` for a customer-managed key, say) are the operator's and are kept.
``project_problems`` is what ``eks-iam-sync validate --deploy STAGE`` and ``make package`` check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config import Cluster, Config, partition_of
from chalicelib.config.settings import (
    CONFIG_PATH_VARIABLE,
    CONNECT_TIMEOUT_VARIABLE,
    INSTANCE_VARIABLE,
    READ_TIMEOUT_VARIABLE,
    is_remote,
    resolve_source,
)
from chalicelib.deploy.accesspolicies import access_policy_statements, is_generated, owned_entry_statements

APP_NAME = "eks-iam-sync"
CHALICE_DIR = ".chalice"
FUNCTIONS = ("on_iam_event", "reconcile_all")

# What Lambda needs to attach a function to a VPC (the actions of AWSLambdaVPCAccessExecutionRole without
# its logs:* on every log group). EC2 scopes none of them usefully by resource for this use.
ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
GENERATED_SIDS = (
    "ReadIamPrincipals",
    "ReadIdentityStore",
    "AssumeConfiguredRoles",
    "FindConfiguredClusters",
    "ReadAccessEntries",
    "CreateOwnedAccessEntries",
    "ChangeOnlyOwnedAccessEntries",
    "NeverTagIntoOwnership",
    "NeverMapSystemGroups",
    "ReadConfiguration",
    "WriteOwnLogs",
    "Trace",
    "UseVpcNetworkInterfaces",
    "WriteLogs",  # before WriteOwnLogs: logs:* on every log group; replaced, never kept
)


def cluster_arn(cluster: Cluster) -> str:
    return f"arn:{partition_of(cluster.region)}:eks:{cluster.region}:*:cluster/{cluster.name}"


def access_entry_arns(cluster: Cluster) -> str:
    return f"arn:{partition_of(cluster.region)}:eks:{cluster.region}:*:access-entry/{cluster.name}/*"


def log_group_prefix(stage: str) -> str:
    """Both functions' log groups: the packaged stack's (``...-on-iam-event``) and ``chalice deploy``'s
    (``...-on_iam_event``)."""
    return f"/aws/lambda/{APP_NAME}-{stage}-"


@dataclass(frozen=True)
class Stage:
    """One Chalice stage's deploy settings, as Chalice reads them (the stage's value over the top level)."""

    name: str
    policy_file: str
    config_source: str  # EKS_IAM_SYNC_CONFIG as written: a path relative to the project, ssm:... or s3://...
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    autogen_policy: bool
    timeouts: dict[str, int]  # function -> lambda_timeout
    environment: dict[str, str]

    @property
    def vpc(self) -> bool:
        return bool(self.subnet_ids or self.security_group_ids)

    @property
    def instance(self) -> str:
        """The instance the stage deploys as: its EKS_IAM_SYNC_INSTANCE, else the stage (the stack's
        ``Instance`` default; tools/package.py makes the template's policy follow the parameter)."""
        return self.environment.get(INSTANCE_VARIABLE) or self.name


def read_stage(chalice_config: Mapping[str, Any], stage: str) -> Stage:
    """Raises KeyError when the stage is not in the Chalice configuration."""
    stages: Mapping[str, Any] = chalice_config.get("stages", {})
    settings: Mapping[str, Any] = stages[stage]

    def lookup(key: str, default: Any = None) -> Any:
        return settings.get(key, chalice_config.get(key, default))

    environment = {**chalice_config.get("environment_variables", {}), **settings.get("environment_variables", {})}
    timeouts = {}
    for function in FUNCTIONS:
        staged = settings.get("lambda_functions", {}).get(function, {})
        top = chalice_config.get("lambda_functions", {}).get(function, {})
        timeouts[function] = int(staged.get("lambda_timeout", top.get("lambda_timeout", lookup("lambda_timeout", 60))))
    return Stage(
        name=stage,
        policy_file=str(lookup("iam_policy_file", "policy.json")),
        config_source=environment.get(CONFIG_PATH_VARIABLE, ""),
        subnet_ids=tuple(lookup("subnet_ids") or ()),
        security_group_ids=tuple(lookup("security_group_ids") or ()),
        autogen_policy=bool(lookup("autogen_policy", True)),
        timeouts=timeouts,
        environment=environment,
    )


def stage_source(root: Path, stage_name: str) -> str | None:
    """The configuration a stage deploys, or None when .chalice/config.json has no such stage."""
    try:
        chalice_config = json.loads((root / CHALICE_DIR / "config.json").read_text())
        return resolve_source(read_stage(chalice_config, stage_name).config_source, root)
    except (OSError, ValueError, KeyError):
        return None


def render_policy(stage: Stage, config: Config) -> dict[str, Any]:
    """The function policy of one stage: every cluster ARN from the configuration, nothing else. A
    cluster reached through a role (``roleArn``, another account) is the role's business there: here
    it is only ``sts:AssumeRole`` on that role; likewise IAM read through ``iam.roleArn``. The
    access-entry statements name only the clusters that may use access entries (not ``configMap``)."""
    partition = partition_of(config.clusters[0].region)
    own = [c for c in config.clusters if getattr(c, "role_arn", None) is None]
    clusters = [cluster_arn(c) for c in own]
    # The access-entry API only where a cluster may use it: never for `backend: configMap`.
    api = [c for c in own if c.backend != "configMap"]
    entries = [access_entry_arns(c) for c in api]
    both = [arn for c in api for arn in (cluster_arn(c), access_entry_arns(c))]
    iam_role = getattr(getattr(config, "iam", None), "role_arn", None)
    sso = config.identity_center if config.identity_center and config.identity_center.group_grants else None
    sso_role = sso.role_arn if sso else None
    reached_as = [*(getattr(c, "role_arn", None) for c in config.clusters), iam_role, sso_role]
    roles = sorted({str(r) for r in reached_as if r})
    statements: list[dict[str, Any]] = []
    if iam_role is None:
        statements.append(
            {
                "Sid": "ReadIamPrincipals",
                "Effect": "Allow",
                "Action": [
                    "iam:GetAccountAuthorizationDetails",
                    "iam:GetGroup",  # a group's members, when a group is renamed to a configured name
                    "iam:GetRole",
                    "iam:GetUser",
                    "iam:ListGroupsForUser",
                ],
                "Resource": "*",
            }
        )
    if sso is not None and sso_role is None:
        statements.append(identity_store_statement(partition, sso.identity_store_id))
    if own:
        statements += [
            {
                "Sid": "FindConfiguredClusters",
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster"],
                "Resource": clusters,
            },
        ]
    if api:
        statements += [
            {
                "Sid": "ReadAccessEntries",
                "Effect": "Allow",
                "Action": ["eks:ListAccessEntries", "eks:DescribeAccessEntry"],
                "Resource": both,
            },
            *owned_entry_statements([cluster_arn(c) for c in api], entries, stage.instance),
            *access_policy_statements(config, entries, partition, stage.instance),
        ]
    if roles:
        statements.append(
            {"Sid": "AssumeConfiguredRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": roles}
        )
    source = stage.config_source
    if source.startswith("ssm:"):
        name = source.removeprefix("ssm:").lstrip("/")
        arn = f"arn:{partition}:ssm:*:*:parameter/{name}"
        statements.append(
            {"Sid": "ReadConfiguration", "Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": arn}
        )
    elif source.startswith("s3://"):
        arn = f"arn:{partition}:s3:::{source.removeprefix('s3://')}"
        statements.append({"Sid": "ReadConfiguration", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": arn})
    statements += [
        {
            # Only the stage's own log groups. CreateLogGroup serves `chalice deploy`; the packaged stack
            # creates both groups itself, with retention.
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:{partition}:logs:*:*:log-group:{log_group_prefix(stage.name)}*",
        },
        {
            "Sid": "Trace",
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*",
        },
    ]
    if stage.vpc:
        statements.append(
            {"Sid": "UseVpcNetworkInterfaces", "Effect": "Allow", "Action": list(ENI_ACTIONS), "Resource": "*"}
        )
    return {"Version": "2012-10-17", "Statement": statements}


# What reading IAM Identity Center's granted groups needs (engine/sso.py through adapters/identity_store.py).
IDENTITY_STORE_ACTIONS = (
    "identitystore:GetGroupId",
    "identitystore:ListGroupMemberships",
    "identitystore:DescribeUser",
    "identitystore:IsMemberInGroups",
)


def identity_store_statement(partition: str, identity_store_id: str, account: str = "*") -> dict[str, Any]:
    """Read only, on that one identity store (its users, groups and memberships have no account of
    their own in their ARNs). In the function's policy, or in identityCenter.roleArn's when the
    store is in another account."""
    return {
        "Sid": "ReadIdentityStore",
        "Effect": "Allow",
        "Action": list(IDENTITY_STORE_ACTIONS),
        "Resource": [
            f"arn:{partition}:identitystore::{account}:identitystore/{identity_store_id}",
            f"arn:{partition}:identitystore:::user/*",
            f"arn:{partition}:identitystore:::group/*",
            f"arn:{partition}:identitystore:::membership/*",
        ],
    }


def _generated(sid: object) -> bool:
    return sid in GENERATED_SIDS or is_generated(sid)


def merged_policy(generated: Mapping[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The generated statements, then the operator's own (any Sid not generated here) from ``existing``."""
    own = [s for s in (existing or {}).get("Statement", []) if not _generated(s.get("Sid"))]
    return {"Version": generated["Version"], "Statement": [*generated["Statement"], *own]}


def policy_problems(policy: Mapping[str, Any], expected: Mapping[str, Any], config: Config) -> list[str]:
    """How a policy differs from the rendering, in the configuration's terms; [] when it matches."""
    problems: list[str] = []
    partitions = sorted({partition_of(c.region) for c in config.clusters})
    if len(partitions) > 1:
        problems.append(f"the clusters span partitions {', '.join(partitions)}: one deployment reaches one partition")
    have = {s.get("Sid"): s for s in policy.get("Statement", []) if isinstance(s, Mapping)}
    names = {cluster_arn(c): c.name for c in config.clusters} | {access_entry_arns(c): c.name for c in config.clusters}
    for want in expected["Statement"]:
        got = have.get(want["Sid"])
        problems += [f"statement {want['Sid']} is missing"] if got is None else _statement_problems(want, got, names)
    generated = {s["Sid"] for s in expected["Statement"]}
    for sid in sorted(str(s) for s in have if _generated(s) and s not in generated):
        problems.append(f"statement {sid} is not needed by this stage")
    if partitions:
        problems += _partition_problems(policy, partitions[0])
    return problems


def _statement_problems(want: Mapping[str, Any], got: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """How one generated statement and the policy's statement of the same Sid differ."""
    sid = want["Sid"]
    problems = []
    wanted, held = _listed(want.get("Resource")), _listed(got.get("Resource"))
    for arn in wanted - held:
        why = f" (configured cluster {names[arn]})" if arn in names else ""
        problems.append(f"{sid} lacks {arn}{why}")
    for arn in held - wanted:
        why = " (no configured cluster has it)" if ":eks:" in arn else ""
        problems.append(f"{sid} names {arn}{why}")
    if _listed(got.get("Action")) != _listed(want.get("Action")) or got.get("Condition") != want.get("Condition"):
        problems.append(f"{sid}: actions or condition differ from what the service needs")
    if got.get("Effect") != want["Effect"]:
        problems.append(f"{sid}: Effect must be {want['Effect']}")
    return problems


def _partition_problems(policy: Mapping[str, Any], partition: str) -> list[str]:
    problems = []
    for statement in policy.get("Statement", []):
        for arn in _listed(statement.get("Resource")):
            parts = arn.split(":")
            if arn.startswith("arn:") and len(parts) > 2 and parts[1] != partition:
                problems.append(f"{statement.get('Sid', '?')}: {arn} is in partition {parts[1]}, not {partition}")
    return problems


def project_problems(root: Path, stage_name: str, config: Config) -> list[str]:
    """Everything about one stage's deployment that the configuration decides, checked."""
    chalice_dir = root / CHALICE_DIR
    try:
        chalice_config = json.loads((chalice_dir / "config.json").read_text())
    except (OSError, ValueError) as err:
        return [f"cannot read {chalice_dir / 'config.json'}: {err}"]
    try:
        stage = read_stage(chalice_config, stage_name)
    except KeyError:
        known = ", ".join(sorted(chalice_config.get("stages", {})))
        return [f"no stage {stage_name!r} in {chalice_dir / 'config.json'} (stages: {known})"]
    problems: list[str] = []
    if stage.autogen_policy:
        problems.append("autogen_policy must be false: Chalice's generated policy knows nothing of EKS")
    if bool(stage.subnet_ids) != bool(stage.security_group_ids):
        problems.append("a VPC needs both subnet_ids and security_group_ids (Chalice ignores one without the other)")
    problems += _timeout_problems(stage)
    source = resolve_source(stage.config_source, root)
    if not is_remote(source) and not Path(source).resolve().is_relative_to((root / "chalicelib").resolve()):
        problems.append(f"{CONFIG_PATH_VARIABLE}={stage.config_source}: a file outside chalicelib/ is not packaged")
    policy_path = chalice_dir / stage.policy_file
    try:
        policy = json.loads(policy_path.read_text())
    except (OSError, ValueError) as err:
        return [*problems, f"cannot read {policy_path}: {err}"]
    found = policy_problems(policy, render_policy(stage, config), config)
    return problems + [f"{policy_path.name}: {p}" for p in found]


def _timeout_problems(stage: Stage) -> list[str]:
    """A run does not start a cluster with less than connect + 2 x read left: a function must have twice that."""
    connect = _seconds(stage.environment.get(CONNECT_TIMEOUT_VARIABLE), 5.0)
    read = _seconds(stage.environment.get(READ_TIMEOUT_VARIABLE), 20.0)
    budget = connect + 2 * read
    return [
        f"{function}: lambda_timeout {seconds} s is under twice one cluster's budget ({budget:g} s)"
        for function, seconds in stage.timeouts.items()
        if seconds < 2 * budget
    ]


def _seconds(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default


def _listed(value: Any) -> set[str]:
    if value is None:
        return set()
    return {value} if isinstance(value, str) else {str(v) for v in value}


def render_json(policy: Mapping[str, Any]) -> str:
    return json.dumps(policy, indent=2) + "\n"
