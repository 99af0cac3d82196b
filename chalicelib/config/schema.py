"""The configuration's schema: frozen pydantic models, the value rules of each key, and the
constants other layers read (system namespaces, reserved and generated usernames). Validation of a
single key lives here; what spans several keys is in ``checks``; reading a file in ``loader``."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StrictBool, Tag

from chalicelib.config.accesspolicies import (
    is_scope_namespace,
    parse_policy,
    policy_name,
)
from chalicelib.config.usernames import (
    DEFAULT_PERMISSION_SET_USERNAME,
    DEFAULT_USERNAME_PREFIX,
    printable,
    valid_username,
    valid_username_prefix,
)

# Backups of aws-auth kept per cluster (a ring of fixed names, see model.ownership.backup_name).
DEFAULT_BACKUP_COUNT = 10
MAX_BACKUP_COUNT = 50  # the ring's largest size: uninstall looks for backups in that many slots
DEFAULT_CONFIG_PATH = Path(__file__).parent.parent / "default-config.yaml"
DEFAULT_DENIED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
SYSTEM_NAMESPACES = frozenset(DEFAULT_DENIED_NAMESPACES)
PRIVILEGED_CLUSTER_ROLES = frozenset({"cluster-admin", "admin"})

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# IAM names are ASCII; \w would also accept look-alikes such as the Kelvin sign (U+212A), which
# str.lower() folds to an ASCII "k" and so into another principal's name.
IAM_NAME_CHARS = "A-Za-z0-9_+=,.@-"
_IAM_NAME = re.compile(rf"^[{IAM_NAME_CHARS}]{{1,128}}$", re.ASCII)
_PERMISSION_SET_NAME = re.compile(rf"^[{IAM_NAME_CHARS}]{{1,32}}$", re.ASCII)
_EKS_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$", re.ASCII)
_TAG_KEY_CHARS = re.compile(r"^[\w.:/=+@ -]*$")
# RBAC object names are path segments: anything but '/' and '%', and not '.' or '..'.
_RBAC_NAME = re.compile(r"^(?!\.\.?$)[^/%]{1,253}$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# A role to assume: any partition (like _ARN), IAM only (an STS session ARN cannot be assumed), a path
# of IAM-name segments and a name of at most 64 characters.
_ROLE_ARN = re.compile(
    rf"^arn:aws[a-z-]*:iam::\d{{12}}:role/([{IAM_NAME_CHARS}]+/)*[{IAM_NAME_CHARS}]{{1,64}}$", re.ASCII
)
# sts:AssumeRole's ExternalId: 2 to 1224 of these characters.
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$", re.ASCII)


def _matches(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


def _namespace(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid namespace name (RFC 1123 label, at most 63 characters)")
    return value


def _kubernetes_group(value: str) -> str:
    printable(value, "Kubernetes group")
    if value.lower().startswith("system:"):
        raise ValueError(f"{value!r}: 'system:' groups (system:masters above all) are never granted, in any case")
    return value


def _access_policy(value: str) -> str:
    if parse_policy(value) is None:
        raise ValueError(
            f"{value!r} is not an EKS access policy: a name (AmazonEKSViewPolicy) or "
            "arn:<partition>:eks::aws:cluster-access-policy/<name>"
        )
    return value


def _scope_namespace(value: str) -> str:
    if not is_scope_namespace(value):
        raise ValueError(
            f"{value!r} is not a namespace of an access scope: a namespace name, or a prefix ending in '*' "
            "(team-a-*); for every namespace give no namespaces (cluster scope)"
        )
    return value


def _pem_base64(value: str) -> str:
    try:
        pem = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("certificateAuthorityData must be base64") from err
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("certificateAuthorityData must be a base64-encoded PEM certificate")
    return value


def _https_url(value: str) -> str:
    if not re.fullmatch(r"https://[^\s/]+(/\S*)?", value):
        raise ValueError(f"{value!r} is not an https:// URL")
    return value


Namespace = Annotated[str, AfterValidator(_namespace)]
KubernetesGroup = Annotated[str, AfterValidator(_kubernetes_group)]
Username = Annotated[str, AfterValidator(valid_username)]
IamName = Annotated[str, _matches(_IAM_NAME, "IAM name")]
RbacName = Annotated[str, _matches(_RBAC_NAME, "ClusterRole name")]
LabelKey = Annotated[str, _matches(_LABEL_KEY, "label key")]
LabelValue = Annotated[str, _matches(_LABEL_VALUE, "label value")]
RoleArn = Annotated[str, _matches(_ROLE_ARN, "IAM role ARN (arn:<partition>:iam::<account>:role/<path/>name)")]
ExternalId = Annotated[str, _matches(_EXTERNAL_ID, "external id (2 to 1224 of A-Z a-z 0-9 _ + = , . @ : / -)")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True)
class RoleToAssume:
    """A role the service assumes (session name ``eks-iam-sync``) to reach another account."""

    role_arn: str
    external_id: str | None = None


class IamSettings(_Model):
    """Where IAM is read: the function's own account, or (``roleArn``) an identity account's."""

    role_arn: RoleArn = Field(alias="roleArn")
    external_id: ExternalId | None = Field(default=None, alias="externalId")

    @property
    def assumed_role(self) -> RoleToAssume:
        return RoleToAssume(self.role_arn, self.external_id)


class Cluster(_Model):
    name: Annotated[str, _matches(_EKS_CLUSTER_NAME, "EKS cluster name")]
    region: Annotated[str, _matches(_REGION, "AWS region")]
    endpoint: Annotated[str, AfterValidator(_https_url)] | None = None
    certificate_authority_data: Annotated[str, AfterValidator(_pem_base64)] | None = Field(
        default=None, alias="certificateAuthorityData"
    )
    insecure_skip_tls_verify: StrictBool = Field(default=False, alias="insecureSkipTLSVerify")
    # Where identities are mapped: auto follows the cluster's authentication mode (DescribeCluster).
    backend: Literal["auto", "configMap", "accessEntries"] = "auto"
    # A cluster in another account: reached (DescribeCluster, access entries, the EKS token) as this role.
    role_arn: RoleArn | None = Field(default=None, alias="roleArn")
    external_id: ExternalId | None = Field(default=None, alias="externalId")

    @property
    def assumed_role(self) -> RoleToAssume | None:
        """The role the service reaches this cluster as; None: the service's own identity."""
        return RoleToAssume(self.role_arn, self.external_id) if self.role_arn else None


class LabelSelectorRequirement(_Model):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[LabelValue, ...] = ()


class NamespaceSelector(_Model):
    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: tuple[LabelSelectorRequirement, ...] = Field(default=(), alias="matchExpressions")


class AccessPolicyRule(_Model):
    """An EKS access policy an identity rule grants: ``{policy, namespaces | namespaceSelector}``; neither
    is cluster scope. ``policy`` is a name or the full ``arn:<partition>:eks::aws:cluster-access-policy/<name>``."""

    policy: Annotated[str, AfterValidator(_access_policy)]
    namespaces: tuple[Annotated[str, AfterValidator(_scope_namespace)], ...] | None = None
    namespace_selector: NamespaceSelector | None = Field(default=None, alias="namespaceSelector")
    # Scopes naming kube-system, kube-public or kube-node-lease (or a prefix covering one) only when opted into.
    allow_system_namespaces: StrictBool = Field(default=False, alias="allowSystemNamespaces")

    @property
    def name(self) -> str:
        return policy_name(self.policy)

    @property
    def cluster_scope(self) -> bool:
        return self.namespaces is None and self.namespace_selector is None


AccessPolicies = tuple[AccessPolicyRule, ...]


class GroupIdentity(_Model):
    iam_group: IamName = Field(alias="iamGroup")
    kubernetes_groups: tuple[KubernetesGroup, ...] = Field(default=(), alias="kubernetesGroups")
    access_policies: AccessPolicies = Field(default=(), alias="accessPolicies")


class RoleIdentity(_Model):
    iam_role: IamName = Field(alias="iamRole")
    # None: <usernamePrefix>role:<the role's name>.
    username: Username | None = None
    kubernetes_groups: tuple[KubernetesGroup, ...] = Field(default=(), alias="kubernetesGroups")
    access_policies: AccessPolicies = Field(default=(), alias="accessPolicies")


class PermissionSetIdentity(_Model):
    """An IAM Identity Center permission set: every role IAM Identity Center provisions for it
    (``AWSReservedSSO_<name>_<suffix>`` under ``/aws-reserved/sso.amazonaws.com/``), by name."""

    name: Annotated[str, _matches(_PERMISSION_SET_NAME, "permission set name")]
    kubernetes_groups: tuple[KubernetesGroup, ...] = Field(default=(), alias="kubernetesGroups")
    username: Username | None = None
    access_policies: AccessPolicies = Field(default=(), alias="accessPolicies")

    @property
    def effective_username(self) -> str:
        # The person's session name (their Identity Center user), valid for aws-auth and access entries.
        return self.username or DEFAULT_PERMISSION_SET_USERNAME


class Identities(_Model):
    username_prefix: Annotated[str, AfterValidator(valid_username_prefix)] = Field(
        default=DEFAULT_USERNAME_PREFIX, alias="usernamePrefix"
    )
    groups: tuple[GroupIdentity, ...] = ()
    roles: tuple[RoleIdentity, ...] = ()
    permission_sets: tuple[PermissionSetIdentity, ...] = Field(default=(), alias="permissionSets")


class NamespaceGrant(_Model):
    kubernetes_group: KubernetesGroup = Field(alias="kubernetesGroup")
    cluster_role: RbacName = Field(alias="clusterRole")
    namespaces: tuple[Namespace, ...] | None = None
    namespace_selector: NamespaceSelector | None = Field(default=None, alias="namespaceSelector")
    # Grants into kube-system, kube-public and kube-node-lease are made only when opted into here.
    allow_system_namespaces: StrictBool = Field(default=False, alias="allowSystemNamespaces")


class TagProfile(_Model):
    """A tag grant profile in full: ``{clusterRole: edit, allowSystemNamespaces: true}``, or an EKS access
    policy instead of the ClusterRole (``{accessPolicy: AmazonEKSViewPolicy}``: the tag's namespace is its scope)."""

    cluster_role: RbacName | None = Field(default=None, alias="clusterRole")
    access_policy: Annotated[str, AfterValidator(_access_policy)] | None = Field(default=None, alias="accessPolicy")
    # Tags grant into kube-system, kube-public and kube-node-lease only through a profile that says so.
    allow_system_namespaces: StrictBool = Field(default=False, alias="allowSystemNamespaces")


def _profile_form(value: Any) -> str:
    return PROFILE_IN_FULL if isinstance(value, dict | TagProfile) else PROFILE_AS_NAME


# Tags of the two forms of a profile; they are dropped from the key paths of problems.
PROFILE_AS_NAME, PROFILE_IN_FULL = "<profile as a name>", "<profile in full>"
ProfileValue = Annotated[
    Annotated[RbacName, Tag(PROFILE_AS_NAME)] | Annotated[TagProfile, Tag(PROFILE_IN_FULL)],
    Discriminator(_profile_form),
]


class TagGrants(_Model):
    tag_prefix: Annotated[str, _matches(_TAG_KEY_CHARS, "IAM tag key prefix")] = Field(
        default="eks-access/", alias="tagPrefix", min_length=1, max_length=64
    )
    # A profile is a ClusterRole's name, or a TagProfile.
    profiles: dict[Annotated[str, _matches(_IAM_NAME, "profile name")], ProfileValue] = Field(default_factory=dict)
    denied_namespaces: tuple[Namespace, ...] = Field(default=DEFAULT_DENIED_NAMESPACES, alias="deniedNamespaces")

    def profile(self, name: str) -> TagProfile | None:
        """The profile a tag value names, in full; None when there is none."""
        found = self.profiles.get(name)
        if isinstance(found, str):
            return TagProfile(cluster_role=found)
        return found

    def cluster_roles(self) -> set[str]:
        return {p.cluster_role for name in self.profiles if (p := self.profile(name)) and p.cluster_role}

    def access_policies(self) -> set[str]:
        """The names of the access policies the profiles grant."""
        return {policy_name(p.access_policy) for name in self.profiles if (p := self.profile(name)) and p.access_policy}


_ARN = re.compile(rf"^arn:aws[a-z-]*:(iam|sts)::\d{{12}}:[/{IAM_NAME_CHARS}]+$", re.ASCII)


class AwsAuthSettings(_Model):
    break_glass_arns: tuple[Annotated[str, _matches(_ARN, "IAM ARN")], ...] = Field(default=(), alias="breakGlassArns")
    max_deletion_share: float = Field(default=0.5, alias="maxDeletionShare", gt=0, lt=1)
    backups: int = Field(default=DEFAULT_BACKUP_COUNT, ge=1, le=MAX_BACKUP_COUNT)


def is_privileged_cluster_role(name: str) -> bool:
    """By name: the built-in superuser and admin roles and every system: role. A role whose rules hold
    a '*' verb or resource is privileged too, which only its rules tell (``grants_everything``)."""
    return name.lower() in PRIVILEGED_CLUSTER_ROLES or name.lower().startswith("system:")


def grants_everything(rules: list[str]) -> bool:
    """Whether ClusterRole rules as read ("resources: verbs") hold a '*' resource or verb."""
    for rule in rules:
        resources, _, verbs = rule.partition(": ")
        if "*" in resources.split(", ") or "*" in verbs.split(" (only")[0].split(", "):
            return True
    return False
