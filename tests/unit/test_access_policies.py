"""EKS access policies, the pure parts: the configuration's rules and guardrails, desired state (one
grant per policy, namespaces merged, cluster scope wins, selectors resolved, wildcards passed
through), the association plan (a new scope is one associate), and the function policy that allows
associating only the configured policy ARNs at the configured scopes."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.config import CATALOGUE_DATE, Config, ConfigError, cluster_wide_equivalents, parse_config, policy_name
from chalicelib.deploy import checks as deploy_checks
from chalicelib.deploy.accesspolicies import access_policy_statements
from chalicelib.engine.accessentries.associations import Associate, Disassociate, plan_policies
from chalicelib.engine.accessentries.plan import Observed, UpdateEntry, plan_access_entries
from chalicelib.engine.desired import desired_state
from chalicelib.engine.guardrails import Policy
from chalicelib.engine.plan import CreateBinding, DeleteBinding, ReplaceBinding, plan_bindings
from chalicelib.engine.policies import binds_cluster_wide, policy_bindings
from chalicelib.model.bindings import binding_labels
from chalicelib.model.identities import MAP_USERS, Entry, OwnedEntry, PolicyGrant, merged_grants
from chalicelib.model.ownership import MANAGED_BY_LABEL, MANAGED_BY_VALUE, PRINCIPAL_LABEL, principal_label
from chalicelib.model.ports import AssociatedPolicy, ObservedAccessEntry, ObservedBinding
from chalicelib.model.snapshot import IamSnapshot, IamUser
from chalicelib.model.sources import Source

ACCT = "123456789012"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EDIT = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def config_with(rules: str, extra: str = "", region: str = "us-east-2") -> str:
    return (
        textwrap.dedent(
            f"""\
        clusters:
          - name: c1
            region: {region}
        identities:
          groups:
            - iamGroup: devs
              accessPolicies:
        """
        )
        + textwrap.indent(textwrap.dedent(rules).rstrip("\n") + "\n", " " * 8)
        + textwrap.dedent(extra)
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    return [f"{p.path}: {p.message}" for p in err.value.problems]


# --- configuration ------------------------------------------------------------------------------------


def test_a_group_may_grant_policies_without_kubernetes_groups_by_name_or_arn() -> None:
    config = parse_config(
        config_with(
            """\
            - policy: AmazonEKSViewPolicy
              namespaces: [a, team-a-*]
            - policy: arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy
              namespaceSelector: {matchLabels: {team: a}}
            """
        )
    )
    [group] = config.identities.groups
    assert group.kubernetes_groups == ()
    assert [r.name for r in group.access_policies] == ["AmazonEKSViewPolicy", "AmazonEKSAdminViewPolicy"]
    assert config.granted_access_policies() == {"AmazonEKSViewPolicy", "AmazonEKSAdminViewPolicy"}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "- policy: AmazonEKSClusterAdminPolicy\n  namespaces: [a]",
            "is privileged: name it in allowPrivilegedAccessPolicies",
        ),
        ("- policy: AmazonEKSEditPolicy", "at cluster scope is privileged"),
        ("- policy: AmazonEKSAdminPolicy", "at cluster scope is privileged"),
        ("- policy: AmazonEKSAutoNodePolicy\n  namespaces: [a]", "is privileged"),
        ("- policy: AmazonEKSMadeUpPolicy", f"the catalogue of {CATALOGUE_DATE}"),
        ("- policy: AmazonEKSViewPolicy\n  namespaces: [kube-system]", "system namespace 'kube-system'"),
        ("- policy: AmazonEKSViewPolicy\n  namespaces: [kube-*]", "covers the system namespace"),
        ("- policy: AmazonEKSViewPolicy\n  namespaces: []", "give at least one namespace"),
        ("- policy: AmazonEKSViewPolicy\n  namespaces: ['*']", "not a namespace of an access scope"),
        ("- policy: arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", "partition 'aws-cn'"),
        ("- policy: not a policy", "is not an EKS access policy"),
    ],
)
def test_guardrails_refuse_what_the_issue_names(rule: str, expected: str) -> None:
    found = problems(config_with(rule))
    assert any(expected in p for p in found), found


def test_the_opt_ins_allow_privileged_policies_and_system_namespaces() -> None:
    parse_config(
        config_with(
            """\
            - policy: AmazonEKSClusterAdminPolicy
            - policy: AmazonEKSEditPolicy
            - policy: AmazonEKSViewPolicy
              namespaces: [kube-system]
              allowSystemNamespaces: true
            """,
            "allowPrivilegedAccessPolicies: [AmazonEKSClusterAdminPolicy, AmazonEKSEditPolicy]\n",
        )
    )
    parse_config(config_with("- policy: AmazonEKSEditPolicy\n  namespaces: [a]"))  # namespaced Edit: no opt-in


def test_a_tag_profile_names_a_policy_or_a_cluster_role_never_both() -> None:
    extra = "tagGrants:\n  profiles:\n    view: {accessPolicy: AmazonEKSViewPolicy}\n"
    parse_config(config_with("- policy: AmazonEKSViewPolicy", extra))
    both = "tagGrants:\n  profiles:\n    view: {accessPolicy: AmazonEKSViewPolicy, clusterRole: view}\n"
    assert any("exactly one of 'clusterRole' or 'accessPolicy'" in p for p in problems(config_with("[]", both)))
    admin = "tagGrants:\n  profiles:\n    admin: {accessPolicy: AmazonEKSClusterAdminPolicy}\n"
    assert any("to let a tag grant it" in p for p in problems(config_with("[]", admin)))


# --- desired state --------------------------------------------------------------------------------------


def test_grants_merge_one_per_policy_and_cluster_scope_wins() -> None:
    merged = merged_grants(
        [
            PolicyGrant("AmazonEKSViewPolicy", ("b",), "r1"),
            PolicyGrant("AmazonEKSViewPolicy", ("a", "b"), "r2"),
            PolicyGrant("AmazonEKSEditPolicy", ("a",), "r1"),
            PolicyGrant("AmazonEKSEditPolicy", (), "r3"),
        ]
    )
    assert merged == (PolicyGrant("AmazonEKSEditPolicy", ()), PolicyGrant("AmazonEKSViewPolicy", ("a", "b")))
    assert [g.source for g in merged] == ["r1, r3", "r1, r2"]


def test_desired_resolves_selectors_and_passes_wildcards_through() -> None:
    config = parse_config(
        config_with(
            """\
            - policy: AmazonEKSViewPolicy
              namespaces: [team-a-*]
            - policy: AmazonEKSViewPolicy
              namespaceSelector: {matchLabels: {team: a}}
            """
        )
    )
    live = {"a1": {"team": "a"}, "a2": {"team": "a"}, "b1": {"team": "b"}, "kube-system": {"team": "a"}}
    user = IamUser("alice", ALICE, ("devs",), id="AIDAALICE")
    state = desired_state(config, IamSnapshot(users=(user,)), live)
    [owned] = state.identities
    assert owned.access_policies == (PolicyGrant("AmazonEKSViewPolicy", ("a1", "a2", "team-a-*")),)
    [refused] = state.refusals
    assert (refused.reason, refused.subject) == ("system-namespace", "AmazonEKSViewPolicy namespace kube-system")


def test_on_aws_auth_the_equivalents_are_rolebindings_and_a_wildcard_the_namespaces_it_covers() -> None:
    config = parse_config(config_with("- policy: AmazonEKSEditPolicy\n  namespaces: [a, team-*]"))
    user = IamUser("alice", ALICE, ("devs",), id="AIDAALICE")
    state = desired_state(config, IamSnapshot(users=(user,)), {"a": {}, "team-x": {}, "other": {}}).for_aws_auth()
    assert sorted((b.namespace, b.cluster_role, b.subject_name) for b in state.bindings) == [
        ("a", "edit", "eks-iam-sync:user:alice"),
        ("team-x", "edit", "eks-iam-sync:user:alice"),
    ]


def cluster_view(extra: str = "", policy: str = "AmazonEKSViewPolicy") -> tuple[Config, IamUser]:
    return parse_config(config_with(f"- policy: {policy}", extra)), IamUser("alice", ALICE, ("devs",), id="AIDAALICE")


def test_on_aws_auth_cluster_scope_is_one_clusterrolebinding_owned_like_the_rolebindings() -> None:
    config, user = cluster_view()
    state = desired_state(config, IamSnapshot(users=(user,)), {"a": {}}).for_aws_auth()
    [crb] = state.bindings
    assert (crb.namespace, crb.cluster_wide, crb.kind) == ("", True, "ClusterRoleBinding")
    assert (crb.name, crb.cluster_role) == ("eks-iam-sync:policy:eks-iam-sync:user:alice:view", "view")
    assert (crb.subject_kind, crb.subject_name, crb.principal) == ("User", "eks-iam-sync:user:alice", ALICE)
    assert crb.source == "accessPolicy AmazonEKSViewPolicy (identities.groups[devs])"
    # the RoleBindings' markers: managed-by, the principal's label (an event lists it by that), no group label
    assert binding_labels(crb) == {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        PRINCIPAL_LABEL: principal_label("user", "alice"),
    }
    assert not state.refusals and binds_cluster_wide(config)
    # the access-entry clusters associate the policy instead: no binding at all
    assert desired_state(config, IamSnapshot(users=(user,)), {"a": {}}).bindings == ()


def test_cluster_scope_refusals_on_aws_auth_cluster_admin_and_session_usernames() -> None:
    allowed = "allowPrivilegedAccessPolicies: [AmazonEKSClusterAdminPolicy]\n"
    config, user = cluster_view(allowed, "AmazonEKSClusterAdminPolicy")
    state = desired_state(config, IamSnapshot(users=(user,)), {}).for_aws_auth()
    assert state.bindings == () and [r.reason for r in state.refusals] == ["access-policy-on-aws-auth"]
    assert not binds_cluster_wide(config)  # ClusterAdmin has no equivalent: nothing to bind cluster-wide
    owned = OwnedEntry(MAP_USERS, Entry(ALICE, "dev:{{SessionName}}"), (Source.group("devs"),), ALICE, "", ())
    bindings, refused = policy_bindings([replace(owned, access_policies=(PolicyGrant("AmazonEKSViewPolicy"),))], {})
    assert bindings == [] and [r[2] for r in refused] == ["session-username"]


def test_edit_and_admin_at_cluster_scope_need_the_opt_in_on_aws_auth_clusters_too() -> None:
    on_aws_auth = config_with("- policy: AmazonEKSEditPolicy").replace(
        "region: us-east-2", "region: us-east-2\n    backend: configMap"
    )
    assert any("at cluster scope is privileged" in p for p in problems(on_aws_auth))
    config = parse_config(on_aws_auth + "allowPrivilegedAccessPolicies: [AmazonEKSEditPolicy]\n")
    assert cluster_wide_equivalents(config) == ["edit"]
    entries_only = on_aws_auth.replace("backend: configMap", "backend: accessEntries")
    assert (
        cluster_wide_equivalents(parse_config(entries_only + "allowPrivilegedAccessPolicies: [AmazonEKSEditPolicy]\n"))
        == []
    )


def observed_crb(
    role: str = "view", principal: str = ALICE, name: str = "eks-iam-sync:policy:u:view"
) -> ObservedBinding:
    return ObservedBinding("", name, role, (("User", "u"),), "accessPolicy AmazonEKSViewPolicy (x)", principal, "7")


def test_clusterrolebindings_are_diffed_as_rolebindings_and_a_new_role_is_delete_then_create() -> None:
    config, user = cluster_view()
    [crb] = desired_state(config, IamSnapshot(users=(user,)), {}).for_aws_auth().bindings
    [create] = plan_bindings([crb], [])
    assert isinstance(create, CreateBinding)
    assert create.describe().startswith(
        f"+ clusterrolebinding {crb.name}: User eks-iam-sync:user:alice -> ClusterRole view"
    )
    current = ObservedBinding(
        "", crb.name, "edit", (("User", crb.subject_name),), crb.source, ALICE, "7", crb.principal_label
    )
    [replaced] = plan_bindings([crb], [current])
    assert isinstance(replaced, ReplaceBinding) and replaced.describe().endswith("(was edit)")
    assert plan_bindings([crb], [replace(current, cluster_role="view")]) == ()
    # gone from the desire: a full run deletes it; a scoped run only when its principal is in scope
    [delete] = plan_bindings([], [observed_crb()])
    assert (
        isinstance(delete, DeleteBinding)
        and delete.describe()
        == "- clusterrolebinding eks-iam-sync:policy:u:view  (accessPolicy AmazonEKSViewPolicy (x))"
    )
    assert plan_bindings([], [observed_crb()], {"arn:aws:iam::123456789012:user/bob"}) == ()
    assert plan_bindings([], [observed_crb()], {ALICE}) != ()
    # a RoleBinding of the same name in a namespace is another object
    assert len(plan_bindings([crb, replace(crb, namespace="a")], [])) == 2


# --- the association plan ----------------------------------------------------------------------------------


def owned_entry(*grants: PolicyGrant) -> OwnedEntry:
    return OwnedEntry(MAP_USERS, Entry(ALICE, "eks-iam-sync:user:alice"), (Source.group("devs"),), ALICE, "", grants)


def test_a_new_scope_is_one_associate_with_the_scope_before() -> None:
    before = AssociatedPolicy(VIEW, "namespace", ("a",))
    [action] = plan_policies(owned_entry(PolicyGrant("AmazonEKSViewPolicy", ("a", "b"))), [before], "aws")
    assert action == Associate(ALICE, VIEW, ("a", "b"), "", before)
    assert plan_policies(owned_entry(PolicyGrant("AmazonEKSViewPolicy", ("a",))), [before], "aws") == ()


def test_policy_arns_follow_the_cluster_s_partition_and_unnamed_ones_go() -> None:
    stale = AssociatedPolicy(EDIT, "cluster")
    actions = plan_policies(owned_entry(PolicyGrant("AmazonEKSViewPolicy")), [stale], "aws-cn")
    assert actions == (
        Associate(ALICE, "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", (), ""),
        Disassociate(ALICE, stale),
    )


def test_foreign_entries_get_no_policy_action() -> None:
    foreign = ObservedAccessEntry(ALICE, "by-hand", tags={})
    step = plan_access_entries(
        Observed((foreign,), {}, "aws"), [owned_entry(PolicyGrant("AmazonEKSViewPolicy"))], None, Policy()
    )
    assert step.actions == () and len(step.conflicts) == 1


def test_a_policy_change_alone_updates_the_entry_s_associations() -> None:
    tags = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, "eks-iam-sync/source": "identities.groups[devs]"}
    tags["eks-iam-sync/access-policies"] = "View"
    entry = ObservedAccessEntry(ALICE, "eks-iam-sync:user:alice", tags=tags)
    seen = Observed((entry,), {entry.key: [AssociatedPolicy(VIEW, "namespace", ("a",))]}, "aws")
    step = plan_access_entries(seen, [owned_entry(PolicyGrant("AmazonEKSViewPolicy", ("a", "b")))], None, Policy())
    [update] = step.actions
    assert isinstance(update, UpdateEntry) and not update.mapping_changed and not update.tags_changed
    assert [c.action for c in step.changes] == ["update"]


# --- the function policy -----------------------------------------------------------------------------------


def statements(text: str) -> dict[str, dict[str, Any]]:
    config = parse_config(text)
    found = access_policy_statements(config, ["arn:aws:eks:us-east-2:*:access-entry/c1/*"], "aws", "prod")
    return {s["Sid"]: s for s in found}


def test_associate_is_allowed_only_for_configured_policy_arns_and_scopes() -> None:
    found = statements(
        config_with(
            """\
            - policy: AmazonEKSViewPolicy
              namespaces: [a, team-*]
            - policy: AmazonEKSAdminViewPolicy
              namespaceSelector: {matchLabels: {team: a}}
            """
        )
    )
    assert set(found) == {
        "ListAndDisassociateOwnedAccessPolicies",
        "AssociateAccessPolicyView",
        "AssociateAccessPolicyAdminView",
    }
    view = found["AssociateAccessPolicyView"]
    assert view["Action"] == ["eks:AssociateAccessPolicy"]
    assert view["Condition"] == {
        "StringEquals": {
            "aws:ResourceTag/app.kubernetes.io/managed-by": "eks-iam-sync",
            "eks:accessScope": ["namespace"],
        },
        "StringEqualsIfExists": {"aws:ResourceTag/eks-iam-sync/instance": "prod"},  # this instance's entries only
        "ArnEquals": {"eks:policyArn": VIEW},
        "ForAllValues:StringEquals": {"eks:namespaces": ["a", "team-*"]},
    }
    selected = found["AssociateAccessPolicyAdminView"]["Condition"]
    assert selected["ForAllValues:StringNotEquals"] == {
        "eks:namespaces": ["kube-node-lease", "kube-public", "kube-system"]
    }
    assert "ForAllValues:StringEquals" not in selected


def test_cluster_admin_is_in_the_policy_only_when_configured_and_allowed() -> None:
    policy = deploy_checks.render_policy(
        deploy_checks.Stage("prod", "policy-prod.json", "chalicelib/c.yaml", (), (), False, {}, {}),
        parse_config(config_with("- policy: AmazonEKSViewPolicy\n  namespaces: [a]")),
    )
    associate = [s for s in policy["Statement"] if "eks:AssociateAccessPolicy" in s["Action"]]
    assert [s["Condition"]["ArnEquals"]["eks:policyArn"] for s in associate] == [VIEW]
    assert "AmazonEKSClusterAdminPolicy" not in str(policy)
    wide = parse_config(
        config_with(
            "- policy: AmazonEKSClusterAdminPolicy", "allowPrivilegedAccessPolicies: [AmazonEKSClusterAdminPolicy]\n"
        )
    )
    found = statements(
        config_with(
            "- policy: AmazonEKSClusterAdminPolicy", "allowPrivilegedAccessPolicies: [AmazonEKSClusterAdminPolicy]\n"
        )
    )
    assert found["AssociateAccessPolicyClusterAdmin"]["Condition"]["StringEquals"]["eks:accessScope"] == ["cluster"]
    assert policy_name(wide.allow_privileged_access_policies[0]) == "AmazonEKSClusterAdminPolicy"


def test_a_gov_cloud_cluster_s_policy_arns_are_in_its_partition() -> None:
    policy = deploy_checks.render_policy(
        deploy_checks.Stage("prod", "policy-prod.json", "chalicelib/c.yaml", (), (), False, {}, {}),
        parse_config(config_with("- policy: AmazonEKSViewPolicy\n  namespaces: [a]", region="us-gov-west-1")),
    )
    [associate] = [s for s in policy["Statement"] if "eks:AssociateAccessPolicy" in s["Action"]]
    assert associate["Condition"]["ArnEquals"]["eks:policyArn"] == (
        "arn:aws-us-gov:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    )
