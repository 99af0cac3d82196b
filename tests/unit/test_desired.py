"""Desired state from configuration + IAM snapshot + namespaces: a pure function, table-tested."""

from __future__ import annotations

import pytest

from chalicelib.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config, parse_config
from chalicelib.engine.awsauth.model import MAP_ROLES, MAP_USERS, Entry
from chalicelib.engine.desired import desired_state, grants_of_groups, group_bindings, label_selector
from chalicelib.engine.plan import UpdateBinding, plan_bindings
from chalicelib.engine.policies import selects
from chalicelib.model.bindings import binding_name
from chalicelib.model.ownership import group_label
from chalicelib.model.ports import ObservedBinding
from chalicelib.model.principals import PrincipalScope
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser

SEED = load_config(DEFAULT_CONFIG_PATH)
TWO_GROUPS = parse_config(
    DEFAULT_CONFIG_PATH.read_text().replace(
        "identities:\n  groups:\n",
        "identities:\n  groups:\n    - iamGroup: ops\n      kubernetesGroups: [ops, rbac-bttrm-web-ro-group]\n",
    )
)
LIVE = {"bttrm-web-proj-1-ns": {}, "bttrm-web-proj-2-ns": {}, "ns3": {"team": "web"}}
ACCT = "111122223333"


def alice(*groups: str, path: str = "/", partition: str = "aws", tags: dict[str, str] | None = None) -> IamUser:
    return IamUser("alice", f"arn:{partition}:iam::{ACCT}:user{path}alice", groups, tags or {})


def test_a_group_member_gets_a_user_entry_with_the_arn_as_iam_reports_it() -> None:
    state = desired_state(SEED, IamSnapshot(users=(alice("iam-bttrm-web-ro-group", path="/eng/web/"),)), LIVE)
    [owned] = state.identities
    assert owned.key == MAP_USERS
    assert owned.entry == Entry(
        f"arn:aws:iam::{ACCT}:user/eng/web/alice", "eks-iam-sync:user:alice", ("rbac-bttrm-web-ro-group",)
    )
    assert owned.source == "identities.groups[iam-bttrm-web-ro-group]"


def test_a_user_in_two_configured_groups_gets_the_union_sorted_and_deduplicated() -> None:
    state = desired_state(TWO_GROUPS, IamSnapshot(users=(alice("iam-bttrm-web-ro-group", "ops", "unrelated"),)), LIVE)
    [owned] = state.identities
    assert owned.entry.groups == ("ops", "rbac-bttrm-web-ro-group")
    assert owned.source == "identities.groups[iam-bttrm-web-ro-group], identities.groups[ops]"


def test_a_user_removed_from_the_last_group_wants_no_entry() -> None:
    assert desired_state(SEED, IamSnapshot(users=(alice("unrelated"),)), LIVE).identities == ()
    assert desired_state(SEED, IamSnapshot(users=(alice(),)), LIVE).identities == ()


def test_partitions_are_taken_from_iam_never_hard_coded() -> None:
    [owned] = desired_state(
        SEED, IamSnapshot(users=(alice("iam-bttrm-web-ro-group", partition="aws-cn"),)), LIVE
    ).identities
    assert owned.entry.arn.startswith("arn:aws-cn:iam::")
    role = IamRole("iam-bttrm-web-ro-role", f"arn:aws-us-gov:iam::{ACCT}:role/teams/iam-bttrm-web-ro-role")
    [owned] = desired_state(SEED, IamSnapshot(roles=(role,)), LIVE).identities
    assert owned.entry.arn == f"arn:aws-us-gov:iam::{ACCT}:role/iam-bttrm-web-ro-role"


def test_a_configured_role_gets_a_role_entry_without_its_path() -> None:
    role = IamRole("iam-bttrm-web-ro-role", f"arn:aws:iam::{ACCT}:role/a/b/iam-bttrm-web-ro-role")
    [owned] = desired_state(SEED, IamSnapshot(roles=(role,)), LIVE).identities
    assert owned.key == MAP_ROLES
    assert owned.entry == Entry(
        f"arn:aws:iam::{ACCT}:role/iam-bttrm-web-ro-role",
        "eks-iam-sync:role:iam-bttrm-web-ro-role",
        ("rbac-bttrm-web-ro-group",),
    )
    assert (
        desired_state(SEED, IamSnapshot(roles=(IamRole("other", f"arn:aws:iam::{ACCT}:role/other"),)), LIVE).identities
        == ()
    )


def test_two_roles_sharing_a_name_are_refused() -> None:
    roles = (
        IamRole("iam-bttrm-web-ro-role", f"arn:aws:iam::{ACCT}:role/a/iam-bttrm-web-ro-role"),
        IamRole("iam-bttrm-web-ro-role", f"arn:aws:iam::{ACCT}:role/b/iam-bttrm-web-ro-role"),
    )
    state = desired_state(SEED, IamSnapshot(roles=roles), LIVE)
    assert state.identities == ()
    assert [r.reason for r in state.refusals] == ["roles-share-a-name", "roles-share-a-name"]


def test_tag_grants_give_an_identity_entry_and_a_user_binding() -> None:
    user = alice(tags={"eks-access/ns3": "pods-ro", "unrelated": "x"})
    state = desired_state(SEED, IamSnapshot(users=(user,)), LIVE, event_id="evt-1")
    [owned] = state.identities
    assert owned.entry == Entry(user.arn, "eks-iam-sync:user:alice", ()) and owned.source == "tagGrants"
    tag_bindings = [b for b in state.bindings if b.subject_kind == "User"]
    assert [(b.namespace, b.name, b.cluster_role, b.subject_name, b.principal) for b in tag_bindings] == [
        (
            "ns3",
            "eks-iam-sync:tag:eks-iam-sync:user:alice:pods-ro",
            "rbac-bttrm-pods-ro-cluster-role",
            "eks-iam-sync:user:alice",
            user.arn,
        )
    ]


def test_tag_granted_roles_bind_their_username() -> None:
    role = IamRole("ci", f"arn:aws:iam::{ACCT}:role/ci", {"eks-access/ns3": "pods-ro"})
    state = desired_state(SEED, IamSnapshot(roles=(role,)), LIVE)
    assert [o.entry for o in state.identities] == [Entry(role.arn, "eks-iam-sync:role:ci", ())]
    assert [b.subject_name for b in state.bindings if b.subject_kind == "User"] == ["eks-iam-sync:role:ci"]


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("eks-access/ns3", "nope", "unknown-profile"),
        ("eks-access/kube-system", "pods-ro", "denied-namespace"),
        ("eks-access/Not_A_Namespace", "pods-ro", "invalid-namespace"),
        ("eks-access/", "pods-ro", "cluster-wide"),
        ("eks-access/*", "pods-ro", "cluster-wide"),
    ],
)
def test_every_tag_refusal_is_reported_with_principal_tag_and_reason(key: str, value: str, reason: str) -> None:
    state = desired_state(SEED, IamSnapshot(users=(alice(tags={key: value}),)), LIVE)
    [refusal] = state.refusals
    assert (refusal.principal, refusal.subject, refusal.reason) == (alice().arn, f"{key}={value}", reason)
    assert state.identities == () and not [b for b in state.bindings if b.subject_kind == "User"]


def test_privileged_cluster_roles_are_configuration_errors_unless_explicitly_allowed() -> None:
    text = DEFAULT_CONFIG_PATH.read_text().replace(
        "    pods-ro: rbac-bttrm-pods-ro-cluster-role\n",
        "    pods-ro: rbac-bttrm-pods-ro-cluster-role\n    admin: cluster-admin\n",
    )
    text = text.replace("clusterRole: rbac-bttrm-pods-ro-cluster-role", "clusterRole: system:aggregate-to-view")
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert [p.path for p in raised.value.problems] == ["namespaceGrants[0].clusterRole", "tagGrants.profiles.admin"]
    user = alice(tags={"eks-access/ns3": "admin"})
    allowed = parse_config(text + "allowPrivilegedClusterRoles: [cluster-admin, system:aggregate-to-view]\n")
    assert len(desired_state(allowed, IamSnapshot(users=(user,)), LIVE).bindings) == 3


@pytest.mark.parametrize("role", ["cluster-admin", "admin", "system:aggregate-to-edit", "SYSTEM:Anything"])
def test_desired_state_refuses_privileged_roles_even_when_validation_was_bypassed(role: str) -> None:
    profiles = SEED.tag_grants.model_copy(update={"profiles": {"p": role}})
    config = SEED.model_copy(update={"tag_grants": profiles})
    state = desired_state(config, IamSnapshot(users=(alice(tags={"eks-access/ns3": "p"}),)), LIVE)
    assert [r.reason for r in state.refusals] == ["privileged-cluster-role"]
    assert all(b.cluster_role != role for b in state.bindings)


def test_a_selector_never_reaches_a_system_namespace_without_the_opt_in() -> None:
    selector = DEFAULT_CONFIG_PATH.read_text().replace(
        "    namespaces: [bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]", "    namespaceSelector: {matchLabels: {}}"
    )
    live: dict[str, dict[str, str]] = {"kube-system": {}, "team-a": {}}
    state = desired_state(parse_config(selector), IamSnapshot(), live)
    assert [b.namespace for b in state.bindings] == ["team-a"]
    assert [r.reason for r in state.refusals] == ["system-namespace"]
    opted = parse_config(
        selector.replace(
            "namespaceSelector: {matchLabels: {}}",
            "namespaceSelector: {matchLabels: {}}\n    allowSystemNamespaces: true",
        )
    )
    assert [b.namespace for b in desired_state(opted, IamSnapshot(), live).bindings] == ["kube-system", "team-a"]


def test_rule_bindings_listed_selected_and_skipped() -> None:
    state = desired_state(SEED, IamSnapshot(), {"bttrm-web-proj-1-ns": {}})
    assert [(b.namespace, b.subject_kind, b.subject_name) for b in state.bindings] == [
        ("bttrm-web-proj-1-ns", "Group", "rbac-bttrm-web-ro-group")
    ]
    assert state.skipped == ("namespaceGrants[0]: namespace 'bttrm-web-proj-2-ns' does not exist yet",)
    selector = parse_config(
        DEFAULT_CONFIG_PATH.read_text().replace(
            "    namespaces: [bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]",
            "    namespaceSelector: {matchLabels: {team: web}}",
        )
    )
    assert [b.namespace for b in desired_state(selector, IamSnapshot(), LIVE).bindings] == ["ns3"]
    assert desired_state(selector, IamSnapshot(), None).bindings == ()  # scoped: namespaces not listed


def test_label_selector_semantics() -> None:
    config = parse_config(
        "clusters: [{name: c, region: us-east-2}]\nnamespaceGrants:\n  - kubernetesGroup: g\n    clusterRole: r\n"
        "    namespaceSelector:\n      matchLabels: {team: web}\n      matchExpressions:\n"
        "        - {key: tier, operator: In, values: [dev, test]}\n        - {key: frozen, operator: DoesNotExist}\n"
        "        - {key: env, operator: NotIn, values: [prod]}\n        - {key: owner, operator: Exists}\n"
    )
    selector = config.namespace_grants[0].namespace_selector
    assert selector is not None
    base = {"team": "web", "tier": "dev", "owner": "x"}
    assert selects(selector, base)
    assert selects(selector, {**base, "env": "stage"})
    assert not selects(selector, {**base, "env": "prod"})
    assert not selects(selector, {**base, "frozen": "yes"})
    assert not selects(selector, {**base, "tier": "prod"})
    assert not selects(selector, {k: v for k, v in base.items() if k != "owner"})
    assert not selects(selector, {**base, "team": "db"})


def test_the_label_selector_sent_to_the_api_server_says_what_selects_means() -> None:
    config = parse_config(
        "clusters: [{name: c, region: us-east-2}]\nnamespaceGrants:\n  - kubernetesGroup: g\n    clusterRole: r\n"
        "    namespaceSelector:\n      matchLabels: {team: web}\n      matchExpressions:\n"
        "        - {key: tier, operator: In, values: [test, dev]}\n        - {key: frozen, operator: DoesNotExist}\n"
        "        - {key: env, operator: NotIn, values: [prod]}\n        - {key: owner, operator: Exists}\n"
        "  - kubernetesGroup: g\n    clusterRole: r\n    namespaceSelector:\n      matchExpressions:\n"
        "        - {key: tier, operator: In, values: []}\n"
        "  - kubernetesGroup: g\n    clusterRole: r\n    namespaceSelector: {matchLabels: {}}\n"
    )
    selectors = [g.namespace_selector for g in config.namespace_grants]
    assert all(s is not None for s in selectors)
    assert [label_selector(s) for s in selectors if s is not None] == [
        "team=web,tier in (dev,test),!frozen,env notin (prod),owner",
        None,  # In with no values selects nothing (the API server would refuse the selector)
        "",  # the empty selector selects every namespace
    ]


def test_an_event_binds_the_grants_of_the_groups_it_gives_and_nothing_else() -> None:
    config = parse_config(
        "clusters: [{name: c, region: us-east-2}]\nnamespaceGrants:\n"
        "  - {kubernetesGroup: devs, clusterRole: view, namespaces: [a, b]}\n"
        "  - {kubernetesGroup: ops, clusterRole: edit, namespaces: [c]}\n"
        "  - {kubernetesGroup: devs, clusterRole: edit, namespaceSelector: {matchLabels: {team: x}}}\n"
    )
    grants = grants_of_groups(config, ["devs", "Ops"])  # Kubernetes groups are case-sensitive
    assert grants == (0, 2)
    bindings, refusals = group_bindings(config, grants, {2: ["x1", "x2", "kube-system"]})
    assert [(b.namespace, b.cluster_role, b.subject_name, b.source) for b in bindings] == [
        ("a", "view", "devs", "namespaceGrants[0]"),
        ("b", "view", "devs", "namespaceGrants[0]"),
        ("x1", "edit", "devs", "namespaceGrants[2]"),
        ("x2", "edit", "devs", "namespaceGrants[2]"),
    ]
    assert {b.group_label for b in bindings} == {group_label("devs")} != {group_label("Devs")}
    assert [(r.principal, r.reason) for r in refusals] == [("namespaceGrants[2]", "system-namespace")]


def test_a_full_run_labels_an_older_grant_binding_with_its_group() -> None:
    state = desired_state(SEED, IamSnapshot(), LIVE)
    [first, *_] = state.bindings
    older = ObservedBinding(
        first.namespace, first.name, first.cluster_role, (("Group", first.subject_name),), first.source, None, "1"
    )
    [action] = plan_bindings([first], [older])
    assert isinstance(action, UpdateBinding) and action.desired.group_label == group_label(first.subject_name)
    assert (
        plan_bindings(
            [first],
            [observed(first.namespace, first.name, first.cluster_role, ("Group", first.subject_name), first.source)],
        )
        == ()
    )


def test_binding_names_are_readable_deterministic_and_bounded() -> None:
    assert (
        binding_name("group", "rbac-bttrm-web-ro-group", "pods-ro")
        == "eks-iam-sync:group:rbac-bttrm-web-ro-group:pods-ro"
    )
    assert binding_name("group", "a/b%c", "r") == "eks-iam-sync:group:a-b-c:r"
    long = binding_name("tag", "x" * 300, "r")
    assert len(long) <= 253 and long == binding_name("tag", "x" * 300, "r")


def observed(
    namespace: str, name: str, role: str, subject: tuple[str, str], source: str, principal: str | None = None
) -> ObservedBinding:
    label = group_label(subject[1]) if subject[0] == "Group" and principal is None else None
    return ObservedBinding(namespace, name, role, (subject,), source, principal, "1", group_label=label)


def test_plan_creates_updates_replaces_and_deletes_only_what_is_owned() -> None:
    user = alice(tags={"eks-access/ns3": "pods-ro"})
    state = desired_state(SEED, IamSnapshot(users=(user,)), LIVE)
    wanted = {b.key: b for b in state.bindings}
    p1, p2, ns3 = sorted(wanted)
    current = [
        observed(*p1, "rbac-bttrm-pods-ro-cluster-role", ("Group", "rbac-bttrm-web-ro-group"), "namespaceGrants[0]"),
        observed(*p2, "edit", ("Group", "rbac-bttrm-web-ro-group"), "namespaceGrants[0]"),
        observed("old", "eks-iam-sync:tag:bob:pods-ro", "x", ("User", "bob"), "tag", f"arn:aws:iam::{ACCT}:user/bob"),
    ]
    actions = plan_bindings(state.bindings, current)
    assert [(a.verb, a.key) for a in actions] == [
        ("replace", p2),
        ("create", ns3),
        ("delete", ("old", "eks-iam-sync:tag:bob:pods-ro")),
    ]
    edited = [observed(*p1, "rbac-bttrm-pods-ro-cluster-role", ("Group", "intruders"), "namespaceGrants[0]")]
    assert [a.verb for a in plan_bindings([wanted[p1]], edited)] == ["update"]


def test_a_scoped_plan_deletes_only_bindings_of_principals_in_scope() -> None:
    bob = observed("ns", "eks-iam-sync:tag:bob:r", "r", ("User", "bob"), "tag", f"arn:aws:iam::{ACCT}:user/x/bob")
    carol = observed("ns", "eks-iam-sync:tag:carol:r", "r", ("User", "carol"), "tag", f"arn:aws:iam::{ACCT}:user/carol")
    rule = observed("ns", "eks-iam-sync:group:g:r", "r", ("Group", "g"), "namespaceGrants[0]")
    actions = plan_bindings([], [bob, carol, rule], PrincipalScope.of(["Bob"]))
    assert [(a.verb, a.key[1]) for a in actions] == [("delete", "eks-iam-sync:tag:bob:r")]


# Issue 24, item 1: no username the service writes can be a subject it does not own.


def _with_tag_profiles(profiles: dict[str, str], denied: tuple[str, ...] = ()) -> Config:
    text = DEFAULT_CONFIG_PATH.read_text().split("tagGrants:")[0]
    lines = "".join(f"    {name}: {value}\n" for name, value in profiles.items())
    return parse_config(f"{text}tagGrants:\n  profiles:\n{lines}  deniedNamespaces: [{', '.join(denied)}]\n")


def test_a_tag_granted_role_named_like_a_foreign_subject_is_not_that_subject() -> None:
    """A ClusterRoleBinding not made by the service binds User ops-admin to cluster-admin: creating a
    role named ops-admin with any valid tag must not give its sessions that username."""
    for name in ("ops-admin", "alice@example.com", "system.admin", "kubernetes-admin"):
        role = IamRole(name, f"arn:aws:iam::{ACCT}:role/{name}", {"eks-access/ns3": "pods-ro"})
        state = desired_state(SEED, IamSnapshot(roles=(role,)), LIVE)
        [owned] = state.identities
        assert owned.entry.username == f"eks-iam-sync:role:{name}"
        assert [b.subject_name for b in state.bindings if b.subject_kind == "User"] == [f"eks-iam-sync:role:{name}"]


def test_a_user_mapped_through_a_group_is_not_the_subject_its_name_spells() -> None:
    user = IamUser("ops-admin", f"arn:aws:iam::{ACCT}:user/ops-admin", ("iam-bttrm-web-ro-group",))
    [owned] = desired_state(SEED, IamSnapshot(users=(user,)), LIVE).identities
    assert owned.entry.username == "eks-iam-sync:user:ops-admin"


def test_a_user_and_a_role_of_the_same_name_never_share_a_username_or_a_binding() -> None:
    tags = {"eks-access/ns3": "pods-ro"}
    user = IamUser("bob", f"arn:aws:iam::{ACCT}:user/bob", (), tags)
    role = IamRole("bob", f"arn:aws:iam::{ACCT}:role/bob", tags)
    state = desired_state(SEED, IamSnapshot(users=(user,), roles=(role,)), LIVE)
    assert sorted(o.entry.username for o in state.identities) == ["eks-iam-sync:role:bob", "eks-iam-sync:user:bob"]
    tag_bindings = sorted((b.subject_name, b.principal) for b in state.bindings if b.subject_kind == "User")
    assert tag_bindings == [("eks-iam-sync:role:bob", role.arn), ("eks-iam-sync:user:bob", user.arn)]


def test_the_username_prefix_is_configurable_and_applies_to_every_generated_username() -> None:
    config = parse_config(
        DEFAULT_CONFIG_PATH.read_text().replace("identities:\n", "identities:\n  usernamePrefix: 'corp.iam:'\n", 1)
    )
    user = alice("iam-bttrm-web-ro-group", tags={"eks-access/ns3": "pods-ro"})
    role = IamRole("iam-bttrm-web-ro-role", f"arn:aws:iam::{ACCT}:role/iam-bttrm-web-ro-role")
    state = desired_state(config, IamSnapshot(users=(user,), roles=(role,)), LIVE)
    assert sorted(o.entry.username for o in state.identities) == [
        "corp.iam:role:iam-bttrm-web-ro-role",
        "corp.iam:user:alice",
    ]
    assert [b.subject_name for b in state.bindings if b.subject_kind == "User"] == ["corp.iam:user:alice"]


@pytest.mark.parametrize(
    "username", ["ops-admin", "alice@example.com", "eks-iam-sync:user:bob", "eks-iam-sync:role:ci", "{{SessionName}}"]
)
def test_an_explicit_username_that_could_collide_is_refused_at_runtime_too(username: str) -> None:
    roles = (SEED.identities.roles[0].model_copy(update={"username": username}),)
    config = SEED.model_copy(update={"identities": SEED.identities.model_copy(update={"roles": roles})})
    role = IamRole("iam-bttrm-web-ro-role", f"arn:aws:iam::{ACCT}:role/iam-bttrm-web-ro-role")
    state = desired_state(config, IamSnapshot(roles=(role,)), LIVE)
    assert state.identities == ()
    [refusal] = state.refusals
    assert (refusal.principal, refusal.subject, refusal.reason) == (role.arn, username, "username-collision")


@pytest.mark.parametrize("username", ["eks-iam-sync:deployers", "ci:{{SessionName}}", "sso:{{SessionNameRaw}}"])
def test_an_explicit_username_under_the_prefix_or_per_session_is_kept(username: str) -> None:
    roles = (SEED.identities.roles[0].model_copy(update={"username": username}),)
    config = SEED.model_copy(update={"identities": SEED.identities.model_copy(update={"roles": roles})})
    role = IamRole("iam-bttrm-web-ro-role", f"arn:aws:iam::{ACCT}:role/iam-bttrm-web-ro-role")
    [owned] = desired_state(config, IamSnapshot(roles=(role,)), LIVE).identities
    assert owned.entry.username == username


def test_a_tag_grant_on_a_per_session_username_is_refused_not_bound_to_a_literal_template() -> None:
    roles = (SEED.identities.roles[0].model_copy(update={"username": "ci:{{SessionName}}"}),)
    config = SEED.model_copy(update={"identities": SEED.identities.model_copy(update={"roles": roles})})
    role = IamRole(
        "iam-bttrm-web-ro-role", f"arn:aws:iam::{ACCT}:role/iam-bttrm-web-ro-role", {"eks-access/ns3": "pods-ro"}
    )
    state = desired_state(config, IamSnapshot(roles=(role,)), LIVE)
    assert [r.reason for r in state.refusals] == ["session-username"]
    assert not [b for b in state.bindings if b.subject_kind == "User"]


def test_migration_moves_a_tag_binding_to_the_prefixed_username_and_removes_the_old_one() -> None:
    """A binding made by the previous release names the bare IAM name: the next run creates the
    binding of the prefixed username and deletes the old one (owned, no longer desired)."""
    user = alice(tags={"eks-access/ns3": "pods-ro"})
    state = desired_state(SEED, IamSnapshot(users=(user,)), LIVE)
    old = observed(
        "ns3",
        "eks-iam-sync:tag:alice:pods-ro",
        "rbac-bttrm-pods-ro-cluster-role",
        ("User", "alice"),
        "tag eks-access/ns3=pods-ro",
        user.arn,
    )
    tag_bindings = [b for b in state.bindings if b.subject_kind == "User"]
    actions = plan_bindings(tag_bindings, [old], PrincipalScope.of(["alice"]))
    assert [(a.verb, a.key) for a in actions] == [
        ("create", ("ns3", "eks-iam-sync:tag:eks-iam-sync:user:alice:pods-ro")),
        ("delete", ("ns3", "eks-iam-sync:tag:alice:pods-ro")),
    ]


# Issue 24, item 3: system namespaces are a floor for tag grants too.


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease"])
def test_a_tag_never_grants_a_system_namespace_a_customised_denied_list_left_open(namespace: str) -> None:
    config = _with_tag_profiles({"pods-ro": "rbac-bttrm-pods-ro-cluster-role"}, denied=("secrets-ns",))
    state = desired_state(config, IamSnapshot(users=(alice(tags={f"eks-access/{namespace}": "pods-ro"}),)), LIVE)
    [refusal] = state.refusals
    assert refusal.reason == "system-namespace" and not [b for b in state.bindings if b.subject_kind == "User"]


def test_a_profile_that_opts_in_grants_system_namespaces_and_the_string_form_still_works() -> None:
    config = _with_tag_profiles(
        {"pods-ro": "rbac-bttrm-pods-ro-cluster-role", "ops": "{clusterRole: edit, allowSystemNamespaces: true}"},
        denied=("kube-public",),
    )
    tags = {"eks-access/kube-system": "ops", "eks-access/kube-node-lease": "pods-ro", "eks-access/ns3": "pods-ro"}
    state = desired_state(config, IamSnapshot(users=(alice(tags=tags),)), LIVE)
    granted = sorted((b.namespace, b.cluster_role) for b in state.bindings if b.subject_kind == "User")
    assert granted == [("kube-system", "edit"), ("ns3", "rbac-bttrm-pods-ro-cluster-role")]
    assert [(r.subject, r.reason) for r in state.refusals] == [
        ("eks-access/kube-node-lease=pods-ro", "system-namespace")
    ]
    denied = desired_state(config, IamSnapshot(users=(alice(tags={"eks-access/kube-public": "ops"}),)), LIVE)
    assert [r.reason for r in denied.refusals] == ["denied-namespace"]  # deniedNamespaces still wins


def test_a_privileged_profile_never_reaches_a_system_namespace_even_allowlisted_and_unvalidated() -> None:
    from chalicelib.config import TagProfile  # noqa: PLC0415

    profile = TagProfile(cluster_role="admin", allow_system_namespaces=True)
    grants = SEED.tag_grants.model_copy(update={"profiles": {"ops": profile}, "denied_namespaces": ()})
    config = SEED.model_copy(update={"tag_grants": grants, "allow_privileged_cluster_roles": ("admin",)})
    tags = {"eks-access/kube-system": "ops", "eks-access/ns3": "ops"}
    state = desired_state(config, IamSnapshot(users=(alice(tags=tags),)), LIVE)
    assert [(b.namespace, b.cluster_role) for b in state.bindings if b.subject_kind == "User"] == [("ns3", "admin")]
    assert [(r.subject, r.reason) for r in state.refusals] == [
        ("eks-access/kube-system=ops", "privileged-cluster-role")
    ]


# Issue 24, item 7: IAM names are ASCII; only ASCII case folds.


def test_a_look_alike_group_or_role_name_from_iam_matches_no_configured_name() -> None:
    config = parse_config(
        DEFAULT_CONFIG_PATH.read_text()
        .replace("iamGroup: iam-bttrm-web-ro-group", "iamGroup: kube-devs")
        .replace("iamRole: iam-bttrm-web-ro-role", "iamRole: kiosk")
    )
    kelvin = "\u212a"  # KELVIN SIGN: str.lower() gives an ASCII "k"
    user = IamUser("kate", f"arn:aws:iam::{ACCT}:user/kate", (f"{kelvin}ube-devs",))
    role = IamRole(f"{kelvin}iosk", f"arn:aws:iam::{ACCT}:role/{kelvin}iosk")
    assert desired_state(config, IamSnapshot(users=(user,), roles=(role,)), LIVE).identities == ()
    ascii_case = (IamUser("kate", f"arn:aws:iam::{ACCT}:user/kate", ("KUBE-DEVS",)),)
    assert (
        len(
            desired_state(
                config,
                IamSnapshot(users=ascii_case, roles=(IamRole("KIOSK", f"arn:aws:iam::{ACCT}:role/KIOSK"),)),
                LIVE,
            ).identities
        )
        == 2
    )
