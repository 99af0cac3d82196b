"""Tag grants: an IAM tag ``<tagPrefix><namespace>=<profile>`` on a user or role -> a RoleBinding of the
profile's ClusterRole to the principal's username, or the profile's EKS access policy scoped to the
namespace; or a refusal with its reason. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from chalicelib.config import SESSION_TEMPLATES, SYSTEM_NAMESPACES, Config, is_privileged_cluster_role, policy_name
from chalicelib.engine.policies import GrantRefusal
from chalicelib.model.bindings import DesiredBinding, binding_name
from chalicelib.model.identities import PolicyGrant
from chalicelib.model.sources import Source

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def tag_grants(
    config: Config, tags: Mapping[str, str], principal: str, username: str
) -> tuple[list[DesiredBinding], list[PolicyGrant], list[GrantRefusal]]:
    """A principal's tag grants: RoleBindings of ClusterRole profiles, access policies of accessPolicy
    profiles (the tag's namespace their scope), refusals."""
    grants, policies, refusals = [], [], []
    settings = config.tag_grants
    for key, profile in sorted(tags.items()):
        if not key.startswith(settings.tag_prefix):
            continue
        namespace = key[len(settings.tag_prefix) :]
        subject = f"{key}={profile}"
        refused = _tag_refusal(config, namespace, profile, username)
        if refused is not None:
            refusals.append((principal, subject, *refused))
            continue
        full = settings.profile(profile)
        assert full is not None  # _tag_refusal refuses an unknown profile
        if full.access_policy is not None:
            policies.append(PolicyGrant(policy_name(full.access_policy), (namespace,), Source.tag(subject).render()))
            continue
        assert full.cluster_role is not None  # validation: exactly one of the two
        grants.append(
            DesiredBinding(
                namespace=namespace,
                name=binding_name("tag", username, profile),
                cluster_role=full.cluster_role,
                subject_kind="User",
                subject_name=username,
                sources=(Source.tag(subject),),
                principal=principal,
            )
        )
    return grants, policies, refusals


def _tag_refusal(config: Config, namespace: str, profile: str, username: str) -> tuple[str, str] | None:  # noqa: PLR0911 - one return per reason, in order
    """Why the tag ``<prefix><namespace>=<profile>`` grants nothing (reason, message), or None."""
    settings = config.tag_grants
    full = settings.profile(profile)
    system = namespace in SYSTEM_NAMESPACES
    if namespace in ("", "*") or namespace.startswith("*"):
        return "cluster-wide", "a tag grant is one namespace; cluster-wide grants are never made"
    if len(namespace) > 63 or not _NAMESPACE.match(namespace):
        return "invalid-namespace", f"{namespace!r} is not a valid namespace name"
    if namespace in settings.denied_namespaces:
        return "denied-namespace", f"namespace {namespace!r} is in deniedNamespaces"
    if full is None:
        return "unknown-profile", f"profile {profile!r} is not one of {sorted(settings.profiles)}"
    if system and not full.allow_system_namespaces:
        # A floor under deniedNamespaces: a list customised without kube-system must not open it.
        return "system-namespace", f"a system namespace: profile {profile!r} does not set allowSystemNamespaces"
    if full.access_policy is not None:
        name = policy_name(full.access_policy)
        if not config.policy_allowed(name, False) or (system and not config.policy_allowed(name, True)):
            return "privileged-access-policy", f"profile {profile!r} names {name!r}"
        return None  # the association is the entry's: any username (on aws-auth, see policies.py)
    role = full.cluster_role or ""
    if not allowed_cluster_role(config, role) or (system and is_privileged_cluster_role(role)):
        return "privileged-cluster-role", f"profile {profile!r} names {role!r}"
    if SESSION_TEMPLATES.search(username):
        # A RoleBinding names one user; each session of this role has its own name.
        return "session-username", f"the username {username!r} is per session: grant through kubernetesGroups"
    return None


def allowed_cluster_role(config: Config, cluster_role: str) -> bool:
    return not is_privileged_cluster_role(cluster_role) or cluster_role in config.allow_privileged_cluster_roles
