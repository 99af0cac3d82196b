"""The last foreign version of aws-auth on the real apiserver, written and read back as the service
with only its shipped RBAC: a hand edit survives a burst of 30 of the service's own writes, and
restore brings it back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from chalicelib.adapters.configmaps import ConfigMaps
from chalicelib.adapters.observability import LogObserver
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from chalicelib.model.ownership import FOREIGN_BACKUP_NAME
from tests.conftest import CLUSTER_NAME, Environment
from tests.harness.service import Service, bootstrap_aws_auth, reset_aws_auth
from tests.unit.awsauth.builders import owned_user, user

pytestmark = pytest.mark.cluster

BREAK_GLASS = "- rolearn: arn:aws:iam::111122223333:role/break-glass\n  username: break-glass\n  groups: [ops]\n"


@pytest.fixture
def as_service(env: Environment, service: Service) -> Iterator[AwsAuthWriter]:
    bootstrap_aws_auth(env.plane, service)
    yield AwsAuthWriter(ConfigMaps(service.api(env.plane, CLUSTER_NAME)), LogObserver())
    reset_aws_auth(env.plane)


def test_a_hand_edit_survives_a_burst_of_30_writes_and_is_restored(env: Environment, as_service) -> None:
    writer = as_service
    core = client.CoreV1Api(env.admin())
    writer.sync([owned_user(user("alice", "devs"))])
    edited = core.read_namespaced_config_map("aws-auth", "kube-system")
    edited.data["mapRoles"] += BREAK_GLASS  # kubectl edit: data changed, annotations kept
    core.replace_namespaced_config_map("aws-auth", "kube-system", edited)
    by_hand = core.read_namespaced_config_map("aws-auth", "kube-system").data

    for number in range(30):
        writer.sync([owned_user(user(f"u{number:02d}", "devs"))], scope={user(f"u{number:02d}").key})

    kept = writer.kept()
    assert not kept.unreadable, kept.unreadable
    [foreign] = [b for b in kept.backups if kept.foreign(b)]
    assert foreign.data == by_hand
    assert core.read_namespaced_config_map(FOREIGN_BACKUP_NAME, "kube-system").metadata.labels
    assert writer.restore(foreign.sequence).status == "written"
    assert core.read_namespaced_config_map("aws-auth", "kube-system").data == by_hand
