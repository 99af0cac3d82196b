"""Guardrails on the post-image: each refusal, and what is allowed."""

from __future__ import annotations

from chalicelib.engine.awsauth.guardrails import check_current, check_post_image
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.merge import merge
from chalicelib.engine.awsauth.model import Entry
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.guardrails import Policy
from tests.unit.awsauth.builders import NODE, document, ledger_of, owned_role, owned_user, role, user

ALICE, BOB, CAROL, DAN = (user(n, "devs") for n in ("alice", "bob", "carol", "dan"))


NO_POLICY = Policy()


def reasons(data: dict[str, str], ledger: Ledger, desired, policy: Policy = NO_POLICY, scope=None) -> list[str]:
    before = read_aws_auth(data)
    result = merge(data, before, ledger, desired, scope)
    removed = sum(1 for c in result.changes if c.action == "remove")
    verdict = check_post_image(before, ledger, result.data, result.ledger, removed=removed, policy=policy)
    return [r.reason for r in verdict.refusals]


def test_a_document_the_consumer_misreads_is_never_written_over() -> None:
    verdict = check_current(read_aws_auth({"mapRoles": "- rolearn: x\n  username: system: admin\n"}))
    assert [r.reason for r in verdict.refusals] == ["current-not-understood"]
    assert "syntax error" in verdict.refusals[0].message


def test_clean_changes_pass() -> None:
    assert reasons(document(roles=[NODE]), Ledger(), [owned_user(ALICE)]) == []


def test_protected_entries_may_not_change_even_if_the_ledger_claims_them() -> None:
    data = document(roles=[NODE])
    tampered = ledger_of(owned_role(NODE))
    assert reasons(data, tampered, []) == ["protected-entry-changed"]


def test_the_service_own_and_break_glass_entries_are_protected() -> None:
    admin = role("break-glass", "admins")
    data = document(roles=[admin])
    policy = Policy(protected_arns=frozenset({admin.key}))
    assert reasons(data, ledger_of(owned_role(admin)), [], policy) == ["protected-entry-changed"]


def test_owned_entries_never_get_system_groups_or_reserved_or_empty_usernames() -> None:
    masters = Entry(ALICE.arn, "alice", ("system:masters",))
    assert reasons(document(), Ledger(), [owned_user(masters)]) == ["system-group"]
    assert reasons(document(), Ledger(), [owned_user(Entry(ALICE.arn, "eks:alice"))]) == ["reserved-username"]
    assert reasons(document(), Ledger(), [owned_user(Entry(ALICE.arn, " "))]) == ["empty-username"]


def test_owned_role_arns_have_no_path_and_no_shared_name() -> None:
    with_path = Entry("arn:aws:iam::111122223333:role/team/dev", "dev")
    assert reasons(document(), Ledger(), [owned_role(with_path)]) == ["role-path"]
    foreign = Entry("arn:aws:iam::111122223333:role/team/dev", "dev")
    assert reasons(document(roles=[foreign]), Ledger(), [owned_role(role("dev"))]) == ["roles-share-a-name"]


def test_duplicate_arns_in_a_post_image_are_refused() -> None:
    before = read_aws_auth({})
    after = {"mapUsers": f"- userarn: {ALICE.arn}\n  username: a\n- userarn: {ALICE.arn.upper()}\n  username: b\n"}
    verdict = check_post_image(before, Ledger(), after, Ledger(), removed=0, policy=Policy())
    assert [r.reason for r in verdict.refusals] == ["post-image-not-understood"]


def test_deletion_breaker() -> None:
    everyone = [owned_user(e) for e in (ALICE, BOB, CAROL, DAN)]
    data, ledger = document(users=[ALICE, BOB, CAROL, DAN]), ledger_of(*everyone)
    assert reasons(data, ledger, everyone[:2]) == []  # 2 of 4: exactly the share
    assert reasons(data, ledger, everyone[:1]) == ["deletion-breaker"]  # 3 of 4
    assert reasons(data, ledger, everyone[:1], Policy(force_deletions=True)) == []
    assert reasons(data, ledger, everyone[:1], Policy(max_deletion_share=0.75)) == []
    pair = ledger_of(*everyone[:2])
    assert reasons(document(users=[ALICE, BOB]), pair, []) == ["deletion-breaker"]  # never all
    single = ledger_of(everyone[0])
    assert reasons(document(users=[ALICE]), single, []) == []  # one removal is not a mass deletion


def test_size_limit() -> None:
    many = [owned_user(user(f"user-{i:05d}-{'x' * 60}", "devs")) for i in range(6000)]
    assert reasons(document(), Ledger(), many) == ["too-large"]


def test_size_budget_warns_past_80_percent_and_refuses_past_the_api_server_s_limits() -> None:
    from chalicelib.engine.awsauth.guardrails import ANNOTATIONS_LIMIT_BYTES, DATA_LIMIT_BYTES, size_shares  # noqa: PLC0415

    empty = read_aws_auth({})
    padding = {"mapAccounts": "[]\n", "x-notes": "#" * int(DATA_LIMIT_BYTES * 0.85)}
    near = check_post_image(empty, Ledger(), padding, Ledger(), removed=0, policy=Policy())
    assert near.allowed and any("data at 85%" in w for w in near.warnings)
    over = check_post_image(
        empty, Ledger(), {"x-notes": "#" * (DATA_LIMIT_BYTES + 1)}, Ledger(), removed=0, policy=Policy()
    )
    assert [r.reason for r in over.refusals] == ["too-large"] and "eks-iam-sync migrate" in over.refusals[0].message
    # someone's kubectl last-applied-configuration counts against the same 256 KiB as the ledger
    applied = {"kubectl.kubernetes.io/last-applied-configuration": "#" * int(ANNOTATIONS_LIMIT_BYTES * 0.9)}
    heavy = check_post_image(empty, Ledger(), {}, Ledger(), removed=0, policy=Policy(), annotations=applied)
    assert heavy.allowed and any("annotations at 90%" in w for w in heavy.warnings)
    assert dict(size_shares({}, applied))["annotations"] > 0.9
