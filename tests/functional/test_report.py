"""report.as_json / as_text / succeeded / changed for what a run can end in: a failed cluster
(transient or permanent), a refused aws-auth write, a cluster with changes (applied or planned),
grant refusals and skipped bindings, and a cluster with nothing to do."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import Forbidden, SyncError, TransientError
from chalicelib.run.results import as_json, as_text, changed, failure, succeeded
from tests.functional.fakes import GROUP, KUBERNETES_GROUP, NS3, POD_READER, PROFILE, PROJECTS, TAG_PREFIX, user_arn


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TransientError("cluster unreachable: connection refused"), "transient"),
        (Forbidden("eks:DescribeCluster: AccessDeniedException"), "permanent"),
        (SyncError("something else"), "permanent"),
    ],
)
def test_a_failed_cluster(error: SyncError, kind: str) -> None:
    assert as_json(error) == {
        "status": "failed",
        "error": str(error),
        "errorKind": kind,
        "errorType": type(error).__name__,
    }
    assert as_text("fn-east", error) == [f"cluster fn-east: FAILED: {error}"]
    assert not succeeded(error) and not changed(error)


def test_a_refused_cluster(reconciler, shell) -> None:
    for name in ("alice", "bob"):
        shell.iam_port.add_user(name, groups=[GROUP])
    reconciler()
    for name in ("alice", "bob"):
        shell.iam_port.remove_from_group(name, GROUP)
    report = reconciler()
    document = as_json(report)
    assert document["identities"]["status"] == "refused"
    [refusal] = document["identities"]["refusals"]
    assert refusal["reason"] == "deletion-breaker" and "--force" in refusal["message"]
    assert document["identities"]["changes"] and "backup" not in document["identities"]
    lines = as_text("fn-east", report)
    assert lines[0] == "cluster fn-east: no changes" and "  aws-auth: refused" in lines
    assert any(line.startswith("  ! refused (deletion-breaker): this run would remove 2 of ") for line in lines)
    assert not succeeded(report) and not changed(report)
    json.dumps(document)  # what the Lambda returns must serialise


def test_a_changed_cluster(reconciler, shell) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    report = reconciler()
    document = as_json(report)
    assert document["status"] == "changes" and document["identities"]["status"] == "written"
    assert document["identities"]["backup"] == 1
    [added] = [c for c in document["identities"]["changes"] if c["arn"] == user_arn("alice")]
    assert added == {
        "action": "add",
        "key": "mapUsers",
        "arn": user_arn("alice"),
        "before": None,
        "after": {"arn": user_arn("alice"), "username": "eks-iam-sync:user:alice", "groups": [KUBERNETES_GROUP]},
        "source": f"identities.groups[{GROUP}]",
        "text": (
            f"+ mapUsers {user_arn('alice')} -> 'eks-iam-sync:user:alice' ['{KUBERNETES_GROUP}']"
            f"  (identities.groups[{GROUP}])"
        ),
    }
    assert [(b["action"], b["namespace"], b["subject"], b["clusterRole"]) for b in document["roleBindings"]] == [
        ("create", ns, f"Group/{KUBERNETES_GROUP}", POD_READER) for ns in PROJECTS
    ]
    assert document["roleBindingsDone"] == 2 and document["problems"] == []
    lines = as_text("fn-east", report)
    assert lines[:2] == ["cluster fn-east: changes", "  aws-auth: written"]
    assert "  rolebindings: 2 change(s)" in lines
    assert succeeded(report) and changed(report)


def test_a_planned_change_says_so(reconciler, shell) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    report = reconciler(dry_run=True)
    assert as_json(report)["identities"]["status"] == "planned" and "backup" not in as_json(report)["identities"]
    assert as_text("fn-east", report, display_only=True)[0] == "cluster fn-east: changes (plan)"
    assert as_json(report)["roleBindingsDone"] == 2  # planned, reported as they would be done


def test_grant_refusals_skipped_namespaces_and_binding_problems_are_reported(reconciler, shell, write_config) -> None:
    from chalicelib.config import load_config  # noqa: PLC0415

    shell.iam_port.add_user("mallory", tags={f"{TAG_PREFIX}kube-system": PROFILE, f"{TAG_PREFIX}{NS3}": "root"})
    shell.clusters["fn-east"].bindings.delete_namespace(PROJECTS[1])
    shell.clusters["fn-east"].bindings.fail("create", "forbidden", target=PROJECTS[0])
    report = reconciler(config=load_config(write_config()))
    document = as_json(report)
    assert {(r["principal"], r["reason"]) for r in document["grantRefusals"]} == {
        (user_arn("mallory"), "denied-namespace"),
        (user_arn("mallory"), "unknown-profile"),
    }
    assert document["skipped"] == [f"namespaceGrants[0]: namespace '{PROJECTS[1]}' does not exist yet"]
    [problem] = document["problems"]
    assert problem.startswith(f"+ rolebinding {PROJECTS[0]}/") and "403" in problem
    lines = as_text("fn-east", report)
    assert sum(line.startswith("  ! refused (") for line in lines) == 2
    assert f"  ! skipped: namespaceGrants[0]: namespace '{PROJECTS[1]}' does not exist yet" in lines
    assert not succeeded(report)


def test_nothing_to_do(reconciler) -> None:
    reconciler()
    report = reconciler()
    document = as_json(report)
    assert document["status"] == "no-changes" and document["identities"]["status"] == "unchanged"
    assert document["roleBindings"] == [] and document["identities"]["changes"] == []
    assert as_text("fn-east", report)[:2] == ["cluster fn-east: no changes", "  aws-auth: unchanged"]
    assert succeeded(report) and not changed(report)


def test_what_counts_as_a_failure_of_a_run(reconciler, shell) -> None:
    assert failure(Forbidden("AccessDeniedException")) == "Forbidden: AccessDeniedException"
    shell.iam_port.add_user("alice", groups=[GROUP])
    assert failure(reconciler()) is None
    shell.clusters["fn-east"].bindings.fail("create", "rejected")
    shell.iam_port.add_user("bob", tags={f"{TAG_PREFIX}{NS3}": PROFILE})
    assert "422" in (failure(reconciler()) or "")
    for name in ("alice", "bob"):
        shell.iam_port.delete_user(name)
    assert (failure(reconciler()) or "").startswith("refused (deletion-breaker)")
