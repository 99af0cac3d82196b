"""IAM Identity Center permission sets mapped by name, re-provisioning seen through events, group
renames that never revoke anyone silently, and new users and roles with tag grants — on both
backends, through the handlers, on fakes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.engine.accessentries.plan import owned as entry_owned
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.errors import PermanentError
from tests.functional.fakes import CLUSTERS, GROUP, SEED, FakeCluster, FakeShell, user_arn

SSO_PATH = "/aws-reserved/sso.amazonaws.com/us-east-2/"
IDENTITIES = {**SEED["identities"], "permissionSets": [{"name": "DevOps", "kubernetesGroups": ["devops"]}]}
SUFFIX_1, SUFFIX_2 = "0123456789abcdef", "fedcba9876543210"


def sso_role(suffix: str, name: str = "DevOps") -> str:
    return f"AWSReservedSSO_{name}_{suffix}"


@pytest.fixture
def config_path(write_config: Callable[..., Path], backend: str) -> Path:
    return write_config(identities=IDENTITIES, cluster_settings={name: {"backend": backend} for name in CLUSTERS})


def mapped(cluster: FakeCluster, backend: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """principal ARN -> (username, groups), as the cluster maps it now."""
    if backend == "configMap":
        reading = read_aws_auth(cluster.aws_auth.data)
        return {e.arn: (e.username, e.groups) for key in ("mapRoles", "mapUsers") for e in reading.entries(key)}
    assert cluster.access_entries is not None
    return {
        e.principal_arn: (e.username, tuple(sorted(e.kubernetes_groups)))
        for e in cluster.access_entries.entries.values()
        if entry_owned(e)
    }


def arn_for(backend: str, name: str, path: str = SSO_PATH) -> str:
    # aws-auth needs a role ARN without its path; an access entry needs it with it.
    return f"arn:aws:iam::123456789012:role{path if backend == 'accessEntries' else '/'}{name}"


def test_a_permission_set_is_mapped_by_name_and_re_provisioning_moves_the_mapping(
    shell: FakeShell, lambdas: Any, backend: str
) -> None:
    shell.iam_port.add_role(sso_role(SUFFIX_1), path=SSO_PATH)
    shell.iam_port.add_role("AWSReservedSSO_DevOpsAdmin_" + SUFFIX_1, path=SSO_PATH)  # another permission set
    lambdas.reconcile_all()
    for cluster in shell.clusters.values():
        now = mapped(cluster, backend)
        assert now[arn_for(backend, sso_role(SUFFIX_1))] == ("sso:{{SessionName}}", ("devops",))
        assert arn_for(backend, "AWSReservedSSO_DevOpsAdmin_" + SUFFIX_1) not in now

    # Identity Center re-provisions the permission set: a new role, then the old one deleted.
    shell.iam_port.add_role(sso_role(SUFFIX_2), path=SSO_PATH)
    lambdas.event("CreateRole", roleName=sso_role(SUFFIX_2), path=SSO_PATH)
    shell.iam_port.delete_role(sso_role(SUFFIX_1))
    lambdas.event("DeleteRole", roleName=sso_role(SUFFIX_1))
    for cluster in shell.clusters.values():
        now = mapped(cluster, backend)
        assert arn_for(backend, sso_role(SUFFIX_2)) in now and arn_for(backend, sso_role(SUFFIX_1)) not in now


def test_a_role_outside_identity_center_s_path_is_not_a_permission_set(
    shell: FakeShell, lambdas: Any, backend: str
) -> None:
    shell.iam_port.add_role(sso_role(SUFFIX_1), path="/")
    result = lambdas.event("CreateRole", roleName=sso_role(SUFFIX_1), path="/")
    assert result["status"] == "ignored"
    lambdas.reconcile_all()
    assert all(arn_for(backend, sso_role(SUFFIX_1), "/") not in mapped(c, backend) for c in shell.clusters.values())


def test_a_renamed_configured_group_is_a_loud_refusal_and_nobody_is_revoked(
    shell: FakeShell, lambdas: Any, backend: str
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    shell.iam_port.add_user("bob", groups=[GROUP])
    lambdas.reconcile_all()
    # the console renames the group: IAM keeps its members under the new name
    shell.iam_port.delete_group(GROUP)
    shell.iam_port.add_group("web-readers")
    for name in ("alice", "bob"):
        shell.iam_port.add_to_group(name, "web-readers")
    with pytest.raises(PermanentError, match=f"configured IAM group '{GROUP}' was renamed to 'web-readers'"):
        lambdas.event("UpdateGroup", groupName=GROUP, newGroupName="web-readers")
    with pytest.raises(PermanentError, match="configured-group-missing"):
        lambdas.reconcile_all()  # the schedule: still loud, still nobody revoked
    for cluster in shell.clusters.values():
        assert {user_arn("alice"), user_arn("bob")} <= set(mapped(cluster, backend))


def test_a_group_renamed_to_a_configured_name_maps_its_members(shell: FakeShell, lambdas: Any, backend: str) -> None:
    shell.iam_port.delete_group(GROUP)
    shell.iam_port.add_group("old-name")
    shell.iam_port.add_user("carol", groups=["old-name"])
    shell.iam_port.delete_group("old-name")
    shell.iam_port.add_group(GROUP)
    shell.iam_port.add_to_group("carol", GROUP)
    lambdas.event("UpdateGroup", groupName="old-name", newGroupName=GROUP)
    assert all(user_arn("carol") in mapped(c, backend) for c in shell.clusters.values())


def test_a_new_user_with_a_tag_grant_is_seen_by_its_create_event(shell: FakeShell, lambdas: Any, backend: str) -> None:
    tag = {"key": f"{SEED['tagGrants']['tagPrefix']}bttrm-web-proj-3-ns", "value": "pods-ro"}
    shell.iam_port.add_user("dave", tags={tag["key"]: tag["value"]})
    result = lambdas.event("CreateUser", userName="dave", tags=[tag])
    assert result["status"] == "reconciled"
    assert all(user_arn("dave") in mapped(c, backend) for c in shell.clusters.values())
