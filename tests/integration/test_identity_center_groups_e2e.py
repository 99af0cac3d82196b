"""IAM Identity Center groups, per person, on the real apiserver with each person's own token (issue
25): alice (team-a) and bob (team-b) both sign in through the same permission set's roles (three
role suffixes) as sessions named after their Identity Store UserNames; the Identity Store is moto's,
in server mode. Removing alice from team-a removes her binding on the event, bob untouched; a
throttled Identity Store removes nothing. On CONFIG_MAP (aws-auth) and API_AND_CONFIG_MAP (access
entries)."""

from __future__ import annotations

import functools
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.errors import SyncError
from chalicelib.model.ownership import MANAGED_BY_SELECTOR
from tests.conftest import Environment
from tests.harness.cloudtrail import identity_store_event
from tests.harness.function import Function, cluster_config, deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, assumed, eventually, iam_user
from tests.harness.service import SEED_CLUSTER_ROLE, Service, ensure_namespace, prepare_seed_cluster
from tests.integration.test_access_entries_e2e import BOTH, EntryCluster, clusters, fresh  # noqa: F401 - fixtures

pytestmark = pytest.mark.cluster

SSO_PATH = "/aws-reserved/sso.amazonaws.com/us-east-2/"
STORE = "d-9067a1b2c3"
ACCOUNT = "123456789012"


@dataclass
class World:
    """One test's Identity Center: a permission set with three roles, two teams, their namespaces."""

    permission_set: str
    roles: tuple[str, ...]
    teams: dict[str, str]  # group DisplayName -> its namespace
    group_ids: dict[str, str]
    users: dict[str, str]  # person -> Identity Store user id
    user_names: dict[str, str]  # person -> UserName (the session name)
    memberships: dict[str, str]  # person -> membership id

    def config(self, base: str) -> str:
        config = yaml.safe_load(base)
        config["identities"]["permissionSets"] = [{"name": self.permission_set}]  # no groups: access is per person
        config["identityCenter"] = {
            "identityStoreId": STORE,
            "region": "us-east-1",
            "groupGrants": [
                {
                    "group": group,
                    "permissionSet": self.permission_set,
                    "clusterRole": SEED_CLUSTER_ROLE,
                    "namespaces": [ns],
                }
                for group, ns in self.teams.items()
            ],
        }
        return yaml.safe_dump(config)


def make_world(plane: ControlPlane) -> World:
    tag = uuid.uuid4().hex[:6]
    permission_set = f"Developer{tag}"
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}'
    )
    roles = tuple(f"AWSReservedSSO_{permission_set}_{uuid.uuid4().hex[:16]}" for _ in range(3))
    for role in roles:  # as if provisioned in three accounts: three suffixes, one permission set
        boto3.client("iam").create_role(RoleName=role, Path=SSO_PATH, AssumeRolePolicyDocument=trust)
    store = boto3.client("identitystore", region_name="us-east-1")
    teams = {f"team-a-{tag}": f"team-a-{tag}", f"team-b-{tag}": f"team-b-{tag}"}
    for namespace in teams.values():
        ensure_namespace(plane, namespace)
    group_ids = {g: store.create_group(IdentityStoreId=STORE, DisplayName=g)["GroupId"] for g in teams}
    users, names, memberships = {}, {}, {}
    for person, group in zip(("alice", "bob"), teams, strict=True):
        names[person] = f"{person}.{tag}@example.com"
        users[person] = store.create_user(
            IdentityStoreId=STORE,
            UserName=names[person],
            DisplayName=f"{person.title()} Example",
            Name={"GivenName": person.title(), "FamilyName": "Example"},
        )["UserId"]
        memberships[person] = store.create_group_membership(
            IdentityStoreId=STORE, GroupId=group_ids[group], MemberId={"UserId": users[person]}
        )["MembershipId"]
    return World(permission_set, roles, teams, group_ids, users, names, memberships)


def signs_in(world: World, person: str, role: str) -> Principal:
    """What `aws sso login` gives the person: a session of the permission set's role, named after
    their Identity Store UserName, with a token of their own."""
    caller = iam_user(f"{person}-{uuid.uuid4().hex[:6]}")
    session = assumed(caller.session, f"arn:aws:iam::{ACCOUNT}:role{SSO_PATH}{role}", world.user_names[person])
    return Principal(f"arn:aws:iam::{ACCOUNT}:role/{role}", session)


def lists_pods(plane: ControlPlane, cluster: str, who: Principal, namespace: str) -> int:
    try:
        client.CoreV1Api(plane.client_for(who.token(cluster))).list_namespaced_pod(namespace)
    except ApiException as err:
        return int(err.status)
    return 200


def reaches(plane: ControlPlane, cluster: str, who: Principal, namespace: str) -> bool:
    return lists_pods(plane, cluster, who, namespace) == 200


def owned(plane: ControlPlane, namespace: str) -> dict[str, tuple[str, str]]:
    """The service's bindings in ``namespace``: name -> (User subject, resourceVersion)."""
    found = client.RbacAuthorizationV1Api(plane.admin()).list_namespaced_role_binding(
        namespace, label_selector=MANAGED_BY_SELECTOR
    )
    return {b.metadata.name: (b.subjects[0].name, b.metadata.resource_version) for b in found.items}


class _Throttling(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        del args


@pytest.fixture
def throttled_store() -> Iterator[None]:
    """The Identity Store answering ThrottlingException to everything, as AWS does past its rate."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    saved = os.environ.get("AWS_ENDPOINT_URL_IDENTITYSTORE")
    os.environ["AWS_ENDPOINT_URL_IDENTITYSTORE"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL_IDENTITYSTORE", None)
        else:
            os.environ["AWS_ENDPOINT_URL_IDENTITYSTORE"] = saved
        server.shutdown()


def story(fn: Function, plane: ControlPlane, cluster: str, world: World, request: pytest.FixtureRequest) -> None:
    team_a, team_b = world.teams.values()
    fn.invoke("reconcile_all")
    for role in world.roles:  # the role's own mapping is shared, whichever of the three they sign in through
        alice, bob = signs_in(world, "alice", role), signs_in(world, "bob", role)
        assert eventually(functools.partial(reaches, plane, cluster, alice, team_a))
        assert lists_pods(plane, cluster, alice, team_b) == 403
        assert eventually(functools.partial(reaches, plane, cluster, bob, team_b))
        assert lists_pods(plane, cluster, bob, team_a) == 403
    username = world.user_names["alice"].replace("@", "-")
    assert {s for s, _ in owned(plane, team_a).values()} == {f"sso:{username}"}  # {{SessionName}}: '@' -> '-'
    bob_before = owned(plane, team_b)

    store = boto3.client("identitystore", region_name="us-east-1")
    store.delete_group_membership(IdentityStoreId=STORE, MembershipId=world.memberships["alice"])
    removed = identity_store_event("DeleteGroupMembership", {"identityStoreId": STORE, "membershipId": "x"})
    assert fn.invoke("on_iam_event", removed)["status"] == "reconciled"
    alice, bob = signs_in(world, "alice", world.roles[0]), signs_in(world, "bob", world.roles[0])
    assert eventually(lambda: lists_pods(plane, cluster, alice, team_a) == 403)
    assert owned(plane, team_a) == {}
    assert owned(plane, team_b) == bob_before  # bob's binding not even rewritten
    assert lists_pods(plane, cluster, bob, team_b) == 200

    # A throttled Identity Store: bob is removed from team-b, and nothing is removed until it answers.
    store.delete_group_membership(IdentityStoreId=STORE, MembershipId=world.memberships["bob"])
    request.getfixturevalue("throttled_store")
    with pytest.raises(SyncError, match="identity-store-unread"):
        fn.invoke("on_iam_event", removed)
    with pytest.raises(SyncError, match="identity-store-unread"):
        fn.invoke("reconcile_all")
    assert owned(plane, team_b) == bob_before
    assert lists_pods(plane, cluster, signs_in(world, "bob", world.roles[1]), team_b) == 200


def test_alice_and_bob_share_a_permission_set_on_config_map_and_each_reaches_only_their_team(
    env: Environment, service: Service, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    prepare_seed_cluster(env.plane, service)
    world = make_world(env.plane)
    with deployed(service, world.config(cluster_config(env.plane)), tmp_path) as fn:
        story(fn, env.plane, env.cluster_name, world, request)
    mapped = client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system").data["mapRoles"]
    assert all(f"role/{role}" in mapped for role in world.roles)  # path-free, as STS reports it


def test_alice_and_bob_share_a_permission_set_on_access_entries_and_each_reaches_only_their_team(
    fresh: dict[str, EntryCluster],  # noqa: F811 - the fixture from the access-entries suite
    service: Service,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    from tests.integration.test_access_entries_e2e import config_text  # noqa: PLC0415

    both = fresh[BOTH]
    world = make_world(both.plane)
    with deployed(service, world.config(config_text(fresh, only=BOTH)), tmp_path) as fn:
        story(fn, both.plane, BOTH, world, request)
    eks = boto3.client("eks", region_name="us-east-2")
    for role in world.roles:
        entry = eks.describe_access_entry(clusterName=BOTH, principalArn=f"arn:aws:iam::{ACCOUNT}:role{SSO_PATH}{role}")
        assert entry["accessEntry"]["username"] == "sso:{{SessionName}}"


@pytest.fixture(autouse=True)
def _no_leftover_roles() -> Iterator[None]:
    yield
    iam = boto3.client("iam")
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=SSO_PATH):
        for role in page["Roles"]:
            iam.delete_role(RoleName=role["RoleName"])


def test_the_adapter_reads_moto_s_identity_store_as_itself_or_as_identity_center_s_role(aws_endpoint: str) -> None:
    """GetGroupId, ListGroupMemberships, DescribeUser (UserName, not display name), IsMemberInGroups,
    not found as None; through identityCenter.roleArn in another account, that account's store."""
    from chalicelib.adapters.shell import AwsShell  # noqa: PLC0415 - the SDK side, as the Lambdas build it
    from chalicelib.config import IdentityCenter  # noqa: PLC0415

    store = boto3.client("identitystore", region_name="us-east-1")
    tag = uuid.uuid4().hex[:6]
    group = store.create_group(IdentityStoreId=STORE, DisplayName=f"readers-{tag}")["GroupId"]
    user = store.create_user(
        IdentityStoreId=STORE,
        UserName=f"carol.{tag}@example.com",
        DisplayName="Carol",
        Name={"GivenName": "C", "FamilyName": "E"},
    )["UserId"]
    store.create_group_membership(IdentityStoreId=STORE, GroupId=group, MemberId={"UserId": user})
    settings = IdentityCenter.model_validate({"identityStoreId": STORE, "region": "us-east-1"})
    own = AwsShell().identity_store(settings)
    assert own.group_id(f"readers-{tag}") == group and own.group_id("no-such-group") is None
    assert own.member_ids(group) == [user]
    assert own.user_name(user) == f"carol.{tag}@example.com"
    assert own.user_name("9067a1b2c3-00000000-0000-4000-8000-000000000000") is None
    assert own.member_of(user, [group]) == {group}
    role = "arn:aws:iam::111111111111:role/eks-iam-sync-identity-store"
    other = AwsShell().identity_store(settings.model_copy(update={"role_arn": role}))
    assert other.group_id(f"readers-{tag}") is None  # moto keeps each account's store apart
