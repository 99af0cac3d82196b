"""From bare usernames to the service's own (issue 24): the first run of this release rewrites the
username of every identity it owns, in aws-auth (owned by the ledger) and in access entries (owned by
tag), and moves each tag-grant RoleBinding to the new username (the binding's name follows the
username: a create and a delete of the owned old one). Foreign entries and bindings stay as they are."""

from __future__ import annotations

from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.model.bindings import DesiredBinding, binding_name
from chalicelib.model.ownership import LEDGER_ANNOTATION
from chalicelib.model.sources import Source
from tests.functional.fakes import GROUP, KUBERNETES_GROUP, NS3, POD_READER, PROFILE, TAG_PREFIX, FakeCluster, user_arn

TAG = f"{TAG_PREFIX}{NS3}"
OLD_BINDING = binding_name("tag", "alice", PROFILE)  # as the previous release named it
NEW_BINDING = binding_name("tag", "eks-iam-sync:user:alice", PROFILE)


def usernames(cluster: FakeCluster) -> dict[str, str]:
    return {e.arn: e.username for e in read_aws_auth(cluster.aws_auth.data).entries("mapUsers")}


def as_the_previous_release_left_it(cluster: FakeCluster) -> None:
    """aws-auth maps alice as "alice" (the ledger owns the entry), her tag binding binds User alice."""
    data = cluster.aws_auth.data["mapUsers"]
    cluster.config_maps.edit({"mapUsers": data.replace('username: "eks-iam-sync:user:alice"', 'username: "alice"')})
    cluster.bindings.delete(cluster.bindings.owned()[(NS3, NEW_BINDING)].observed())
    cluster.bindings.create(
        DesiredBinding(
            NS3, OLD_BINDING, POD_READER, "User", "alice", (Source.tag(f"{TAG}={PROFILE}"),), user_arn("alice")
        )
    )


def test_aws_auth_usernames_and_tag_bindings_move_to_the_prefix(shell, reconciler) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP], tags={TAG: PROFILE})
    reconciler()
    east = shell.clusters["fn-east"]
    foreign = "- userarn: arn:aws:iam::123456789012:user/ops-admin\n  username: ops-admin\n  groups: [ops]\n"
    as_the_previous_release_left_it(east)
    east.config_maps.edit({"mapUsers": east.aws_auth.data["mapUsers"] + foreign})
    assert usernames(east)[user_arn("alice")] == "alice" and (NS3, OLD_BINDING) in east.bindings.owned()

    report = reconciler()
    [change] = report.applied.identities.changes
    assert (change.action, change.before and change.before.username, change.after and change.after.username) == (
        "update",
        "alice",
        "eks-iam-sync:user:alice",
    )
    assert usernames(east) == {
        user_arn("alice"): "eks-iam-sync:user:alice",
        "arn:aws:iam::123456789012:user/ops-admin": "ops-admin",  # foreign: untouched
    }
    assert Ledger.parse(east.aws_auth.annotations.get(LEDGER_ANNOTATION)).owns(user_arn("alice"))
    assert (NS3, OLD_BINDING) not in east.bindings.objects
    assert east.bindings.owned()[(NS3, NEW_BINDING)].subjects == (("User", "eks-iam-sync:user:alice"),)
    assert [a.verb for a in report.applied.bindings.done] == ["create", "delete"]
    assert not reconciler().changed  # converged


def test_access_entry_usernames_move_to_the_prefix(shell, reconciler) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    west = shell.clusters["fn-west"].with_access_entries("API")
    reconciler("fn-west")
    west.update(user_arn("alice"), "alice", (KUBERNETES_GROUP,))  # as the previous release wrote it
    west.writes.clear()

    report = reconciler("fn-west")
    [change] = report.applied.identities.changes
    assert change.action == "update" and change.after is not None and change.after.username == "eks-iam-sync:user:alice"
    assert west.entries[user_arn("alice")].username == "eks-iam-sync:user:alice"
    assert west.writes[0] == f"update {user_arn('alice')}"  # updated in place, never deleted and created
    assert not [w for w in west.writes if w.startswith(("create", "delete"))]
