"""Clusters in other accounts and IAM in an identity account, on fakes: a cluster with ``roleArn`` is
reached as that role, whose mapping there is protected like the service's own; a role that cannot be
assumed fails its cluster alone; ``iam.roleArn`` reads IAM as that role, for full and event runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chalicelib.config import load_config
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.errors import Forbidden, PermanentError
from chalicelib.model.ownership import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from chalicelib.run import runner
from chalicelib.run.runtime import Runtime
from tests.functional.conftest import Lambdas
from tests.functional.fakes import GROUP, ROLE, FakeCluster, FakeIam, FakeShell, role_arn, user_arn

OTHER_ACCOUNT_ROLE = "arn:aws:iam::222222222222:role/platform/eks-iam-sync-access"
ASSUMED = "arn:aws:iam::222222222222:role/eks-iam-sync-access"  # what STS reports, and the cluster maps
EXTERNAL_ID = "bttrm-eks-west"
IDENTITY_ROLE = "arn:aws:iam::333333333333:role/eks-iam-sync-iam-reader"


def identity_user(name: str) -> str:
    return f"arn:aws:iam::333333333333:user/{name}"


def mapped(cluster: FakeCluster) -> set[str]:
    data = cluster.aws_auth.data
    return {e.arn for key in ("mapUsers", "mapRoles") for e in read_aws_auth(data).entries(key)}


@pytest.fixture
def alice(shell: FakeShell) -> str:
    shell.iam_port.add_user("alice", groups=[GROUP])
    return user_arn("alice")


def west_as(role: str, external_id: str | None = EXTERNAL_ID, **settings: object) -> dict[str, object]:
    """The cluster_settings of a configuration whose fn-west is in another account."""
    west: dict[str, object] = {"roleArn": role, **settings}
    if external_id is not None:
        west["externalId"] = external_id
    return {"cluster_settings": {"fn-west": west}}


def test_a_cluster_in_another_account_is_reached_as_its_role_which_is_protected_there_only(
    runtime: Runtime, shell: FakeShell, alice: str, write_config: Callable[..., Path]
) -> None:
    shell.trusted_roles[OTHER_ACCOUNT_ROLE] = EXTERNAL_ID
    owned = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    for cluster in shell.clusters.values():  # the role's entry, owned (made by hand, or an old version)
        cluster.with_access_entries("API").put(OTHER_ACCOUNT_ROLE, "eks-iam-sync", ("eks-iam-sync",), owned)
    config = load_config(write_config(**west_as(OTHER_ACCOUNT_ROLE)))

    result = runner.run_full(config, runtime)

    assert shell.assumed == [(OTHER_ACCOUNT_ROLE, EXTERNAL_ID)]
    west, east = shell.clusters["fn-west"].access_entries, shell.clusters["fn-east"].access_entries
    assert west is not None and east is not None
    # fn-west sees the service as the assumed role: its entry stays; in fn-east it is no one's and goes.
    assert OTHER_ACCOUNT_ROLE.lower() in west.entries and f"delete {OTHER_ACCOUNT_ROLE}" not in west.writes
    assert f"delete {OTHER_ACCOUNT_ROLE}" in east.writes
    assert alice.lower() in west.entries and alice.lower() in east.entries
    assert result["fn-west"]["status"] == result["fn-east"]["status"] == "changes"


def test_the_assumed_role_s_aws_auth_mapping_is_never_removed(
    runtime: Runtime, shell: FakeShell, write_config: Callable[..., Path]
) -> None:
    cluster_role = role_arn(ROLE)  # fn-west is reached as the configured role: mapped and owned there
    shell.trusted_roles[cluster_role] = None
    config = load_config(write_config(**west_as(cluster_role, external_id=None)))
    runner.run_full(config, runtime)
    assert cluster_role in mapped(shell.clusters["fn-west"]) and cluster_role in mapped(shell.clusters["fn-east"])

    shell.iam_port.delete_role(ROLE)
    with pytest.raises(PermanentError, match=r"cluster fn-west: .*protected-entry-changed"):
        runner.run_full(config, runtime)
    assert cluster_role in mapped(shell.clusters["fn-west"])  # refused there, not removed
    assert cluster_role not in mapped(shell.clusters["fn-east"])  # removed where it is nobody's identity


@pytest.mark.parametrize(
    ("trusted", "why"),
    [
        ({OTHER_ACCOUNT_ROLE: "another-id"}, "a wrong externalId"),
        ({}, "a role whose trust policy does not name the service"),
    ],
)
def test_a_cluster_whose_role_cannot_be_assumed_fails_alone(
    runtime: Runtime,
    shell: FakeShell,
    alice: str,
    write_config: Callable[..., Path],
    trusted: dict[str, str | None],
    why: str,
) -> None:
    shell.trusted_roles.update(trusted)
    config = load_config(write_config(**west_as(OTHER_ACCOUNT_ROLE)))

    with pytest.raises(PermanentError) as raised:
        runner.run_full(config, runtime)

    message = str(raised.value)
    assert message.startswith("reconcile failed for cluster fn-west: Forbidden: sts:AssumeRole"), why
    assert "fn-east" not in message and OTHER_ACCOUNT_ROLE in message
    assert alice in mapped(shell.clusters["fn-east"])
    assert shell.clusters["fn-west"].calls() == {} and shell.clusters["fn-west"].writes() == []


def test_iam_is_read_in_the_identity_account_as_iam_role_arn(
    runtime: Runtime, shell: FakeShell, alice: str, write_config: Callable[..., Path]
) -> None:
    shell.trusted_roles[IDENTITY_ROLE] = None
    identity = shell.iam_accounts[IDENTITY_ROLE] = FakeIam(account="333333333333")
    identity.add_group(GROUP)
    identity.add_user("carol", groups=[GROUP])
    config = load_config(write_config(iam={"roleArn": IDENTITY_ROLE}))

    runner.run_full(config, runtime)

    for cluster in shell.clusters.values():
        assert identity_user("carol") in mapped(cluster)
        assert alice not in mapped(cluster)  # the function's own account is not read at all
    assert shell.iam_port.calls == {}


def test_an_event_reads_the_identity_account_too(
    shell: FakeShell, lambdas: Lambdas, write_config: Callable[..., Path], iam_reads_per_run: int
) -> None:
    shell.trusted_roles[IDENTITY_ROLE] = None
    identity = shell.iam_accounts[IDENTITY_ROLE] = FakeIam(account="333333333333")
    identity.add_group(GROUP)
    identity.add_user("carol", groups=[GROUP])
    write_config(iam={"roleArn": IDENTITY_ROLE})

    result = lambdas.event("AddUserToGroup", groupName=GROUP, userName="carol")

    assert result["status"] == "reconciled"
    assert all(identity_user("carol") in mapped(cluster) for cluster in shell.clusters.values())
    assert identity.calls["scoped_snapshot"] == iam_reads_per_run and shell.iam_port.calls == {}


def test_an_identity_role_that_cannot_be_assumed_stops_the_run_before_any_write(
    runtime: Runtime, shell: FakeShell, alice: str, write_config: Callable[..., Path]
) -> None:
    config = load_config(write_config(iam={"roleArn": IDENTITY_ROLE, "externalId": "wrong-id"}))
    with pytest.raises(Forbidden, match="sts:AssumeRole arn:aws:iam::333333333333:role/eks-iam-sync-iam-reader"):
        runner.run_full(config, runtime)
    assert shell.writes() == {name: [] for name in shell.clusters}
