"""A full run never undoes newer intent (issue 24, case 2): the schedule reads IAM, then goes from
cluster to cluster; an event handled meanwhile (bob removed from the group, a tag grant taken back)
must stand when the full run reaches the cluster — on both backends. The full run is held between
its IAM read and its writes by running the event inside the first IAM read's return."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.engine.accessentries.plan import owned as entry_owned
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.model.ownership import PRINCIPAL_ANNOTATION
from chalicelib.model.snapshot import IamSnapshot
from tests.functional.fakes import CLUSTERS, GROUP, NS3, PROFILE, TAG_PREFIX, FakeCluster, FakeShell, user_arn


@pytest.fixture
def config_path(write_config: Callable[..., Path], backend: str) -> Path:
    return write_config(cluster_settings={name: {"backend": backend} for name in CLUSTERS})


def mapped(cluster: FakeCluster, backend: str) -> set[str]:
    if backend == "configMap":
        return {e.arn for e in read_aws_auth(cluster.aws_auth.data).entries("mapUsers")}
    assert cluster.access_entries is not None
    return {e.principal_arn for e in cluster.access_entries.entries.values() if entry_owned(e)}


def carol_s_bindings(cluster: FakeCluster) -> list[str]:
    owned = cluster.bindings.owned().values()
    return [b.name for b in owned if b.annotations.get(PRINCIPAL_ANNOTATION) == user_arn("carol")]


def during_the_full_run_s_first_read(shell: FakeShell, monkeypatch: pytest.MonkeyPatch, meanwhile: Any) -> None:
    """The next full IAM read returns what IAM held, then ``meanwhile`` happens before any write."""
    read = shell.iam_port.full_snapshot
    held: list[IamSnapshot] = []

    def holding() -> IamSnapshot:
        snapshot = read()
        if not held:
            held.append(snapshot)
            meanwhile()
        return snapshot

    monkeypatch.setattr(shell.iam_port, "full_snapshot", holding)


def test_a_revocation_handled_during_a_full_run_stands(
    shell: FakeShell, lambdas: Any, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell.iam_port.add_user("bob", groups=[GROUP])
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="bob")
    assert all(user_arn("bob") in mapped(c, backend) for c in shell.clusters.values())

    handled: list[int] = []

    def revoke() -> None:
        shell.iam_port.remove_from_group("bob", GROUP)
        lambdas.event("RemoveUserFromGroup", groupName=GROUP, userName="bob")
        assert not any(user_arn("bob") in mapped(c, backend) for c in shell.clusters.values())
        handled.append(len(shell.iam_port.requests))  # the event's own reads end here

    during_the_full_run_s_first_read(shell, monkeypatch, revoke)
    lambdas.reconcile_all()
    for cluster in shell.clusters.values():
        assert user_arn("bob") not in mapped(cluster, backend)  # the full run's older read did not map him again
    # the full run re-read bob before writing (after the event's own reads)
    assert ("bob",) in [users for users, _ in shell.iam_port.requests[handled[0] :]]


def test_a_grant_taken_back_during_a_full_run_stays_taken_back(
    shell: FakeShell, lambdas: Any, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = f"{TAG_PREFIX}{NS3}"
    shell.iam_port.add_user("carol", tags={tag: PROFILE})
    lambdas.event("TagUser", userName="carol", tags=[{"key": tag, "value": PROFILE}])
    assert all(carol_s_bindings(c) for c in shell.clusters.values())

    def untag() -> None:
        shell.iam_port.untag_user("carol", tag)
        lambdas.event("UntagUser", userName="carol", tagKeys=[tag])

    during_the_full_run_s_first_read(shell, monkeypatch, untag)
    lambdas.reconcile_all()
    for cluster in shell.clusters.values():
        assert carol_s_bindings(cluster) == []
        assert user_arn("carol") not in mapped(cluster, backend)


def test_a_full_run_that_changes_nothing_reads_iam_once(
    shell: FakeShell, lambdas: Any, backend: str, iam_reads_per_run: int
) -> None:
    shell.iam_port.add_user("dave", groups=[GROUP])
    lambdas.reconcile_all()
    shell.iam_port.calls.clear()
    shell.iam_port.requests.clear()
    lambdas.reconcile_all()
    assert shell.iam_port.calls == {"full_snapshot": iam_reads_per_run} and shell.iam_port.requests == []
