"""EKS access policies as the test environment knows them: the catalogue ``ListAccessPolicies``
answers, and the Kubernetes permissions of the policies people are granted, as data.

Written from the documentation, independently of chalicelib, so that the harness checks the service
rather than agreeing with it.

The catalogue
-------------
``CATALOGUE`` is the list an ``aws eks list-access-policies`` printed in full in a 2026 walkthrough of
EKS access entries (33 policies), plus AmazonEKSClusterInsightsPolicy, which the EKS user guide's
"Review access policy permissions" page documents (that page prints the list abbreviated). The API
returns names and ARNs only: "You can't view the contents of an access policy using the API"
(botocore's ``ListAccessPoliciesResponse``). AWS adds policies over time; a test that needs one more
adds it here with its source.

The permissions
---------------
``RULES`` encodes the tables of the EKS user guide, "Review access policy permissions"
(https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html; source
awsdocs/amazon-eks-user-guide, latest/ug/manage-access/k8s-access/access-policy-reference.adoc at
commit 145543a96a20b66b1e946cd818943e5aa7713f6c), row by row: API groups, resources (a subresource
as ``pods/exec``), verbs, and non-resource URLs for ClusterAdmin. The page says "Similar to Kubernetes
Role and ClusterRole objects, access policies only include allow rules", so a rule matches as an RBAC
PolicyRule does (``*`` for any group, resource or verb). Only the five policies people are granted are
encoded: AmazonEKSViewPolicy, AmazonEKSEditPolicy, AmazonEKSAdminPolicy, AmazonEKSAdminViewPolicy and
AmazonEKSClusterAdminPolicy; the others (Auto Mode, hybrid nodes, capabilities, SageMaker...) are for
AWS's own roles and grant nothing here.

Scope: the user guide's "Associate access policies with access entries" page — "You can scope an
access policy to all resources on a cluster or by specifying the name of one or more Kubernetes
namespaces. You can use wildcard characters for a namespace name. For example, if you want to scope
an access policy to all namespaces that start with ``dev-``, you can specify ``dev-*``". A
namespace-scoped association grants nothing on cluster-scoped resources (nodes, namespaces listed as a
collection, non-resource URLs); the apiserver gives a request on one namespace object (``get
namespace a``) the namespace ``a``, so that is covered by a scope naming ``a``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

POLICY_ARN_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"

CATALOGUE: tuple[str, ...] = (
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
)


def policy_arn(name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{name}"


@dataclass(frozen=True)
class Rule:
    """One row of a policy's table: allow ``verbs`` on ``resources`` of ``groups`` (or on
    ``urls``, non-resource URLs, when given)."""

    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    urls: tuple[str, ...] = ()

    def allows(self, verb: str, group: str, resource: str) -> bool:
        return (
            not self.urls
            and _among(verb, self.verbs)
            and _among(group, self.groups)
            and ("*" in self.resources or resource in self.resources)
        )

    def allows_url(self, verb: str, path: str) -> bool:
        return _among(verb, self.verbs) and any(
            u in ("*", path) or (u.endswith("*") and path.startswith(u[:-1])) for u in self.urls
        )


def _among(value: str, allowed: Iterable[str]) -> bool:
    return any(a in ("*", value) for a in allowed)


READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")


def _rows(*rows: tuple[str, str, tuple[str, ...]]) -> tuple[Rule, ...]:
    """(api group, comma-separated resources, verbs) rows as the user guide's tables print them."""
    return tuple(
        Rule((group,), tuple(r.strip() for r in resources.split(",")), verbs) for group, resources, verbs in rows
    )


# The rows AmazonEKSEditPolicy and AmazonEKSAdminPolicy share (their tables list them alike).
_EDIT_ROWS = (
    (
        "apps",
        "daemonsets, deployments, deployments/rollback, deployments/scale, replicasets, replicasets/scale, "
        "statefulsets, statefulsets/scale",
        WRITE,
    ),
    (
        "apps",
        "controllerrevisions, daemonsets, daemonsets/status, deployments, deployments/scale, deployments/status, "
        "replicasets, replicasets/scale, replicasets/status, statefulsets, statefulsets/scale, statefulsets/status",
        READ,
    ),
    ("autoscaling", "horizontalpodautoscalers", WRITE),
    ("autoscaling", "horizontalpodautoscalers, horizontalpodautoscalers/status", READ),
    ("batch", "cronjobs, jobs", WRITE),
    ("batch", "cronjobs, cronjobs/status, jobs, jobs/status", READ),
    ("discovery.k8s.io", "endpointslices", READ),
    (
        "extensions",
        "daemonsets, deployments, deployments/rollback, deployments/scale, ingresses, networkpolicies, replicasets, "
        "replicasets/scale, replicationcontrollers/scale",
        WRITE,
    ),
    (
        "extensions",
        "daemonsets, daemonsets/status, deployments, deployments/scale, deployments/status, ingresses, "
        "ingresses/status, networkpolicies, replicasets, replicasets/scale, replicasets/status, "
        "replicationcontrollers/scale",
        READ,
    ),
    ("networking.k8s.io", "ingresses, ingresses/status, networkpolicies", READ),
    ("networking.k8s.io", "ingresses, networkpolicies", WRITE),
    ("policy", "poddisruptionbudgets", WRITE),
    ("policy", "poddisruptionbudgets, poddisruptionbudgets/status", READ),
    (
        "",
        "configmaps, endpoints, persistentvolumeclaims, persistentvolumeclaims/status, pods, replicationcontrollers, "
        "replicationcontrollers/scale, serviceaccounts, services, services/status",
        READ,
    ),
    ("", "pods/attach, pods/exec, pods/portforward, pods/proxy, secrets, services/proxy", READ),
    (
        "",
        "configmaps, events, persistentvolumeclaims, replicationcontrollers, replicationcontrollers/scale, secrets, "
        "serviceaccounts, services, services/proxy",
        WRITE,
    ),
    ("", "pods, pods/attach, pods/exec, pods/portforward, pods/proxy", WRITE),
    ("", "serviceaccounts", ("impersonate",)),
    (
        "",
        "bindings, events, limitranges, namespaces/status, pods/log, pods/status, replicationcontrollers/status, "
        "resourcequotas, resourcequotas/status",
        READ,
    ),
    ("", "namespaces", READ),
)

RULES: dict[str, tuple[Rule, ...]] = {
    "AmazonEKSClusterAdminPolicy": (Rule(("*",), ("*",), ("*",)), Rule((), (), ("*",), urls=("*",))),
    "AmazonEKSAdminViewPolicy": (Rule(("*",), ("*",), READ),),
    "AmazonEKSEditPolicy": _rows(*_EDIT_ROWS),
    "AmazonEKSAdminPolicy": _rows(
        *_EDIT_ROWS,
        ("authorization.k8s.io", "localsubjectaccessreviews", ("create",)),
        ("rbac.authorization.k8s.io", "rolebindings, roles", (*READ, *WRITE)),
    ),
    "AmazonEKSViewPolicy": _rows(
        (
            "apps",
            "controllerrevisions, daemonsets, daemonsets/status, deployments, deployments/scale, deployments/status, "
            "replicasets, replicasets/scale, replicasets/status, statefulsets, statefulsets/scale, statefulsets/status",
            READ,
        ),
        ("autoscaling", "horizontalpodautoscalers, horizontalpodautoscalers/status", READ),
        ("batch", "cronjobs, cronjobs/status, jobs, jobs/status", READ),
        ("discovery.k8s.io", "endpointslices", READ),
        (
            "extensions",
            "daemonsets, daemonsets/status, deployments, deployments/scale, deployments/status, ingresses, "
            "ingresses/status, networkpolicies, replicasets, replicasets/scale, replicasets/status, "
            "replicationcontrollers/scale",
            READ,
        ),
        ("networking.k8s.io", "ingresses, ingresses/status, networkpolicies", READ),
        ("policy", "poddisruptionbudgets, poddisruptionbudgets/status", READ),
        (
            "",
            "configmaps, endpoints, persistentvolumeclaims, persistentvolumeclaims/status, pods, "
            "replicationcontrollers, replicationcontrollers/scale, serviceaccounts, services, services/status",
            READ,
        ),
        (
            "",
            "bindings, events, limitranges, namespaces/status, pods/log, pods/status, replicationcontrollers/status, "
            "resourcequotas, resourcequotas/status",
            READ,
        ),
        ("", "namespaces", READ),
    ),
}


@dataclass(frozen=True)
class Association:
    """One policy associated with an entry, as the authorizer reads it."""

    policy_arn: str
    scope_type: str  # cluster | namespace
    namespaces: tuple[str, ...]

    @property
    def policy_name(self) -> str:
        return self.policy_arn.rsplit("/", 1)[-1]

    def covers(self, namespace: str) -> bool:
        """Whether the scope reaches a request in ``namespace`` ("" for a cluster-scoped request)."""
        if self.scope_type == "cluster":
            return True
        return bool(namespace) and any(
            namespace.startswith(p[:-1]) if p.endswith("*") else namespace == p for p in self.namespaces
        )


@dataclass(frozen=True)
class Request:
    """The attributes of a SubjectAccessReview the decision needs."""

    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    path: str = ""  # a non-resource request's URL path

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def granting(associations: Iterable[Association], request: Request) -> Association | None:
    """The first association whose policy and scope allow ``request``, or None."""
    for association in associations:
        rules = RULES.get(association.policy_name, ())
        if request.path:
            if association.scope_type == "cluster" and any(r.allows_url(request.verb, request.path) for r in rules):
                return association
            continue
        if association.covers(request.namespace) and any(
            r.allows(request.verb, request.group, request.full_resource) for r in rules
        ):
            return association
    return None
