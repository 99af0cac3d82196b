"""The whole configuration document: every key's model together (``schema`` holds the models of
single keys and their rules, ``identitycenter`` the ``identityCenter`` key)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool

from chalicelib.config.accesspolicies import RBAC_EQUIVALENTS, is_privileged_policy, policy_name
from chalicelib.config.identitycenter import IdentityCenter
from chalicelib.config.problems import ConfigError, Problem
from chalicelib.config.schema import (
    AccessPolicyRule,
    AwsAuthSettings,
    Cluster,
    IamSettings,
    Identities,
    NamespaceGrant,
    RbacName,
    RoleToAssume,
    TagGrants,
    _access_policy,
    _Model,
)


class Config(_Model):
    clusters: tuple[Cluster, ...] = Field(min_length=1)
    identities: Identities = Identities()
    namespace_grants: tuple[NamespaceGrant, ...] = Field(default=(), alias="namespaceGrants")
    tag_grants: TagGrants = Field(default=TagGrants(), alias="tagGrants")
    aws_auth: AwsAuthSettings = Field(default=AwsAuthSettings(), alias="awsAuth")
    # IAM in an identity account (iam.roleArn); None: the function's own account.
    iam: IamSettings | None = None
    # IAM Identity Center groups granted per person (None: none).
    identity_center: IdentityCenter | None = Field(default=None, alias="identityCenter")
    # cluster-admin and system: ClusterRoles are refused in grants unless named here.
    allow_privileged_cluster_roles: tuple[RbacName, ...] = Field(default=(), alias="allowPrivilegedClusterRoles")
    # AmazonEKSClusterAdminPolicy, Admin or Edit at cluster scope, and policies not made for people.
    allow_privileged_access_policies: tuple[Annotated[str, AfterValidator(_access_policy)], ...] = Field(
        default=(), alias="allowPrivilegedAccessPolicies"
    )
    # Every run plans, logs and counts (RunsPaused) but writes nothing: a switch that needs no redeploy
    # with an SSM or S3 configuration.
    paused: StrictBool = False

    def policy_allowed(self, name: str, cluster_scope: bool) -> bool:
        """Whether an access policy may be granted at this scope (privileged ones only when allowlisted)."""
        allowed = {policy_name(p) for p in self.allow_privileged_access_policies}
        return not is_privileged_policy(name, cluster_scope) or name in allowed

    def access_policy_rules(self) -> list[tuple[str, AccessPolicyRule]]:
        """(source, rule) of every identity rule's access policies, in configuration order."""
        found: list[tuple[str, AccessPolicyRule]] = []
        ids = self.identities
        for group in ids.groups:
            found += [(f"identities.groups[{group.iam_group}]", r) for r in group.access_policies]
        for role in ids.roles:
            found += [(f"identities.roles[{role.iam_role}]", r) for r in role.access_policies]
        for permission_set in ids.permission_sets:
            found += [(f"identities.permissionSets[{permission_set.name}]", r) for r in permission_set.access_policies]
        return found

    def granted_access_policies(self) -> set[str]:
        """The names of every access policy a rule or a tag profile grants."""
        return {r.name for _, r in self.access_policy_rules()} | self.tag_grants.access_policies()

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
            + (
                f", {_plural(len(sso.group_grants), 'Identity Center group grant')}"
                if (sso := self.identity_center)
                else ""
            )
        )


def grantable_cluster_roles(config: Config) -> list[str]:
    """Every ClusterRole a rule, a profile or an Identity Center grant may bind: the service's RBAC
    allows `bind` on exactly these. On a cluster that may use aws-auth, an access policy is granted
    through its RBAC equivalent."""
    roles = {g.cluster_role for g in config.namespace_grants} | config.tag_grants.cluster_roles()
    if config.identity_center is not None:
        roles |= {g.cluster_role for g in config.identity_center.group_grants}
    if any(c.backend != "accessEntries" for c in config.clusters):
        roles |= {RBAC_EQUIVALENTS[p] for p in config.granted_access_policies() if p in RBAC_EQUIVALENTS}
    return sorted(roles)


def cluster_wide_equivalents(config: Config) -> list[str]:
    """The ClusterRoles an aws-auth cluster binds cluster-wide (ClusterRoleBindings): the RBAC
    equivalents of the access policies a rule grants at cluster scope (a tag profile's scope is always
    its namespace). Empty when no cluster may use aws-auth."""
    if all(c.backend == "accessEntries" for c in config.clusters):
        return []
    rules = config.access_policy_rules()
    return sorted({RBAC_EQUIVALENTS[r.name] for _, r in rules if r.cluster_scope and r.name in RBAC_EQUIVALENTS})


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
