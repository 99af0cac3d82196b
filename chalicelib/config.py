"""The configuration contract: one YAML file, validated completely before anything runs.

Every problem is reported with its key path and line (``config.yaml:12: identities.groups[0]...``):
syntax problems first, then shape problems, then cross-key problems, each stage all at once. The
models are frozen: the rest of the pipeline receives plain, already-valid data.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StrictBool, Tag, ValidationError
from yaml.constructor import SafeConstructor

from chalicelib import yamlbounds
from chalicelib.errors import PermanentError
from chalicelib.ownership import DEFAULT_BACKUP_COUNT

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default-config.yaml")
DEFAULT_DENIED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
SYSTEM_NAMESPACES = frozenset(DEFAULT_DENIED_NAMESPACES)
PRIVILEGED_CLUSTER_ROLES = frozenset({"cluster-admin", "admin"})
RESERVED_USERNAME_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")

# The namespace of Kubernetes usernames the service owns: every username it writes is under it (or a
# per-session template), so no foreign RoleBinding or ClusterRoleBinding can name it by accident or
# by design. Valid for access entries (no reserved prefix) and aws-auth (no template).
DEFAULT_USERNAME_PREFIX = "eks-iam-sync:"
# What follows the prefix in a username the service makes from an IAM name: <prefix>user:<name>,
# <prefix>role:<name>. An explicit username must not take this form, or it could be another's.
GENERATED_USERNAME_KINDS = ("user", "role")
SESSION_TEMPLATES = re.compile(r"\{\{SessionName(Raw)?\}\}")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# IAM names are ASCII; \w would also accept look-alikes such as the Kelvin sign (U+212A), which
# str.lower() folds to an ASCII "k" and so into another principal's name.
IAM_NAME_CHARS = "A-Za-z0-9_+=,.@-"
_IAM_NAME = re.compile(rf"^[{IAM_NAME_CHARS}]{{1,128}}$", re.ASCII)
_PERMISSION_SET_NAME = re.compile(rf"^[{IAM_NAME_CHARS}]{{1,32}}$", re.ASCII)
_USERNAME_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,62}:$", re.ASCII)
DEFAULT_PERMISSION_SET_USERNAME = "sso:{{SessionName}}"
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


def _printable(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"a {what} must not be empty")
    if value != value.strip():
        raise ValueError(f"{value!r}: a {what} must not start or end with whitespace")
    if any(not char.isprintable() for char in value):
        raise ValueError(f"{value!r}: a {what} must not contain control or invisible characters")
    return value


def _kubernetes_group(value: str) -> str:
    _printable(value, "Kubernetes group")
    if value.lower().startswith("system:"):
        raise ValueError(f"{value!r}: 'system:' groups (system:masters above all) are never granted, in any case")
    return value


def _username(value: str) -> str:
    _printable(value, "username")
    if value.lower().startswith(RESERVED_USERNAME_PREFIXES):
        raise ValueError(f"{value!r} starts with a reserved prefix {RESERVED_USERNAME_PREFIXES}")
    return value


def _username_prefix(value: str) -> str:
    if not _USERNAME_PREFIX.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a username prefix: 1 to 64 of A-Z a-z 0-9 . _ @ : -, ending in ':' "
            f"(the default is {DEFAULT_USERNAME_PREFIX!r})"
        )
    if value.lower().startswith(RESERVED_USERNAME_PREFIXES):
        raise ValueError(f"{value!r} starts with a prefix EKS reserves {RESERVED_USERNAME_PREFIXES}")
    return value


def generated_username(prefix: str, kind: str, name: str) -> str:
    """The username of an IAM user or role mapped by name: under the service's prefix, with its kind,
    so neither a foreign subject nor a user and a role of the same name can share it."""
    return f"{prefix}{kind}:{name}"


def username_problem(username: str, prefix: str) -> str | None:
    """Why an explicit username could equal a subject the service does not own, or None.

    Allowed: a name under the service's prefix that is not of a generated form (those name the
    principals the service maps by name), or a per-session template after a literal namespace
    (``sso:{{SessionName}}``: each session its own name, never a fixed subject).
    """
    if username.startswith(prefix):
        rest = username[len(prefix) :]
        if rest.startswith(tuple(f"{kind}:" for kind in GENERATED_USERNAME_KINDS)):
            return (
                f"{username!r}: {prefix}user:<name> and {prefix}role:<name> are the usernames of the principals "
                "the service maps by name; another principal given one would hold their grants"
            )
        return None
    template = SESSION_TEMPLATES.search(username)
    if template and ":" in username[: template.start()]:
        return None
    return (
        f"{username!r} could be a subject the service does not own (a RoleBinding or ClusterRoleBinding made by "
        f"someone else would then apply to these sessions): start it with usernamePrefix {prefix!r}, use a "
        "session template after a namespace of its own ('sso:{{SessionName}}'), or leave it out"
    )


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
Username = Annotated[str, AfterValidator(_username)]
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


class GroupIdentity(_Model):
    iam_group: IamName = Field(alias="iamGroup")
    kubernetes_groups: tuple[KubernetesGroup, ...] = Field(default=(), alias="kubernetesGroups")


class RoleIdentity(_Model):
    iam_role: IamName = Field(alias="iamRole")
    # None: <usernamePrefix>role:<the role's name>.
    username: Username | None = None
    kubernetes_groups: tuple[KubernetesGroup, ...] = Field(default=(), alias="kubernetesGroups")


class PermissionSetIdentity(_Model):
    """An IAM Identity Center permission set: every role IAM Identity Center provisions for it
    (``AWSReservedSSO_<name>_<suffix>`` under ``/aws-reserved/sso.amazonaws.com/``), by name."""

    name: Annotated[str, _matches(_PERMISSION_SET_NAME, "permission set name")]
    kubernetes_groups: tuple[KubernetesGroup, ...] = Field(default=(), alias="kubernetesGroups")
    username: Username | None = None

    @property
    def effective_username(self) -> str:
        # The person's session name (their Identity Center user), valid for aws-auth and access entries.
        return self.username or DEFAULT_PERMISSION_SET_USERNAME


class Identities(_Model):
    username_prefix: Annotated[str, AfterValidator(_username_prefix)] = Field(
        default=DEFAULT_USERNAME_PREFIX, alias="usernamePrefix"
    )
    groups: tuple[GroupIdentity, ...] = ()
    roles: tuple[RoleIdentity, ...] = ()
    permission_sets: tuple[PermissionSetIdentity, ...] = Field(default=(), alias="permissionSets")


class LabelSelectorRequirement(_Model):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[LabelValue, ...] = ()


class NamespaceSelector(_Model):
    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: tuple[LabelSelectorRequirement, ...] = Field(default=(), alias="matchExpressions")


class NamespaceGrant(_Model):
    kubernetes_group: KubernetesGroup = Field(alias="kubernetesGroup")
    cluster_role: RbacName = Field(alias="clusterRole")
    namespaces: tuple[Namespace, ...] | None = None
    namespace_selector: NamespaceSelector | None = Field(default=None, alias="namespaceSelector")
    # Grants into kube-system, kube-public and kube-node-lease are made only when opted into here.
    allow_system_namespaces: StrictBool = Field(default=False, alias="allowSystemNamespaces")


class TagProfile(_Model):
    """A tag grant profile in full: ``{clusterRole: edit, allowSystemNamespaces: true}``."""

    cluster_role: RbacName = Field(alias="clusterRole")
    # Tags grant into kube-system, kube-public and kube-node-lease only through a profile that says so.
    allow_system_namespaces: StrictBool = Field(default=False, alias="allowSystemNamespaces")


def _profile_form(value: Any) -> str:
    return _PROFILE_IN_FULL if isinstance(value, dict | TagProfile) else _PROFILE_AS_NAME


# Tags of the two forms of a profile; they are dropped from the key paths of problems.
_PROFILE_AS_NAME, _PROFILE_IN_FULL = "<profile as a name>", "<profile in full>"
ProfileValue = Annotated[
    Annotated[RbacName, Tag(_PROFILE_AS_NAME)] | Annotated[TagProfile, Tag(_PROFILE_IN_FULL)],
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
        return {p.cluster_role for name in self.profiles if (p := self.profile(name)) is not None}


_ARN = re.compile(rf"^arn:aws[a-z-]*:(iam|sts)::\d{{12}}:[/{IAM_NAME_CHARS}]+$", re.ASCII)


class AwsAuthSettings(_Model):
    break_glass_arns: tuple[Annotated[str, _matches(_ARN, "IAM ARN")], ...] = Field(default=(), alias="breakGlassArns")
    max_deletion_share: float = Field(default=0.5, alias="maxDeletionShare", gt=0, lt=1)
    backups: int = Field(default=DEFAULT_BACKUP_COUNT, ge=1, le=50)


class Config(_Model):
    clusters: tuple[Cluster, ...] = Field(min_length=1)
    identities: Identities = Identities()
    namespace_grants: tuple[NamespaceGrant, ...] = Field(default=(), alias="namespaceGrants")
    tag_grants: TagGrants = Field(default=TagGrants(), alias="tagGrants")
    aws_auth: AwsAuthSettings = Field(default=AwsAuthSettings(), alias="awsAuth")
    # IAM in an identity account (iam.roleArn); None: the function's own account.
    iam: IamSettings | None = None
    # cluster-admin and system: ClusterRoles are refused in grants unless named here.
    allow_privileged_cluster_roles: tuple[RbacName, ...] = Field(default=(), alias="allowPrivilegedClusterRoles")

    @property
    def iam_role(self) -> RoleToAssume | None:
        """The role IAM is read as (``iam.roleArn``); None: the service's own account."""
        return self.iam.assumed_role if self.iam is not None else None

    def cluster(self, name: str) -> Cluster:
        found = next((c for c in self.clusters if c.name == name), None)
        if found is None:
            raise ConfigError("<config>", [Problem("clusters", None, f"no cluster named {name!r} is configured")])
        return found

    def summary(self) -> str:
        grants = self.namespace_grants
        listed = sum(len(g.namespaces or ()) for g in grants)
        selectors = sum(1 for g in grants if g.namespace_selector is not None)
        return (
            f"{_plural(len(self.clusters), 'cluster')}, "
            f"{_plural(len(self.identities.groups), 'IAM group mapping')}, "
            f"{_plural(len(self.identities.roles), 'IAM role mapping')}, "
            f"{_plural(len(grants), 'namespace grant')} "
            f"({_plural(listed, 'listed namespace')}, {_plural(selectors, 'selector')}), "
            f"{_plural(len(self.tag_grants.profiles), 'tag profile')}"
        )


def grantable_cluster_roles(config: Config) -> list[str]:
    """Every ClusterRole a rule or a profile may bind: the service's RBAC allows `bind` on exactly these."""
    return sorted({g.cluster_role for g in config.namespace_grants} | config.tag_grants.cluster_roles())


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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.path or '<top>'}: {self.message}"


class ConfigError(PermanentError):
    """A configuration file that must not be used; carries every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))


Path_ = tuple[str | int, ...]
MAX_CONFIG_BYTES = 1024 * 1024


def load_config(path: str | Path) -> Config:
    """Reads, parses and validates one configuration file; raises ConfigError listing every problem."""
    source = str(path)
    try:
        if Path(path).stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(source, [Problem("", None, f"the file is over {MAX_CONFIG_BYTES // 1024} KiB")])
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(source, [Problem("", None, f"cannot read the file: {err}")]) from err
    return parse_config(text, source)


def parse_config(text: str, source: str = "<config>") -> Config:
    data, lines, problems = _read_yaml(text)
    if problems:
        raise ConfigError(source, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        errors = err.errors()
        # pydantic also reports a list as too short when its items failed: keep the item errors only.
        errors = [e for e in errors if e["type"] != "too_short" or not _has_item_errors(e["loc"], errors)]
        raise ConfigError(source, [_from_pydantic(e, lines) for e in errors]) from err
    problems = [Problem(_dotted(p), _line_of(p, lines), m) for p, m in _semantic_problems(config)]
    if problems:
        raise ConfigError(source, problems)
    return config


def _read_yaml(text: str) -> tuple[Any, dict[Path_, int], list[Problem]]:
    if len(text.encode()) > MAX_CONFIG_BYTES:
        return None, {}, [Problem("", None, f"the file is over {MAX_CONFIG_BYTES // 1024} KiB: not a configuration")]
    try:
        node = yamlbounds.compose(text, single=True).root  # libyaml where present; depth and aliases bounded
        if node is None:
            return None, {}, [Problem("", None, "the file is empty")]
        lines: dict[Path_, int] = {}
        problems = list(_walk(node, (), lines))
        return (None if problems else SafeConstructor().construct_document(node)), lines, problems
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        return None, {}, [Problem("", line, f"YAML syntax error: {err.problem or err}")]
    except yaml.YAMLError as err:
        return None, {}, [Problem("", None, f"YAML error: {err}")]
    except yamlbounds.Refused as err:  # too deep, or an alias bomb
        return None, {}, [Problem("", err.line, str(err))]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Iterator[Problem]:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield Problem(_dotted((*path, key)), key_node.start_mark.line + 1, "duplicate key")
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            yield from _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*path, index), lines)


def _has_item_errors(loc: tuple[Any, ...], errors: list[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == tuple(loc) for e in errors)


def _from_pydantic(error: Any, lines: dict[Path_, int]) -> Problem:
    path: Path_ = tuple(p for p in error["loc"] if p not in (_PROFILE_AS_NAME, _PROFILE_IN_FULL))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "too_short":
        message = "must list at least one entry"
    return Problem(_dotted(path), _line_of(path, lines), message)


def _line_of(path: Path_, lines: dict[Path_, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _semantic_problems(config: Config) -> Iterator[tuple[Path_, str]]:
    """Checks that span several keys; yields (path, message)."""
    yield from _duplicates(((("clusters", i, "name"), c.name) for i, c in enumerate(config.clusters)), "cluster")
    for index, cluster in enumerate(config.clusters):
        if cluster.external_id is not None and cluster.role_arn is None:
            yield (
                ("clusters", index, "externalId"),
                "externalId is sent when assuming roleArn: give the cluster's roleArn too",
            )
    groups = config.identities.groups
    yield from _duplicates(
        ((("identities", "groups", i, "iamGroup"), g.iam_group) for i, g in enumerate(groups)), "IAM group"
    )
    sets = config.identities.permission_sets
    yield from _duplicates(
        ((("identities", "permissionSets", i, "name"), p.name) for i, p in enumerate(sets)), "permission set"
    )
    roles = config.identities.roles
    yield from _duplicates(
        ((("identities", "roles", i, "iamRole"), r.iam_role.lower()) for i, r in enumerate(roles)),
        "IAM role (role names are compared case-insensitively, as aws-iam-authenticator matches ARNs)",
    )
    allowed = set(config.allow_privileged_cluster_roles)
    for index, grant in enumerate(config.namespace_grants):
        if (grant.namespaces is None) == (grant.namespace_selector is None):
            yield ("namespaceGrants", index), "give exactly one of 'namespaces' or 'namespaceSelector'"
        if is_privileged_cluster_role(grant.cluster_role) and grant.cluster_role not in allowed:
            yield (
                ("namespaceGrants", index, "clusterRole"),
                f"{grant.cluster_role!r} is privileged: name it in allowPrivilegedClusterRoles to grant it",
            )
        for position, namespace in enumerate(grant.namespaces or ()):
            if namespace in SYSTEM_NAMESPACES and not grant.allow_system_namespaces:
                yield (
                    ("namespaceGrants", index, "namespaces", position),
                    f"{namespace!r} is a system namespace: set allowSystemNamespaces: true on this grant to grant it",
                )
    yield from _username_problems(config)
    yield from _profile_problems(config, allowed)


def _username_problems(config: Config) -> Iterator[tuple[Path_, str]]:
    prefix = config.identities.username_prefix
    for index, role in enumerate(config.identities.roles):
        problem = username_problem(role.username, prefix) if role.username is not None else None
        if problem:
            yield ("identities", "roles", index, "username"), problem
    for index, permission_set in enumerate(config.identities.permission_sets):
        problem = username_problem(permission_set.effective_username, prefix)
        if problem:
            yield ("identities", "permissionSets", index, "username"), problem


def _profile_problems(config: Config, allowed: set[str]) -> Iterator[tuple[Path_, str]]:
    settings = config.tag_grants
    by_role: dict[str, str] = {}
    for profile in settings.profiles:
        full = settings.profile(profile)
        if full is None:
            continue
        role = full.cluster_role
        if is_privileged_cluster_role(role) and full.allow_system_namespaces:
            # Whoever may tag a principal would hold kube-system's secrets and service accounts: a grant
            # like that belongs in namespaceGrants, reviewed with the configuration, not in a tag.
            yield (
                ("tagGrants", "profiles", profile, "allowSystemNamespaces"),
                f"{role!r} is privileged: a tag never grants it in a system namespace, allowPrivilegedClusterRoles "
                "or not (grant it through namespaceGrants with allowSystemNamespaces)",
            )
        elif is_privileged_cluster_role(role) and role not in allowed:
            yield (
                ("tagGrants", "profiles", profile),
                f"{role!r} is privileged: name it in allowPrivilegedClusterRoles to let a tag grant it",
            )
        reachable = SYSTEM_NAMESPACES - set(settings.denied_namespaces)
        if full.allow_system_namespaces and not reachable:
            yield (
                ("tagGrants", "profiles", profile, "allowSystemNamespaces"),
                "every system namespace is in tagGrants.deniedNamespaces, so this opt-in grants nothing: "
                "take the namespace out of deniedNamespaces or drop allowSystemNamespaces",
            )
        if role in by_role:
            yield (
                ("tagGrants", "profiles", profile),
                f"ClusterRole {role!r} is already named by profile {by_role[role]!r}; one profile per ClusterRole",
            )
        by_role.setdefault(role, profile)


def _duplicates(items: Iterator[tuple[Path_, str]], what: str) -> Iterator[tuple[Path_, str]]:
    seen: dict[str, Path_] = {}
    for path, value in items:
        if value in seen:
            yield path, f"duplicate {what} {value!r} (first at {_dotted(seen[value])})"
        seen.setdefault(value, path)
