"""The aws-auth engine against the real apiserver: concurrency, malformed documents, restore."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.adapters.configmaps import ConfigMaps
from chalicelib.adapters.observability import LogObserver
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.model import MAP_ROLES, MAP_USERS
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from chalicelib.model.ownership import LEDGER_ANNOTATION
from chalicelib.model.ports import ObservedConfigMap
from tests.conftest import Environment
from tests.harness.service import reset_aws_auth
from tests.unit.awsauth.builders import NODE, document, owned_user, user

pytestmark = pytest.mark.cluster


@pytest.fixture
def aws_auth(env: Environment) -> Iterator[client.CoreV1Api]:
    core = client.CoreV1Api(env.admin())
    reset_aws_auth(env.plane)
    core.create_namespaced_config_map(
        "kube-system",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="aws-auth"), data=document(roles=[NODE])),
    )
    yield core
    reset_aws_auth(env.plane)


class RecordingConfigMaps(ConfigMaps):
    """The real adapter, noting the resourceVersion each aws-auth update was made with."""

    def __init__(self, api: client.ApiClient, versions: list[str]) -> None:
        super().__init__(api)
        self.versions = versions

    def update(self, observed: ObservedConfigMap, data, annotations, dry_run: bool = False) -> ObservedConfigMap:
        if not dry_run:
            self.versions.append(observed.resource_version)
        return super().update(observed, data, annotations, dry_run)


def foreign_writer(core: client.CoreV1Api, rounds: int, stop: threading.Event, kept: list[str]) -> None:
    """Another tool (eksctl-like): re-marshals mapUsers with PyYAML, adding and removing its own users."""
    for number in range(rounds):
        removing = kept[0] if number % 3 == 2 and kept else None
        adding = f"arn:aws:iam::111122223333:user/foreign-{number}"
        while True:
            cm = core.read_namespaced_config_map("aws-auth", "kube-system")
            entries = yaml.safe_load(cm.data.get("mapUsers") or "[]") or []
            if removing:
                entries = [e for e in entries if e["userarn"] != removing]
            else:
                entries.append({"userarn": adding, "username": f"foreign-{number}", "groups": ["ops"]})
            cm.data["mapUsers"] = yaml.safe_dump(entries, default_flow_style=False)
            try:
                core.replace_namespaced_config_map("aws-auth", "kube-system", cm)
                break
            except ApiException as err:
                if err.status != 409:
                    raise
        if removing:
            kept.remove(removing)
        else:
            kept.append(adding)
        if stop.is_set():
            break


def test_concurrent_scoped_merges_and_a_foreign_writer_end_in_exactly_the_union(
    env: Environment, aws_auth: client.CoreV1Api
) -> None:
    people = [user(f"dev-{i:02d}-{uuid.uuid4().hex[:4]}", "devs") for i in range(50)]
    versions: list[str] = []
    stop, kept = threading.Event(), list[str]()

    def one(person) -> str:
        writer = AwsAuthWriter(RecordingConfigMaps(env.admin(), versions), LogObserver())
        return writer.sync([owned_user(person)], scope={person.key}, reason=f"event for {person.arn}").status

    foreign = threading.Thread(target=foreign_writer, args=(client.CoreV1Api(env.admin()), 30, stop, kept))
    foreign.start()
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(one, people))
    stop.set()
    foreign.join()

    assert statuses == ["written"] * 50
    cm = aws_auth.read_namespaced_config_map("aws-auth", "kube-system")
    reading = read_aws_auth(cm.data)
    assert reading.understood
    assert reading.entries(MAP_ROLES) == (NODE,)
    users = {e.arn for e in reading.entries(MAP_USERS)}
    assert users == {p.arn for p in people} | set(kept)
    ledger = Ledger.parse(cm.metadata.annotations[LEDGER_ANNOTATION])
    assert set(ledger.records) == {p.key for p in people}
    assert len(versions) >= 50 and all(versions)  # every update carried the resourceVersion it read


def test_a_malformed_aws_auth_is_left_byte_identical(
    env: Environment, aws_auth: client.CoreV1Api, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = "- rolearn: arn:aws:iam::111122223333:role/dev\n  username: {{SessionName}}\n"
    cm = aws_auth.read_namespaced_config_map("aws-auth", "kube-system")
    cm.data["mapRoles"] = cm.data["mapRoles"] + broken
    cm = aws_auth.replace_namespaced_config_map("aws-auth", "kube-system", cm)
    outcome = AwsAuthWriter(ConfigMaps(env.admin()), LogObserver()).sync([owned_user(user("alice", "devs"))])
    assert outcome.status == "refused"
    after = aws_auth.read_namespaced_config_map("aws-auth", "kube-system")
    assert after.data == cm.data and after.metadata.resource_version == cm.metadata.resource_version
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    refusals = [m for m in metrics if "GuardrailRefusals" in m]
    assert refusals and refusals[0]["reason"] == "current-not-understood"


def test_restore_round_trips_on_the_real_server(env: Environment, aws_auth: client.CoreV1Api) -> None:
    writer = AwsAuthWriter(ConfigMaps(env.admin()), LogObserver())
    original = aws_auth.read_namespaced_config_map("aws-auth", "kube-system").data
    writer.sync([owned_user(user("erin", "devs"))])
    with_erin = aws_auth.read_namespaced_config_map("aws-auth", "kube-system").data
    writer.sync([owned_user(user("frank", "devs"))])
    [latest, first] = writer.backups()[:2]
    assert first.data == original and latest.data == with_erin
    assert writer.restore(first.sequence).status == "written"
    restored = aws_auth.read_namespaced_config_map("aws-auth", "kube-system")
    assert restored.data == original
    assert Ledger.parse(restored.metadata.annotations[LEDGER_ANNOTATION]) == Ledger()


def test_a_backup_slot_is_written_whether_or_not_it_exists_and_whatever_the_hint(env: Environment) -> None:
    store = ConfigMaps(env.admin())
    name = f"eks-iam-sync-aws-auth-backup-test-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(env.admin())
    try:
        store.put("kube-system", name, {"v": "1"}, fresh=True)  # absent, as hinted: one create
        store.put("kube-system", name, {"v": "2"}, fresh=True)  # present after all: 409, then a replace
        store.put("kube-system", name, {"v": "3"})  # present, as hinted: one replace
        assert core.read_namespaced_config_map(name, "kube-system").data == {"v": "3"}
        core.delete_namespaced_config_map(name, "kube-system")
        store.put("kube-system", name, {"v": "4"})  # absent after all: 404, then a create
        assert core.read_namespaced_config_map(name, "kube-system").data == {"v": "4"}
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespaced_config_map(name, "kube-system")
