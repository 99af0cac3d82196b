"""Desired state and RoleBindings on the real apiserver, reconciled AS THE SERVICE, holding only the
shipped infra/kubernetes/rbac.yaml; what users can do is asked with their own tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.adapters.iam import IamReader
from chalicelib.adapters.observability import LogObserver
from chalicelib.adapters.shell import ports_for
from chalicelib.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config, parse_config
from chalicelib.engine.awsauth.ledger import Ledger, LedgerRecord
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.model.bindings import binding_name
from chalicelib.model.ownership import LEDGER_ANNOTATION, MANAGED_BY_SELECTOR
from chalicelib.model.principals import PrincipalScope
from chalicelib.run.reconcile import ClusterReport, Options, reconcile_cluster
from tests.conftest import Environment
from tests.harness.principals import Principal, assert_seed_access, can, eventually, iam_user
from tests.harness.service import (
    Service,
    ensure_cluster_role,
    ensure_namespace,
    prepare_seed_cluster,
)

pytestmark = pytest.mark.cluster

SEED = load_config(DEFAULT_CONFIG_PATH)
GROUP = SEED.identities.groups[0].iam_group
POD_READER = SEED.namespace_grants[0].cluster_role
PROJECTS = tuple(SEED.namespace_grants[0].namespaces or ())


@pytest.fixture(scope="module")
def iam() -> object:
    return boto3.client("iam")  # the seed group is made by prepare_seed_cluster


@pytest.fixture
def cluster(env: Environment, service: Service, iam) -> Iterator[Environment]:
    prepare_seed_cluster(env.plane, service, extra_namespaces=("team-ns3",))
    ensure_cluster_role(env.plane, "pod-writer", ("create", "delete"))
    yield env


def reconcile(
    env: Environment, service: Service, config: Config = SEED, scope: PrincipalScope | None = None, **options
) -> ClusterReport:
    reader = IamReader()
    snapshot = reader.full_snapshot() if scope is None else reader.scoped_snapshot(scope.users, scope.roles)
    ports = ports_for(env.cluster_name, service.api(env.plane, env.cluster_name), None)
    settings = Options(own_arns=frozenset({service.role_arn}), **options)
    return reconcile_cluster(config, ports, snapshot, LogObserver(env.cluster_name), scope, settings)


def developer(iam, tags: dict[str, str] | None = None, in_group: bool = True) -> tuple[Principal, str]:
    name = f"dev-{uuid.uuid4().hex[:8]}"
    person = iam_user(name)
    if in_group:
        iam.add_user_to_group(GroupName=GROUP, UserName=name)
    if tags:
        iam.tag_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return person, name


def as_user(env: Environment, person: Principal) -> client.ApiClient:
    return env.plane.client_for(person.token(env.cluster_name))


def owned_bindings(env: Environment) -> dict[tuple[str, str], client.V1RoleBinding]:
    rbac = client.RbacAuthorizationV1Api(env.admin())
    found = rbac.list_role_binding_for_all_namespaces(label_selector=MANAGED_BY_SELECTOR).items
    return {(b.metadata.namespace, b.metadata.name): b for b in found}


def test_seed_end_state_as_the_service(env: Environment, service: Service, cluster: Environment, iam) -> None:
    person, name = developer(iam)
    report = reconcile(env, service)
    assert report.applied.identities.status == "written"
    assert report.applied.bindings.refused == [] and report.applied.bindings.failed == []
    assert_seed_access(as_user(env, person), PROJECTS)
    entries = read_aws_auth(client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system").data)
    mine = [e for e in entries.entries("mapUsers") if e.arn == person.arn]
    assert [(e.username, e.groups) for e in mine] == [(f"eks-iam-sync:user:{name}", ("rbac-bttrm-web-ro-group",))]
    assert reconcile(env, service).changed is False  # a second run writes nothing

    iam.remove_user_from_group(GroupName=GROUP, UserName=name)
    reconcile(env, service, scope=PrincipalScope.of([name]))
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(as_user(env, person)).list_namespaced_pod(PROJECTS[0])
    assert denied.value.status == 401  # no longer mapped at all


def test_a_tag_grant_adds_a_binding_and_its_removal_deletes_it(
    env: Environment, service: Service, cluster: Environment, iam
) -> None:
    person, name = developer(iam, in_group=False)
    reconcile(env, service)
    iam.tag_user(UserName=name, Tags=[{"Key": "eks-access/team-ns3", "Value": "pods-ro"}])
    report = reconcile(env, service, scope=PrincipalScope.of([name]), event_id="evt-tag")
    key = ("team-ns3", binding_name("tag", f"eks-iam-sync:user:{name}", "pods-ro"))
    assert [a.verb for a in report.plan.bindings] == ["create"] or key in owned_bindings(env)
    binding = owned_bindings(env)[key]
    assert binding.metadata.annotations["eks-iam-sync.io/source"] == "tag eks-access/team-ns3=pods-ro"
    assert binding.metadata.annotations["eks-iam-sync.io/principal"] == person.arn
    assert binding.metadata.annotations["eks-iam-sync.io/event-id"] == "evt-tag"
    api = as_user(env, person)
    assert eventually(lambda: can(api, "list", "pods", "team-ns3"))
    assert not can(api, "list", "pods", PROJECTS[0])

    iam.untag_user(UserName=name, TagKeys=["eks-access/team-ns3"])
    reconcile(env, service, scope=PrincipalScope.of([name]))
    assert key not in owned_bindings(env)
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(as_user(env, person)).list_namespaced_pod("team-ns3")
    assert denied.value.status == 401  # the tag was its only grant: its identity entry went too


def test_cluster_admin_through_a_tag_is_refused_by_the_service_and_by_the_api_server(
    env: Environment,
    service: Service,
    cluster: Environment,
    iam,
) -> None:
    text = DEFAULT_CONFIG_PATH.read_text().replace(
        "    pods-ro: rbac-bttrm-pods-ro-cluster-role\n",
        "    pods-ro: rbac-bttrm-pods-ro-cluster-role\n    admin: cluster-admin\n    writer: pod-writer\n",
    )
    person, name = developer(iam, tags={"eks-access/team-ns3": "admin"}, in_group=False)
    with pytest.raises(ConfigError, match="'cluster-admin' is privileged"):
        parse_config(text)  # validate refuses it first
    seed = parse_config(DEFAULT_CONFIG_PATH.read_text())
    profiles = {"pods-ro": "rbac-bttrm-pods-ro-cluster-role", "admin": "cluster-admin", "writer": "pod-writer"}
    unvalidated = seed.model_copy(update={"tag_grants": seed.tag_grants.model_copy(update={"profiles": profiles})})
    report = reconcile(env, service, unvalidated)  # and the runtime too, had validation been bypassed
    assert [r.reason for r in report.desired.refusals if r.principal == person.arn] == ["privileged-cluster-role"]
    assert not any(ns == "team-ns3" for ns, _ in owned_bindings(env))

    forced = parse_config(text + "allowPrivilegedClusterRoles: [cluster-admin]\n")  # past the service's own check
    report = reconcile(env, service, forced)
    assert len(report.applied.bindings.refused) == 1 and "HTTP 403" in report.applied.bindings.refused[0]
    assert "cluster-admin" in report.applied.bindings.refused[0]
    assert not any(ns == "team-ns3" for ns, _ in owned_bindings(env))

    iam.tag_user(UserName=name, Tags=[{"Key": "eks-access/team-ns3", "Value": "writer"}])  # not in rbac.yaml either
    report = reconcile(env, service, unvalidated, scope=PrincipalScope.of([name]))
    assert len(report.applied.bindings.refused) == 1 and "pod-writer" in report.applied.bindings.refused[0]


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("eks-access/kube-system=pods-ro", "denied-namespace"),
        ("eks-access/team-ns3=nope", "unknown-profile"),
        ("eks-access/Bad_NS=pods-ro", "invalid-namespace"),
        ("eks-access/*=pods-ro", "cluster-wide"),
    ],
)
def test_bad_tags_are_refused_and_create_nothing(
    env: Environment, service: Service, cluster: Environment, iam, tag: str, reason: str
) -> None:
    key, value = tag.split("=")
    person, _ = developer(iam, tags={key: value}, in_group=False)
    report = reconcile(env, service)
    assert [r.reason for r in report.desired.refusals if r.principal == person.arn] == [reason]
    assert owned_bindings(env).keys() == {
        (ns, binding_name("group", "rbac-bttrm-web-ro-group", POD_READER)) for ns in PROJECTS
    }


def test_unlabelled_bindings_are_left_alone_and_drift_is_repaired(
    env: Environment, service: Service, cluster: Environment, iam
) -> None:
    rbac = client.RbacAuthorizationV1Api(env.admin())
    name = binding_name("group", "rbac-bttrm-web-ro-group", POD_READER)
    squatter = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
        subjects=[client.RbacV1Subject(kind="Group", name="someone-else", api_group="rbac.authorization.k8s.io")],
    )
    rbac.create_namespaced_role_binding(PROJECTS[0], squatter)  # same name, not labelled: not ours
    rbac.create_namespaced_role_binding("team-ns3", squatter)  # not desired there either
    try:
        report = reconcile(env, service)
        assert len(report.applied.bindings.conflicts) == 1 and PROJECTS[0] in report.applied.bindings.conflicts[0]
        assert rbac.read_namespaced_role_binding(name, PROJECTS[0]).subjects[0].name == "someone-else"
        assert rbac.read_namespaced_role_binding(name, "team-ns3").subjects[0].name == "someone-else"

        ours = (PROJECTS[1], name)
        rbac.delete_namespaced_role_binding(name, PROJECTS[1])  # deleted by hand
        reconcile(env, service)
        assert ours in owned_bindings(env)
        edited = owned_bindings(env)[ours]
        edited.subjects[0].name = "intruders"  # edited by hand
        rbac.replace_namespaced_role_binding(name, PROJECTS[1], edited)
        report = reconcile(env, service)
        assert [a.verb for a in report.plan.bindings if a.key == ours] == ["update"]
        assert len(report.applied.bindings.conflicts) == 1  # the squatter is still left alone
        assert owned_bindings(env)[ours].subjects[0].name == "rbac-bttrm-web-ro-group"
    finally:
        rbac.delete_namespaced_role_binding(name, PROJECTS[0])
        rbac.delete_namespaced_role_binding(name, "team-ns3")


def test_a_namespace_created_later_gets_its_binding_on_the_next_reconcile(
    env: Environment, service: Service, cluster: Environment
) -> None:
    later = f"later-{uuid.uuid4().hex[:6]}"
    config = parse_config(
        DEFAULT_CONFIG_PATH.read_text().replace(
            "namespaces: [bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]", f"namespaces: [bttrm-web-proj-1-ns, {later}]"
        )
    )
    report = reconcile(env, service, config)
    assert report.desired.skipped == (f"namespaceGrants[0]: namespace {later!r} does not exist yet",)
    ensure_namespace(env.plane, later)
    reconcile(env, service, config)
    assert (later, binding_name("group", "rbac-bttrm-web-ro-group", POD_READER)) in owned_bindings(env)
    assert (PROJECTS[1], binding_name("group", "rbac-bttrm-web-ro-group", POD_READER)) not in owned_bindings(env)


def test_the_service_own_mapping_is_protected(env: Environment, service: Service, cluster: Environment, iam) -> None:
    person, _ = developer(iam)
    reconcile(env, service)
    core = client.CoreV1Api(env.admin())
    cm = core.read_namespaced_config_map("aws-auth", "kube-system")
    ledger = Ledger.parse(cm.metadata.annotations[LEDGER_ANNOTATION])
    assert ledger.owns(person.arn) and not ledger.owns(service.role_arn)
    assert any(e.arn == service.role_arn for e in read_aws_auth(cm.data).entries("mapRoles"))

    # a ledger tampered to claim the service's own mapping: removing it would lock the service out
    claimed = Ledger.of([*ledger.records.values(), LedgerRecord(service.role_arn, "mapRoles", "x")]).serialize()
    cm.metadata.annotations[LEDGER_ANNOTATION] = claimed
    cm = core.replace_namespaced_config_map("aws-auth", "kube-system", cm)
    report = reconcile(env, service)
    assert report.applied.identities.status == "refused"
    assert [r.reason for r in report.applied.identities.refusals] == ["protected-entry-changed"]
    assert (
        core.read_namespaced_config_map("aws-auth", "kube-system").metadata.resource_version
        == cm.metadata.resource_version
    )


def test_a_membership_event_binds_its_group_s_selected_namespaces_as_the_api_server_selects_them(
    env: Environment, service: Service, cluster: Environment, iam
) -> None:
    team = f"sel-{uuid.uuid4().hex[:6]}"
    chosen, frozen, other = f"{team}-a", f"{team}-frozen", f"{team}-other"
    ensure_namespace(env.plane, chosen, {"team": team, "tier": "dev"})
    ensure_namespace(env.plane, frozen, {"team": team, "tier": "dev", "frozen": "yes"})
    ensure_namespace(env.plane, other, {"team": "someone-else", "tier": "dev"})
    config = parse_config(
        DEFAULT_CONFIG_PATH.read_text().replace(
            "    namespaces: [bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]",
            f"    namespaceSelector:\n      matchLabels: {{team: {team}}}\n      matchExpressions:\n"
            "        - {key: tier, operator: In, values: [dev, test]}\n"
            "        - {key: frozen, operator: DoesNotExist}",
        )
    )
    person, name = developer(iam)
    # The event alone, no full run before it: the group's grant is complete for the new member.
    report = reconcile(env, service, config, PrincipalScope.of([name]), rebinds=False)
    assert report.applied.identities.status == "written"
    name_of_binding = binding_name("group", "rbac-bttrm-web-ro-group", POD_READER)
    assert [(a.verb, a.key) for a in report.plan.bindings] == [("create", (chosen, name_of_binding))]
    assert eventually(lambda: can(as_user(env, person), "list", "pods", chosen))
    assert not can(as_user(env, person), "list", "pods", frozen)
    assert not can(as_user(env, person), "list", "pods", other)
    # A second event for the same group finds the binding by its group label: nothing to write.
    again = reconcile(env, service, config, PrincipalScope.of([name]), rebinds=False)
    assert again.plan.bindings == ()
