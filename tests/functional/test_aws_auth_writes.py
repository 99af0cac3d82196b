"""aws-auth writes through the handlers, on fakes: an event writes aws-auth only for a change of what
it maps or of what its ledger answers, and the last version someone else wrote survives any burst of
the service's own writes."""

from __future__ import annotations

from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from chalicelib.model.ownership import AWS_AUTH_NAME, LEDGER_ANNOTATION
from tests.functional.fakes import GROUP, NODE_ROLE, NS3, PROFILE, TAG_PREFIX, FakeShell, RecordingObserver, user_arn

TAG = f"{TAG_PREFIX}{NS3}"
BREAK_GLASS = "- rolearn: arn:aws:iam::111122223333:role/break-glass\n  username: break-glass\n  groups: [ops]\n"


def aws_auth_writes(shell: FakeShell) -> dict[str, int]:
    return {
        name: sum(1 for w in cluster.config_maps.writes if w.endswith(f" {AWS_AUTH_NAME}"))
        for name, cluster in shell.clusters.items()
    }


def test_a_tag_on_a_mapped_group_member_binds_it_without_rewriting_aws_auth(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    before = aws_auth_writes(shell)
    versions = {name: c.aws_auth.resource_version for name, c in shell.clusters.items()}

    shell.iam_port.tag_user("alice", {TAG: PROFILE})
    result = lambdas.event("TagUser", userName="alice", tags=[{"key": TAG, "value": PROFILE}])

    assert aws_auth_writes(shell) == before  # no write, no backup: the entry is the same
    assert {name: c.aws_auth.resource_version for name, c in shell.clusters.items()} == versions
    for name, cluster in shell.clusters.items():
        assert result["clusters"][name]["identities"]["status"] == "unchanged"
        assert any(namespace == NS3 for namespace, _ in cluster.bindings.owned())  # the tag's grant
        # the ledger still says alice was mapped for the group: a deleted group still finds her
        ledger = Ledger.parse(cluster.aws_auth.annotations[LEDGER_ANNOTATION])
        assert ledger.members_of([GROUP]) == {"alice"}


def test_a_burst_of_30_events_leaves_the_last_hand_edited_aws_auth_restorable(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    lambdas.reconcile_all()  # the first write of the hour: the hour's slot keeps the version before it
    east = shell.clusters["fn-east"]
    east.config_maps.edit({"mapRoles": east.aws_auth.data["mapRoles"] + BREAK_GLASS})  # kubectl edit
    edited = dict(east.aws_auth.data)

    for number in range(30):  # Terraform adds 30 users within a minute
        shell.iam_port.add_user(f"u{number:02d}", groups=[GROUP])
        lambdas.event("AddUserToGroup", groupName=GROUP, userName=f"u{number:02d}")
    assert user_arn("u29") in east.aws_auth.data["mapUsers"]

    writer = AwsAuthWriter(east.config_maps, RecordingObserver())
    kept = writer.kept()
    [by_hand] = [b for b in kept.backups if b.data == edited]
    assert kept.foreign(by_hand) and not kept.unreadable
    assert writer.restore(by_hand.sequence).status == "written"
    assert east.aws_auth.data == edited and NODE_ROLE in east.aws_auth.data["mapRoles"]
