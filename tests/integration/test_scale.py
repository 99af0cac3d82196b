"""aws-auth past the old annotation ceiling, on the real apiserver, reconciled AS THE SERVICE.

Version 1 of the ownership ledger (uncompressed JSON, ~116-160 bytes an entry, in an annotation of
aws-auth) passed Kubernetes' 256 KiB limit on all annotations together at about 2 200 mapped users:
every later write failed with ``422 metadata.annotations: Too long`` (issue 11). Here ~2 600 users
in one configured group are mapped by one full reconcile: every one is in mapUsers, no request was
answered 422, the ledger is a small fraction of the limit, and a second run writes nothing. And an
aws-auth holding a version-1 ledger, as the previous release wrote it, is read (a run with nothing
to change leaves it alone, nobody's entry is taken for someone else's) and upgraded to version 2 by
the next write.

The users are created through moto's in-process IAM backend (thousands of HTTP calls would take
most of a minute); the service reads them over HTTP. The session's IAM is shared: the test uses a
group of its own and removes every user it made; aws-auth is put back to the seed's state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from moto.iam.models import iam_backends

from chalicelib.adapters.iam import IamReader
from chalicelib.adapters.observability import LogObserver
from chalicelib.adapters.shell import ports_for
from chalicelib.config import DEFAULT_BACKUP_COUNT, Config, parse_config
from chalicelib.engine.awsauth.backups import Backup
from chalicelib.engine.awsauth.guardrails import ANNOTATIONS_LIMIT_BYTES, size_shares
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.model import MAP_USERS
from chalicelib.model.ownership import LEDGER_ANNOTATION, backup_name
from chalicelib.run.reconcile import ClusterReport, Options, reconcile_cluster
from tests.conftest import Environment
from tests.harness.principals import forbidden_as, iam_user
from tests.harness.service import Service, prepare_seed_cluster

pytestmark = pytest.mark.cluster

GROUP = "scale-test-group"  # not the seed's iam-bttrm-web-ro-group: other tests reset that one
KUBERNETES_GROUP = "scale-test-readers"
SOURCE = f"identities.groups[{GROUP}]"
USERS_PAST_THE_OLD_CEILING = 2600
CONFIG = parse_config(
    f"""
clusters:
  - name: bttrm-eks-dev-0
    region: us-east-2
identities:
  groups:
    - iamGroup: {GROUP}
      kubernetesGroups: [{KUBERNETES_GROUP}]
tagGrants:
  tagPrefix: "scale-test-access/"
"""
)


def user_name(number: int) -> str:
    return f"scale-test-user-{number:04d}"


class Users:
    """Users of GROUP, made straight in moto's in-process IAM backend; all removed by ``remove``."""

    def __init__(self, account: str) -> None:
        self.backend = iam_backends[account]["aws"]
        self.names: list[str] = []
        self.backend.create_group(GROUP)

    def add(self, count: int) -> list[str]:
        made = [user_name(n) for n in range(len(self.names), len(self.names) + count)]
        for name in made:
            self.backend.create_user("us-east-1", name)
            self.backend.add_user_to_group(GROUP, name)
        self.names += made
        return made

    def adopt(self, name: str) -> None:
        """A user made through the API (it has an access key) joins GROUP and is removed at the end too."""
        self.backend.add_user_to_group(GROUP, name)
        self.names.append(name)

    def arn(self, name: str) -> str:
        return str(self.backend.get_user(name).arn)

    def remove(self) -> None:
        group = self.backend.groups.get(GROUP)
        if group is not None:
            group.users.clear()
            self.backend.delete_group(GROUP)
        for name in self.names:
            user = self.backend.users.get(name)
            if user is None:
                continue
            for key in list(user.access_keys):
                self.backend.delete_access_key(key.access_key_id, name)
            self.backend.delete_user(name)


@pytest.fixture
def users(env: Environment, service: Service) -> Iterator[Users]:
    prepare_seed_cluster(env.plane, service)
    made = Users(service.role_arn.split(":")[4])
    try:
        yield made
    finally:
        made.remove()
        prepare_seed_cluster(env.plane, service)  # aws-auth as the seed has it: the node role and the service


@pytest.fixture
def statuses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The HTTP status of every Kubernetes request made in this process during the test."""
    seen: list[int] = []
    request: Callable[..., Any] = ApiClient.request

    def recording(self: ApiClient, *args: Any, **kwargs: Any) -> Any:
        try:
            response = request(self, *args, **kwargs)
        except client.ApiException as err:
            seen.append(int(err.status or 0))
            raise
        seen.append(int(response.status))
        return response

    monkeypatch.setattr(ApiClient, "request", recording)
    return seen


def reconcile(env: Environment, service: Service, config: Config = CONFIG) -> ClusterReport:
    """A full reconcile as the service runs it, with its own token and its shipped RBAC."""
    ports = ports_for(env.cluster_name, service.api(env.plane, env.cluster_name), None)
    options = Options(own_arns=frozenset({service.role_arn}))
    return reconcile_cluster(config, ports, IamReader().full_snapshot(), LogObserver(env.cluster_name), None, options)


def aws_auth(env: Environment) -> client.V1ConfigMap:
    return client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system")


def mapped_users(found: client.V1ConfigMap) -> dict[str, dict[str, Any]]:
    entries = yaml.load(found.data.get(MAP_USERS, "[]"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or []
    return {entry["userarn"]: entry for entry in entries}


def version_1(ledger: Ledger, event_ids: bool = False) -> str:
    """The ledger as the previous release wrote it: uncompressed JSON, one object per entry, with the
    CloudTrail event id of the change when an event made it."""
    entries = []
    for key in sorted(ledger.records):
        record = ledger.records[key]
        entry: dict[str, str] = {"arn": record.arn, "key": record.key, "source": record.source}
        if event_ids:
            entry["eventId"] = str(uuid.uuid4())
        entries.append(entry)
    return json.dumps({"version": 1, "entries": entries}, separators=(",", ":"))


def test_thousands_of_users_past_the_old_annotation_ceiling(
    env: Environment, service: Service, users: Users, statuses: list[int]
) -> None:
    made = users.add(USERS_PAST_THE_OLD_CEILING - 1)
    person = iam_user(user_name(USERS_PAST_THE_OLD_CEILING - 1))  # with an access key: can sign in
    users.adopt(user_name(USERS_PAST_THE_OLD_CEILING - 1))
    made.append(user_name(USERS_PAST_THE_OLD_CEILING - 1))

    report = reconcile(env, service)

    outcome = report.applied.identities
    assert (outcome.status, outcome.refusals) == ("written", ())
    assert 422 not in statuses
    found = aws_auth(env)
    mapped = mapped_users(found)
    for name in made:
        entry = mapped[users.arn(name)]
        assert (entry["username"], entry["groups"]) == (f"eks-iam-sync:user:{name}", [KUBERNETES_GROUP])
    assert len(mapped) == USERS_PAST_THE_OLD_CEILING
    # The apiserver itself maps the last of them (the token webhook reads the live aws-auth).
    assert f'User "eks-iam-sync:user:{made[-1]}"' in forbidden_as(env.plane.client_for(person.token(env.cluster_name)))

    annotations = dict(found.metadata.annotations or {})
    ledger_text = annotations[LEDGER_ANNOTATION]
    ledger = Ledger.parse(ledger_text)
    assert {r.arn for r in ledger.records.values() if r.source == SOURCE} == {users.arn(n) for n in made}
    assert len(ledger_text) < ANNOTATIONS_LIMIT_BYTES / 8, len(ledger_text)
    (_, data_share), (_, annotations_share) = size_shares(found.data, annotations)
    assert annotations_share < 0.2 and data_share < 0.8, (data_share, annotations_share)
    # The old format would not have fitted, even without event ids: this test is past the old ceiling.
    assert len(version_1(ledger)) > ANNOTATIONS_LIMIT_BYTES

    version = found.metadata.resource_version
    again = reconcile(env, service)
    assert again.changed is False and again.applied.identities.status == "unchanged"
    assert aws_auth(env).metadata.resource_version == version


def test_a_version_1_ledger_is_read_and_upgraded_by_the_next_write(
    env: Environment, service: Service, users: Users, statuses: list[int]
) -> None:
    made = users.add(300)
    assert reconcile(env, service).applied.identities.status == "written"
    # aws-auth as the previous release left it: the same entries, the ledger in version 1.
    core = client.CoreV1Api(env.admin())
    found = aws_auth(env)
    old = version_1(Ledger.parse(found.metadata.annotations[LEDGER_ANNOTATION]), event_ids=True)
    found.metadata.annotations[LEDGER_ANNOTATION] = old
    written = core.replace_namespaced_config_map("aws-auth", "kube-system", found)
    assert json.loads(written.metadata.annotations[LEDGER_ANNOTATION])["version"] == 1

    # Read: every entry is still the service's own (no conflict), nothing to change, nothing written.
    unchanged = reconcile(env, service)
    assert unchanged.applied.identities.status == "unchanged"
    assert unchanged.applied.identities.conflicts == ()
    after_read = aws_auth(env)
    assert after_read.metadata.resource_version == written.metadata.resource_version
    assert after_read.metadata.annotations[LEDGER_ANNOTATION] == old

    # The next write upgrades it in place, in the same update as the entries.
    made += users.add(1)
    report = reconcile(env, service)
    outcome = report.applied.identities
    assert outcome.status == "written" and outcome.conflicts == ()
    assert [(c.action, c.arn) for c in outcome.changes] == [("add", users.arn(made[-1]))]
    upgraded = aws_auth(env)
    text = upgraded.metadata.annotations[LEDGER_ANNOTATION]
    assert json.loads(text)["version"] == 2
    ledger = Ledger.parse(text)
    assert {r.arn for r in ledger.records.values() if r.source == SOURCE} == {users.arn(n) for n in made}
    assert set(mapped_users(upgraded)) >= {users.arn(n) for n in made}
    assert len(text) < len(old) / 4
    # The version it replaced, version-1 ledger included, is kept in the backup of that write.
    assert outcome.backup_sequence is not None
    slot = backup_name(outcome.backup_sequence % DEFAULT_BACKUP_COUNT)
    backup = core.read_namespaced_config_map(slot, "kube-system")
    assert Backup.from_data(backup.data).ledger == old
    assert 422 not in statuses
