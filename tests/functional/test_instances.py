"""Two instances of the service (EKS_IAM_SYNC_INSTANCE) reconciling the same clusters, through the
handlers on fakes, on both identity backends: each changes only what carries its own name, another's
entry that it wants is a conflict naming the owner (logged and counted), a RoleBinding of the same name
is refused, and objects from before instances are adopted and marked in place by a named instance,
never orphaned or deleted."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config.settings import INSTANCE_VARIABLE
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.model.ownership import ENTRY_INSTANCE_TAG, INSTANCE_LABEL, LEDGER_ANNOTATION, MANAGED_BY_LABEL
from tests.functional.fakes import GROUP, NS3, POD_READER, PROJECTS, SEED, FakeCluster, FakeShell

OPS_GROUP, OPS = "iam-ops-group", "rbac-ops-group"


def prod_config() -> dict[str, Any]:
    """Prod maps the seed's group (dev's too: a conflict) and its own group, bound in NS3."""
    identities = copy.deepcopy(SEED["identities"])
    identities["groups"].append({"iamGroup": OPS_GROUP, "kubernetesGroups": [OPS]})
    grants = [*SEED["namespaceGrants"], {"kubernetesGroup": OPS, "clusterRole": POD_READER, "namespaces": [NS3]}]
    return {"identities": identities, "namespaceGrants": grants}


def owners(cluster: FakeCluster, backend: str) -> dict[str, str | None]:
    """Every principal the service maps in the cluster, by lower-case ARN: the instance that owns it
    (None: unmarked)."""
    if backend == "accessEntries":
        assert cluster.access_entries is not None
        return {
            key: entry.tags.get(ENTRY_INSTANCE_TAG)
            for key, entry in cluster.access_entries.entries.items()
            if MANAGED_BY_LABEL in entry.tags
        }
    text = cluster.aws_auth.annotations.get(LEDGER_ANNOTATION)
    found: dict[str, str | None] = dict.fromkeys(Ledger.parse(text).records)
    for instance in ("dev", "prod"):
        found |= dict.fromkeys(Ledger.parse(text, instance).records.keys() - found.keys(), instance)
    return found


def bindings(cluster: FakeCluster) -> dict[tuple[str, str], tuple[str | None, str]]:
    """The service's RoleBindings: (instance label, resourceVersion)."""
    return {
        key: (b.labels.get(INSTANCE_LABEL), b.resource_version)
        for key, b in cluster.bindings.objects.items()
        if MANAGED_BY_LABEL in b.labels
    }


@pytest.fixture
def as_instance(monkeypatch: pytest.MonkeyPatch, write_config: Callable[..., Path]) -> Callable[..., None]:
    def switch(instance: str | None, **config: Any) -> None:
        if instance is None:
            monkeypatch.delenv(INSTANCE_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(INSTANCE_VARIABLE, instance)
        write_config(**config)

    return switch


def test_two_instances_on_one_cluster_never_touch_each_other_s_objects(
    shell: FakeShell, lambdas: Any, backend: str, as_instance: Callable[..., None]
) -> None:
    shell.iam_port.add_group(OPS_GROUP)
    alice = shell.iam_port.add_user("alice", groups=[GROUP]).arn.lower()
    bob = shell.iam_port.add_user("bob", groups=[OPS_GROUP]).arn.lower()
    cluster = shell.clusters["fn-east"]

    as_instance("dev")
    lambdas.reconcile_all()
    dev_owned = owners(cluster, backend)
    assert dev_owned[alice] == "dev" and set(dev_owned.values()) == {"dev"}
    dev_bindings = bindings(cluster)
    assert {key[0] for key in dev_bindings} == set(PROJECTS)
    assert {label for label, _ in dev_bindings.values()} == {"dev"}

    as_instance("prod", **prod_config())
    result = lambdas.reconcile_all()
    after = owners(cluster, backend)
    assert after == {**dev_owned, bob: "prod"}  # dev's unchanged, prod's own added
    now = bindings(cluster)
    assert {k: v for k, v in now.items() if k in dev_bindings} == dev_bindings  # not one resourceVersion moved
    assert {label for key, (label, _) in now.items() if key not in dev_bindings} == {"prod"}
    report = result["clusters"]["fn-east"]
    conflicts = " ".join(report["identities"]["conflicts"])
    assert "eks-iam-sync instance 'dev'" in conflicts and alice.split("/")[-1] in conflicts
    refused = [r for r in report["grantRefusals"] if r["reason"] == "other-instance"]
    assert len(refused) == len(PROJECTS)
    assert all(
        r["message"] == "the RoleBinding is owned by eks-iam-sync instance 'dev': left as it is" for r in refused
    )

    # dev stops mapping its group: it removes its own and nothing of prod's
    groups = [g for g in SEED["identities"]["groups"] if g["iamGroup"] != GROUP]
    as_instance("dev", identities={**SEED["identities"], "groups": groups}, namespaceGrants=[])
    lambdas.reconcile_all()
    final = owners(cluster, backend)
    assert alice not in final and final[bob] == "prod"
    assert {k: v for k, v in bindings(cluster).items() if v[0] == "prod"} == {
        k: v for k, v in now.items() if v[0] == "prod"
    }
    assert not [k for k, v in bindings(cluster).items() if v[0] == "dev"]


def test_objects_from_before_instances_are_adopted_and_marked_in_place(
    shell: FakeShell, lambdas: Any, backend: str, as_instance: Callable[..., None]
) -> None:
    alice = shell.iam_port.add_user("alice", groups=[GROUP]).arn.lower()
    cluster = shell.clusters["fn-east"]
    as_instance(None)  # unset: the default instance, which marks nothing, as earlier versions did
    lambdas.reconcile_all()
    before = owners(cluster, backend)
    assert before[alice] is None and set(before.values()) == {None}
    assert {label for label, _ in bindings(cluster).values()} == {None}

    as_instance("prod")
    lambdas.reconcile_all()
    adopted = owners(cluster, backend)
    assert adopted == dict.fromkeys(before, "prod")  # the same principals, none removed, all marked
    assert {label for label, _ in bindings(cluster).values()} == {"prod"}
    assert set(bindings(cluster)) == {(namespace, name) for namespace, name in bindings(cluster)}

    as_instance(None)  # the default instance now sees prod's objects as foreign: it changes nothing
    writes = (cluster.bindings.writes[:], cluster.aws_auth.resource_version)
    result = lambdas.reconcile_all()
    assert owners(cluster, backend) == adopted
    assert (cluster.bindings.writes, cluster.aws_auth.resource_version) == writes
    conflicts = " ".join(result["clusters"]["fn-east"]["identities"]["conflicts"])
    assert "eks-iam-sync instance 'prod'" in conflicts


def test_a_bad_instance_name_fails_the_invocation_before_any_port(
    shell: FakeShell, lambdas: Any, as_instance: Callable[..., None]
) -> None:
    as_instance("Prod_EU")
    with pytest.raises(ValueError, match="EKS_IAM_SYNC_INSTANCE must be"):
        lambdas.reconcile_all()
    assert shell.port_calls() == 0


def test_what_another_instance_owns_is_logged_and_counted_as_that_instance_s(
    shell: FakeShell, reconciler: Any, backend: str, config: Any
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    reconciler(instance="dev")
    report = reconciler(instance="prod")
    assert not report.changed  # everything it wants is dev's: nothing written
    observer = reconciler.observers[-1]
    subject = "access entry" if backend == "accessEntries" else "aws-auth entry"
    owned_by_dev = [
        line for line in observer.lines if line.message == f"{subject} owned by eks-iam-sync instance 'dev'"
    ]
    assert len(owned_by_dev) == 2 and observer.counted("OwnershipConflicts") == 2  # alice and the role
    assert observer.counted("Refusals", reason="other-instance") == len(PROJECTS)
    refused = [line for line in observer.lines if line.message == "grant refused"]
    assert {line.fields["reason"] for line in refused} == {"other-instance"}


def test_uninstall_of_one_instance_removes_its_own_only_and_keeps_the_shared_backups(
    shell: FakeShell,
    use_shell: Any,
    as_instance: Callable[..., None],
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chalicelib.entry.cli import main  # noqa: PLC0415

    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(write_config()))
    shell.iam_port.add_group(OPS_GROUP)
    alice = shell.iam_port.add_user("alice", groups=[GROUP]).arn.lower()
    bob = shell.iam_port.add_user("bob", groups=[OPS_GROUP]).arn.lower()
    cluster = shell.clusters["fn-east"]
    as_instance("dev")
    assert main(["apply", "--cluster", "fn-east"]) == 0
    as_instance("prod", **prod_config())
    assert main(["apply", "--cluster", "fn-east"]) == 0
    backups = {name for (_, name) in cluster.config_maps.objects if name.startswith("eks-iam-sync-aws-auth-backup-")}
    assert backups
    capsys.readouterr()

    assert main(["uninstall", "--cluster", "fn-east"]) == 0  # prod's uninstall
    out = capsys.readouterr().out
    assert owners(cluster, "configMap") == {k: v for k, v in owners(cluster, "configMap").items() if v == "dev"}
    assert alice in owners(cluster, "configMap") and bob not in owners(cluster, "configMap")
    assert {label for label, _ in bindings(cluster).values()} == {"dev"}
    assert "backups kept: aws-auth still maps entries of eks-iam-sync instance 'dev'" in out
    assert backups <= {name for (_, name) in cluster.config_maps.objects}  # none deleted

    as_instance("dev")
    assert main(["uninstall", "--cluster", "fn-east"]) == 0  # the last instance: the backups go with it
    left = {name for (_, name) in cluster.config_maps.objects if name.startswith("eks-iam-sync-aws-auth-backup-")}
    assert owners(cluster, "configMap") == {} and not bindings(cluster) and not left
