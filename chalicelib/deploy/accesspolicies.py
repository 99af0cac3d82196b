"""The function policy's access-entry and access-policy statements, rendered from the configuration. Pure.

The access-entry writes are fenced by the ownership tags (``owned_entry_statements``).

``eks:AssociateAccessPolicy`` is allowed only on the service's own entries (``aws:ResourceTag``),
only for the policy ARNs the configuration grants (``eks:policyArn``), only at the scopes it grants
them (``eks:accessScope``) and, where every namespace is written in the configuration, only in
those (``eks:namespaces``); where a selector or a tag chooses the namespace, never in a system
namespace unless a rule or profile opts into it. So even a subverted function cannot associate
AmazonEKSClusterAdminPolicy, or a configured policy more widely than configured. Disassociating and
listing are allowed on the service's own entries (a policy no rule names any more is disassociated).
Condition keys: the Service Authorization Reference for Amazon EKS (eks:policyArn is an ARN,
eks:accessScope a string, eks:namespaces an array of strings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import SYSTEM_NAMESPACES, Config, policy_arn, policy_name
from chalicelib.model.ownership import ENTRY_INSTANCE_TAG, MANAGED_BY_LABEL, MANAGED_BY_VALUE

OWNED_POLICIES_SID = "ListAndDisassociateOwnedAccessPolicies"
ASSOCIATE_SID_PREFIX = "AssociateAccessPolicy"  # then the policy's short name: AssociateAccessPolicyView


@dataclass
class _Reach:
    """Where the configuration grants one policy: its scopes and namespaces (None: chosen at run time)."""

    scopes: set[str] = field(default_factory=set)
    namespaces: set[str] | None = field(default_factory=set)
    system: bool = False  # a rule or profile that chooses namespaces at run time may choose a system one

    def add(self, scope: str, namespaces: tuple[str, ...] | None, system: bool) -> None:
        self.scopes.add(scope)
        if scope == "cluster":
            return
        if namespaces is None or self.namespaces is None:
            self.namespaces = None
        else:
            self.namespaces |= set(namespaces)
        self.system = self.system or system


def _reach(config: Config) -> dict[str, _Reach]:
    found: dict[str, _Reach] = {}
    for _, rule in config.access_policy_rules():
        reach = found.setdefault(rule.name, _Reach())
        if rule.cluster_scope:
            reach.add("cluster", (), False)
        else:
            namespaces = rule.namespaces if rule.namespace_selector is None else None
            reach.add("namespace", namespaces, rule.allow_system_namespaces)
    settings = config.tag_grants
    for profile in settings.profiles:
        full = settings.profile(profile)
        if full is not None and full.access_policy is not None:
            reach = found.setdefault(policy_name(full.access_policy), _Reach())
            reach.add("namespace", None, full.allow_system_namespaces)
    return found


def short_name(name: str) -> str:
    return name.removeprefix("AmazonEKS").removesuffix("Policy") or name


def is_generated(sid: object) -> bool:
    return isinstance(sid, str) and (sid == OWNED_POLICIES_SID or sid.startswith(ASSOCIATE_SID_PREFIX))


def owned_entry_statements(clusters: list[str], entries: list[str], instance: str) -> list[dict[str, Any]]:
    """The access-entry writes, fenced by the ownership tag. CreateAccessEntry is authorized on the
    cluster (its tags set in the same call: ``aws:RequestTag``); update, delete and TagResource on the
    entry, by the tags it already has (``aws:ResourceTag``). TagResource is allowed only on entries
    already owned (the principal-id and source tags of the service's own entries), and denied outright
    on every other entry, so that no entry can be tagged into ownership and then changed or deleted —
    not even if an operator's statement allowed more. No entry may carry a ``system:`` group. The
    instance's tag, where an entry has one or a request sets one, must be ``instance``'s: another
    instance's entries are out of reach, and none can be tagged over to this one (an untagged entry,
    made before instances, may be: adopted)."""
    owned = {
        "StringEquals": {f"aws:ResourceTag/{MANAGED_BY_LABEL}": MANAGED_BY_VALUE},
        **instance_condition(instance, "ResourceTag", "RequestTag"),
    }
    return [
        {
            "Sid": "CreateOwnedAccessEntries",
            "Effect": "Allow",
            "Action": ["eks:CreateAccessEntry"],
            "Resource": clusters,
            "Condition": {
                "StringEquals": {f"aws:RequestTag/{MANAGED_BY_LABEL}": MANAGED_BY_VALUE},
                **instance_condition(instance, "RequestTag"),
            },
        },
        {
            "Sid": "ChangeOnlyOwnedAccessEntries",
            "Effect": "Allow",
            "Action": ["eks:UpdateAccessEntry", "eks:DeleteAccessEntry", "eks:TagResource"],
            "Resource": entries,
            "Condition": owned,
        },
        {
            "Sid": "NeverTagIntoOwnership",
            "Effect": "Deny",
            "Action": ["eks:TagResource", "eks:UntagResource"],
            "Resource": entries,
            "Condition": {"StringNotEquals": {f"aws:ResourceTag/{MANAGED_BY_LABEL}": MANAGED_BY_VALUE}},
        },
        {
            "Sid": "NeverMapSystemGroups",
            "Effect": "Deny",
            "Action": ["eks:CreateAccessEntry", "eks:UpdateAccessEntry"],
            "Resource": [*clusters, *entries],
            "Condition": {"ForAnyValue:StringLike": {"eks:kubernetesGroups": ["system:*"]}},
        },
    ]


def instance_condition(instance: str, *keys: str) -> dict[str, dict[str, str]]:
    """The instance's tag, where the entry has one (``ResourceTag``) or the request sets one
    (``RequestTag``), is ``instance``'s; an entry without one (made before instances) passes."""
    return {"StringEqualsIfExists": {f"aws:{key}/{ENTRY_INSTANCE_TAG}": instance for key in keys}}


def access_policy_statements(config: Config, entries: list[str], partition: str, instance: str) -> list[dict[str, Any]]:
    """The statements for the access policies of the entries ``entries`` (access-entry ARN patterns),
    owned by the service and by ``instance``."""
    owned: dict[str, Any] = {
        "StringEquals": {f"aws:ResourceTag/{MANAGED_BY_LABEL}": MANAGED_BY_VALUE},
        **instance_condition(instance, "ResourceTag"),
    }
    statements: list[dict[str, Any]] = [
        {
            "Sid": OWNED_POLICIES_SID,
            "Effect": "Allow",
            "Action": ["eks:ListAssociatedAccessPolicies", "eks:DisassociateAccessPolicy"],
            "Resource": entries,
            "Condition": owned,
        }
    ]
    for name, reach in sorted(_reach(config).items()):
        condition: dict[str, Any] = {
            **owned,
            "StringEquals": {**owned["StringEquals"], "eks:accessScope": sorted(reach.scopes)},
            "ArnEquals": {"eks:policyArn": policy_arn(name, partition)},
        }
        if "namespace" in reach.scopes and reach.namespaces is not None:
            condition["ForAllValues:StringEquals"] = {"eks:namespaces": sorted(reach.namespaces)}
        elif "namespace" in reach.scopes and not reach.system:
            condition["ForAllValues:StringNotEquals"] = {"eks:namespaces": sorted(SYSTEM_NAMESPACES)}
        statements.append(
            {
                "Sid": f"{ASSOCIATE_SID_PREFIX}{short_name(name)}",
                "Effect": "Allow",
                "Action": ["eks:AssociateAccessPolicy"],
                "Resource": entries,
                "Condition": condition,
            }
        )
    return statements
