"""EKS access policies as the configuration names them: the dated catalogue of the policies EKS
offers, names and ARNs (partition aware), which grants are privileged, and each people policy's
RBAC equivalent on an aws-auth cluster. Pure data and functions.

The catalogue is what ``aws eks list-access-policies`` listed in full in a walkthrough published on
``CATALOGUE_DATE`` (33 policies), plus AmazonEKSClusterInsightsPolicy, which the EKS user guide's
"Review access policy permissions" documents. ``validate`` refuses a name outside it and ``validate
--live`` compares it with each cluster's ListAccessPolicies (AWS adds policies over time).
EKS never returns a policy's rules: what each people policy grants is the EKS user guide's "access
policy permissions", close to Kubernetes' user-facing ClusterRoles.
"""

from __future__ import annotations

import re

CATALOGUE_DATE = "2026-04-02"
CATALOGUE = frozenset(
    {
        "AIDevOpsAgentAccessPolicy",
        "AmazonAIOpsAssistantPolicy",
        "AmazonARCRegionSwitchScalingPolicy",
        "AmazonEKSACKPolicy",
        "AmazonEKSAdminPolicy",
        "AmazonEKSAdminViewPolicy",
        "AmazonEKSArgoCDClusterPolicy",
        "AmazonEKSArgoCDPolicy",
        "AmazonEKSAutoNodePolicy",
        "AmazonEKSBlockStorageClusterPolicy",
        "AmazonEKSBlockStoragePolicy",
        "AmazonEKSClusterAdminPolicy",
        "AmazonEKSClusterInsightsPolicy",
        "AmazonEKSComputeClusterPolicy",
        "AmazonEKSComputePolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSEventPolicy",
        "AmazonEKSHybridPolicy",
        "AmazonEKSKROPolicy",
        "AmazonEKSLoadBalancingClusterPolicy",
        "AmazonEKSLoadBalancingPolicy",
        "AmazonEKSNetworkingClusterPolicy",
        "AmazonEKSNetworkingPolicy",
        "AmazonEKSPodIdentityPolicy",
        "AmazonEKSSecretAdminPolicy",
        "AmazonEKSSecretReaderPolicy",
        "AmazonEKSViewPolicy",
        "AmazonEMRJobPolicy",
        "AmazonSagemakerHyperpodClusterPolicy",
        "AmazonSagemakerHyperpodControllerPolicy",
        "AmazonSagemakerHyperpodSpacePolicy",
        "AmazonSagemakerHyperpodSpaceTemplatePolicy",
        "AmazonSagemakerHyperpodSystemNamespacePolicy",
        "AmazonSagemakerHyperpodUserClusterPolicy",
    }
)

VIEW = "AmazonEKSViewPolicy"
EDIT = "AmazonEKSEditPolicy"
ADMIN = "AmazonEKSAdminPolicy"
ADMIN_VIEW = "AmazonEKSAdminViewPolicy"
CLUSTER_ADMIN = "AmazonEKSClusterAdminPolicy"

# A read-all ClusterRole the service's RBAC manifest ships: AdminView's equivalent (every resource,
# secrets included, read only), which Kubernetes has no built-in role for.
ADMIN_VIEW_CLUSTER_ROLE = "eks-iam-sync-admin-view"
# The policies made for people, and the ClusterRole that gives the same access on an aws-auth cluster
# (EKS cannot associate policies there). ClusterAdmin has none: it is refused on aws-auth clusters.
RBAC_EQUIVALENTS = {VIEW: "view", EDIT: "edit", ADMIN: "admin", ADMIN_VIEW: ADMIN_VIEW_CLUSTER_ROLE}
PEOPLE_POLICIES = frozenset({*RBAC_EQUIVALENTS, CLUSTER_ADMIN})
# Write access at cluster scope: a principal could change every namespace, kube-system included.
PRIVILEGED_AT_CLUSTER_SCOPE = frozenset({ADMIN, EDIT})

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,127}$", re.ASCII)
_ARN = re.compile(r"^arn:(aws[a-z-]*):eks::aws:cluster-access-policy/([A-Za-z][A-Za-z0-9]{0,127})$", re.ASCII)
# A namespace of an access scope: a namespace name, or a prefix ending in '*' (namespaces created later too).
_SCOPE_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$|^[a-z0-9][-a-z0-9]{0,61}\*$", re.ASCII)

# Region prefix -> partition, most specific first (botocore's partitions.json says the same; a unit test
# holds the two together). A role reaches only its own partition, so one deployment serves one partition.
_PARTITIONS = (
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
    ("cn-", "aws-cn"),
)


def partition_of(region: str) -> str:
    return next((partition for prefix, partition in _PARTITIONS if region.startswith(prefix)), "aws")


def parse_policy(value: str) -> tuple[str, str | None] | None:
    """(name, partition) of a policy given by name (partition None) or full ARN; None when it is neither."""
    if _NAME.fullmatch(value):
        return value, None
    found = _ARN.fullmatch(value)
    return (found.group(2), found.group(1)) if found else None


def policy_name(value: str) -> str:
    """The policy's name, from a name or an ARN (``value`` already validated)."""
    parsed = parse_policy(value)
    return parsed[0] if parsed else value


def policy_arn(name: str, partition: str) -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{name}"


def name_of_arn(arn: str) -> str:
    """The policy name an association's ARN names (the ARN itself when it is not a policy ARN)."""
    found = _ARN.fullmatch(arn)
    return found.group(2) if found else arn


def is_scope_namespace(value: str) -> bool:
    return bool(_SCOPE_NAMESPACE.fullmatch(value))


def is_privileged_policy(name: str, cluster_scope: bool) -> bool:
    """ClusterAdmin always; Admin or Edit at cluster scope; any policy not made for people (its rules
    are AWS's own roles' and not reviewed here)."""
    if name == CLUSTER_ADMIN or name not in PEOPLE_POLICIES:
        return True
    return cluster_scope and name in PRIVILEGED_AT_CLUSTER_SCOPE


def wildcard_matches(pattern: str, namespace: str) -> bool:
    """Whether a scope's namespace (a name, or a prefix ending in '*') covers ``namespace``."""
    if pattern.endswith("*"):
        return namespace.startswith(pattern[:-1])
    return pattern == namespace
