"""A RoleBinding the service wants: plain data, its name and its labels. Below the ports (the
BindingStore writes these) and desired state (which computes them). ``namespace`` empty: a
ClusterRoleBinding (an access policy's RBAC equivalent at cluster scope on an aws-auth cluster),
owned, named and labelled exactly as a RoleBinding."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from chalicelib.model import arns, sources
from chalicelib.model.ownership import (
    GROUP_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PRINCIPAL_LABEL,
    group_label,
    principal_label,
    sso_group_label,
    sso_user_label,
)
from chalicelib.model.sources import Source

_UNSAFE_IN_NAME = re.compile(r"[/%]")
BINDING_PREFIX = "eks-iam-sync"


@dataclass(frozen=True)
class DesiredBinding:
    namespace: str
    name: str
    cluster_role: str
    subject_kind: str  # Group | User
    subject_name: str
    sources: tuple[Source, ...]  # namespaceGrants rules, or the IAM tag
    principal: str | None = None  # the IAM ARN behind a tag grant
    event_id: str | None = field(default=None, compare=False)
    # An Identity Center group grant's: the person's Identity Store user id and the group's DisplayName.
    sso_user: str | None = None
    sso_group: str | None = None
    instance: str | None = None  # the INSTANCE_LABEL it is written with (None: the default instance's, none)

    @property
    def source(self) -> str:
        """The written form (the RoleBinding's source annotation, compared with what was read back)."""
        return sources.render(self.sources, sources.BINDING_SEPARATOR)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def cluster_wide(self) -> bool:
        """A ClusterRoleBinding: every namespace."""
        return not self.namespace

    @property
    def kind(self) -> str:
        return kind_of(self.namespace)

    @property
    def principal_label(self) -> str | None:
        if self.sso_user is not None:
            return sso_user_label(self.sso_user)
        return principal_label(arns.kind_of(self.principal), arns.name_of(self.principal)) if self.principal else None

    @property
    def group_label(self) -> str | None:
        """A namespace grant's binding is found by its Kubernetes group (an event lists only those), an
        Identity Center grant's by its group."""
        if self.sso_group is not None:
            return sso_group_label(self.sso_group)
        return group_label(self.subject_name) if self.subject_kind == "Group" and not self.principal else None


def kind_of(namespace: str) -> str:
    """RoleBinding, or ClusterRoleBinding for a binding without a namespace."""
    return "RoleBinding" if namespace else "ClusterRoleBinding"


def binding_labels(binding: DesiredBinding) -> dict[str, str]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    if binding.principal_label:
        labels[PRINCIPAL_LABEL] = binding.principal_label
    if binding.group_label:
        labels[GROUP_LABEL] = binding.group_label
    if binding.instance:
        labels[INSTANCE_LABEL] = binding.instance
    return labels


def binding_name(kind: str, subject: str, role: str) -> str:
    """Readable and deterministic: eks-iam-sync:<kind>:<subject>:<role>, hashed only when too long."""
    name = _UNSAFE_IN_NAME.sub("-", f"{BINDING_PREFIX}:{kind}:{subject}:{role}")
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[:240]}-{digest}"
