"""The test environment itself: RBAC is enforced, EKS tokens authenticate exactly as on EKS."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.adapters.eks_token import TOKEN_PREFIX
from tests.conftest import Environment
from tests.harness.principals import (
    Principal,
    can,
    eventually,
    forbidden_as,
    iam_user,
    role_session,
    write_aws_auth,
)
from tests.harness.service import reset_aws_auth

pytestmark = pytest.mark.cluster


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clean_aws_auth(env: Environment) -> Iterator[None]:
    reset_aws_auth(env.plane)
    yield
    reset_aws_auth(env.plane)


@pytest.fixture(scope="module")
def pod_reader(env: Environment) -> str:
    """A ClusterRole with explicit rules: aggregated roles like `view` stay empty without a controller manager."""
    name = unique("pod-reader")
    client.RbacAuthorizationV1Api(env.admin()).create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name=name),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list", "watch"])],
        )
    )
    return name


def status_of(env: Environment, token: str) -> int:
    try:
        client.CoreV1Api(env.plane.client_for(token)).list_namespace()
    except ApiException as err:
        return int(err.status)
    return 200


def test_rbac_is_enforced(env: Environment, pod_reader: str) -> None:
    rbac = client.RbacAuthorizationV1Api(env.admin())
    auth = client.AuthorizationV1Api(env.admin())
    group = unique("readers")

    def allowed() -> bool:
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user="someone",
                groups=[group],
                resource_attributes=client.V1ResourceAttributes(verb="list", resource="pods", namespace="default"),
            )
        )
        return bool(auth.create_subject_access_review(review).status.allowed)

    assert not allowed()
    rbac.create_namespaced_role_binding(
        "default",
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=group),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=pod_reader),
            subjects=[client.RbacV1Subject(kind="Group", name=group, api_group="rbac.authorization.k8s.io")],
        ),
    )
    assert eventually(allowed)


def test_mapped_user_gets_mapped_username_and_groups(env: Environment, clean_aws_auth: None, pod_reader: str) -> None:
    user = iam_user(unique("alice"), path="/developers/")
    assert ":user/developers/" in user.arn
    group = unique("pod-readers")
    write_aws_auth(env.plane, map_users=[{"userarn": user.arn, "username": "alice", "groups": [group]}])
    client.RbacAuthorizationV1Api(env.admin()).create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=group),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=pod_reader),
            subjects=[client.RbacV1Subject(kind="Group", name=group, api_group="rbac.authorization.k8s.io")],
        )
    )
    api = env.plane.client_for(user.token(env.cluster_name))
    assert eventually(lambda: can(api, "list", "pods", "default"))
    assert not can(api, "create", "pods", "default")
    assert 'User "alice"' in forbidden_as(api)


def test_unmapped_user_is_rejected(env: Environment, clean_aws_auth: None) -> None:
    mapped, unmapped = iam_user(unique("mapped")), iam_user(unique("unmapped"))
    write_aws_auth(env.plane, map_users=[{"userarn": mapped.arn, "username": "mapped", "groups": []}])
    assert status_of(env, mapped.token(env.cluster_name)) == 403  # authenticated, not authorised
    assert status_of(env, unmapped.token(env.cluster_name)) == 401
    assert env.authenticator.decisions[-1] == ("rejected", f"ARN is not mapped: {unmapped.arn}")


def test_revoked_mapping_is_seen_at_once(env: Environment, clean_aws_auth: None) -> None:
    user = iam_user(unique("bob"))
    write_aws_auth(env.plane, map_users=[{"userarn": user.arn, "username": "bob", "groups": []}])
    assert status_of(env, user.token(env.cluster_name)) == 403
    write_aws_auth(env.plane, map_users=[])
    assert status_of(env, user.token(env.cluster_name)) == 401


def test_role_session_is_mapped_through_its_canonical_role_arn(env: Environment, clean_aws_auth: None) -> None:
    developer = iam_user(unique("carol"))
    role_name = unique("web-ro-role")
    session = role_session(developer, role_name, "carol@example.com", path="/teams/web/")
    account = session.arn.split(":")[4]
    canonical = f"arn:aws:iam::{account}:role/{role_name}"
    assert session.arn != canonical  # IAM reports the path; STS and the authenticator drop it
    write_aws_auth(env.plane, map_roles=[{"rolearn": canonical, "username": "web:{{SessionName}}", "groups": []}])
    assert 'User "web:carol-example.com"' in forbidden_as(env.plane.client_for(session.token(env.cluster_name)))

    write_aws_auth(env.plane, map_roles=[{"rolearn": session.arn, "username": "with-path", "groups": []}])
    assert status_of(env, session.token(env.cluster_name)) == 401  # a role ARN with a path never matches


def _rewrite(token: str, change: dict[str, str | None], netloc: str | None = None, path: str | None = None) -> str:
    url = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :] + "==").decode()
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in change]
    query += [(k, v) for k, v in change.items() if v is not None]
    url = urlunsplit((parts.scheme, netloc or parts.netloc, path or parts.path, urlencode(query), ""))
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _bad_tokens(good: str, other_cluster: str) -> dict[str, tuple[str, str]]:
    return {
        "no prefix": (good[len(TOKEN_PREFIX) :], "prefix"),
        "padded base64": (good + "==", "base64"),
        "too large": (good + "A" * 4096, "too large"),
        "foreign host": (_rewrite(good, {}, netloc="sts.evil.example"), "hostname"),
        "wrong path": (_rewrite(good, {}, path="/x"), "path"),
        "extra parameter": (_rewrite(good, {"X-Extra": "1"}), "non-whitelisted"),
        "other action": (_rewrite(good, {"Action": "GetSessionToken"}), "action"),
        "cluster id unsigned": (_rewrite(good, {"X-Amz-SignedHeaders": "host"}), "x-k8s-aws-id"),
        "expires too long": (_rewrite(good, {"X-Amz-Expires": "901"}), "X-Amz-Expires"),
        "tampered signature": (_rewrite(good, {"X-Amz-Signature": "0" * 64}), "signature"),
        "another cluster": (other_cluster, "signature"),
    }


def test_every_kind_of_malformed_token_is_rejected(env: Environment, clean_aws_auth: None) -> None:
    user = iam_user(unique("mallory"))
    write_aws_auth(env.plane, map_users=[{"userarn": user.arn, "username": "mallory", "groups": []}])
    good = user.token(env.cluster_name)
    assert status_of(env, good) == 403
    for case, (token, reason) in _bad_tokens(good, user.token("some-other-cluster")).items():
        assert status_of(env, token) == 401, case
        verdict, message = env.authenticator.decisions[-1]
        assert verdict == "rejected" and reason.lower() in message.lower(), (case, message)


def test_an_expired_token_is_rejected(env: Environment, clean_aws_auth: None) -> None:
    user = iam_user(unique("late"))
    write_aws_auth(env.plane, map_users=[{"userarn": user.arn, "username": "late", "groups": []}])
    token = user.token(env.cluster_name)
    real_clock = env.authenticator.clock
    env.authenticator.clock = lambda: real_clock() + 15 * 60 + 1
    try:
        assert status_of(env, token) == 401  # failures are never cached by the apiserver
        assert "expired" in env.authenticator.decisions[-1][1]
    finally:
        env.authenticator.clock = real_clock
    assert status_of(env, token) == 403


def test_principal_helper_keeps_credentials_apart(env: Environment) -> None:
    first, second = iam_user(unique("p1")), iam_user(unique("p2"))
    assert isinstance(first, Principal)
    ident = first.session.client("sts").get_caller_identity()
    assert ident["Arn"] == first.arn != second.arn
