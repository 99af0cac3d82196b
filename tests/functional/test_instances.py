"""Two instances of the service (EKS_IAM_SYNC_INSTANCE) configured with the same clusters, through the
handlers on fakes, on both identity backends: a cluster another instance manages (its marks among what
the run read) is refused before any write, naming it, and the run's other clusters go on; once that
instance is uninstalled from it, the other takes it over. Underneath, per object: each changes only
what carries its own name, another's entry that it wants is a conflict naming the owner (logged and
counted), a RoleBinding of the same name is refused, and objects from before instances are adopted and
marked in place by a named instance, never orphaned or deleted."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import load_config
from chalicelib.config.settings import INSTANCE_VARIABLE
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.errors import ManagedByOtherInstance, PermanentError
from chalicelib.model.ownership import ENTRY_INSTANCE_TAG, INSTANCE_LABEL, LEDGER_ANNOTATION, MANAGED_BY_LABEL
from chalicelib.run import runner
from tests.functional.conftest import Reconciler
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


def snapshot(cluster: FakeCluster, backend: str) -> tuple[Any, ...]:
    """What a run that writes nothing leaves exactly as it was: the write log, aws-auth's
    resourceVersion, the owners of every mapping, the RoleBindings' resourceVersions."""
    return (cluster.writes(), cluster.aws_auth.resource_version, owners(cluster, backend), bindings(cluster))


def test_a_cluster_another_instance_manages_is_refused_before_any_write_and_the_others_go_on(
    shell: FakeShell, lambdas: Any, backend: str, as_instance: Callable[..., None], capsys: Any, config_path: Path
) -> None:
    """dev manages fn-east; prod, configured with both clusters, writes nothing in fn-east (its full run,
    an event and its plan name dev), and reconciles fn-west."""
    from chalicelib.entry.cli import main  # noqa: PLC0415

    shell.iam_port.add_group(OPS_GROUP)
    alice = shell.iam_port.add_user("alice", groups=[GROUP]).arn.lower()
    bob = shell.iam_port.add_user("bob", groups=[OPS_GROUP]).arn.lower()
    east, west = shell.clusters["fn-east"], shell.clusters["fn-west"]
    as_instance("dev", clusters={"fn-east": "us-east-2"})
    lambdas.reconcile_all()
    assert set(owners(east, backend).values()) == {"dev"}
    before = snapshot(east, backend)

    as_instance("prod", **prod_config())
    why = "cluster fn-east: ManagedByOtherInstance: cluster fn-east is managed by eks-iam-sync instance 'dev'"
    with pytest.raises(PermanentError, match=why) as raised:
        lambdas.reconcile_all()
    assert "fn-west" not in str(raised.value)
    assert snapshot(east, backend) == before  # not one write
    assert owners(west, backend)[alice] == owners(west, backend)[bob] == "prod"
    assert set(owners(west, backend).values()) == {"prod"}
    assert {label for label, _ in bindings(west).values()} == {"prod"}

    shell.iam_port.add_user("carol", groups=[])
    shell.iam_port.add_to_group("carol", GROUP)  # an event: dev's group's RoleBindings are read, or aws-auth
    with pytest.raises(PermanentError, match=why):
        lambdas.event("AddUserToGroup", groupName=GROUP, userName="carol")
    assert snapshot(east, backend) == before
    assert any("carol" in arn for arn in owners(west, backend))

    capsys.readouterr()
    assert main(["plan", "--config", str(config_path)]) == 1  # plan shows it
    out = capsys.readouterr().out
    assert "cluster fn-east: FAILED: cluster fn-east is managed by eks-iam-sync instance 'dev'" in out
    assert "EKS_IAM_SYNC_INSTANCE=dev eks-iam-sync uninstall" in out
    assert main(["plan", "--config", str(config_path), "--output", "json"]) == 1
    planned = json.loads(capsys.readouterr().out)
    assert planned["fn-east"]["status"] == "failed" and planned["fn-east"]["errorKind"] == "permanent"
    assert planned["fn-east"]["reason"] == "managed-by-other-instance" and planned["fn-east"]["managedBy"] == ["dev"]
    assert "reason" not in planned["fn-west"]
    assert snapshot(east, backend) == before


def test_after_the_managing_instance_is_uninstalled_the_other_takes_the_cluster_over(
    shell: FakeShell, lambdas: Any, backend: str, as_instance: Callable[..., None], config_path: Path
) -> None:
    from chalicelib.entry.cli import main  # noqa: PLC0415

    alice = shell.iam_port.add_user("alice", groups=[GROUP]).arn.lower()
    east = shell.clusters["fn-east"]
    as_instance("dev")
    lambdas.reconcile_all()
    as_instance("prod")
    with pytest.raises(PermanentError, match="managed by eks-iam-sync instance 'dev'"):
        lambdas.reconcile_all()
    assert set(owners(east, backend).values()) == {"dev"}

    as_instance("dev")
    assert main(["uninstall", "--config", str(config_path), "--cluster", "fn-east"]) == 0  # an operator's, as dev
    assert owners(east, backend) == {} and not bindings(east)
    as_instance("prod")
    with pytest.raises(PermanentError, match="cluster fn-west: ManagedByOtherInstance") as raised:
        lambdas.reconcile_all()
    assert "fn-east" not in str(raised.value)  # dev still manages fn-west, not fn-east
    assert owners(east, backend)[alice] == "prod" and set(owners(east, backend).values()) == {"prod"}
    assert {label for label, _ in bindings(east).values()} == {"prod"}


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

    as_instance(None)  # the default instance (the CLI unset) is refused where prod manages: told how to act as it
    unchanged = snapshot(cluster, backend)
    with pytest.raises(PermanentError) as raised:
        lambdas.reconcile_all()
    assert "cluster fn-east is managed by eks-iam-sync instance 'prod': the default instance writes nothing" in str(
        raised.value
    )
    assert "set EKS_IAM_SYNC_INSTANCE=prod" in str(raised.value)
    assert snapshot(cluster, backend) == unchanged


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
    """Defence in depth: where the cluster-wide refusal is not made (uninstall's run; or what a run read
    carried no other mark), each object another instance owns is still left alone."""
    shell.iam_port.add_user("alice", groups=[GROUP])
    reconciler(instance="dev")
    with pytest.raises(ManagedByOtherInstance):
        reconciler(instance="prod")
    report = reconciler(instance="prod", exclusive=False)
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
    assert main(["apply", "--cluster", "fn-east"]) == 1  # refused: dev manages it
    # a cluster both came to manage (before the refusal, or prod's events meanwhile): uninstall still works
    prod = Reconciler(shell, load_config(write_config(**prod_config())), [])
    prod(instance="prod", exclusive=False)
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


def test_the_refusal_is_one_log_line_and_one_count_of_its_own_kind_for_that_cluster_alone(
    shell: FakeShell,
    reconciler: Any,
    backend: str,
    config: Any,
    runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ReconcileFailures with kind=managed-by-other-instance (the reconcile-failures alarm counts every
    kind but transient), one error line naming the owner; the other cluster reconciled and counted."""
    shell.iam_port.add_user("alice", groups=[GROUP])
    reconciler(instance="dev")  # dev manages fn-east
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv(INSTANCE_VARIABLE, "prod")
    capsys.readouterr()
    with pytest.raises(PermanentError, match="cluster fn-east: ManagedByOtherInstance"):
        runner.run_full(config, runtime)
    out = capsys.readouterr().out
    failures = [m for m in emitted(out) if "ReconcileFailures" in m]
    assert [(m["cluster"], m["kind"], m["instance"]) for m in failures] == [
        ("fn-east", "managed-by-other-instance", "prod")
    ]
    assert len([m for m in emitted(out) if "FullRunsSucceeded" in m]) == 1  # fn-west's full run
    logged = [line for line in out.splitlines() if "managed by eks-iam-sync instance 'dev'" in line]
    (line,) = [json.loads(line) for line in logged if line.startswith("{") and '"level":"ERROR"' in line]
    assert line["message"] == "reconcile failed; retrying will not help" and line["cluster"] == "fn-east"
    assert line["error"] == "ManagedByOtherInstance"
    assert set(owners(shell.clusters["fn-west"], backend).values()) == {"prod"}


def emitted(out: str) -> list[dict[str, Any]]:
    """The EMF metrics printed to stdout, as Lambda would ship them."""
    return [m for line in out.splitlines() if line.startswith('{"_aws"') for m in [json.loads(line)]]
