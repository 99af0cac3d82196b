"""A corpus of aws-auth documents with what each parser generation loads and the verdict.

R = a role entry as (arn, username, groups). Each case: the raw value of one data key, the entries
Gen A loads, the entries Gen C loads, whether the key is understood, and a fragment of the problem
that must be reported (if any). Every test here runs on both YAML event sources (libyaml and pure
PyYAML), and each case must read identically, problems and lines included, on both.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chalicelib.config import yamlbounds
from chalicelib.engine.awsauth.model import MAP_ACCOUNTS, MAP_ROLES, MAP_USERS
from chalicelib.engine.awsauth.parse import KeyReading, read_aws_auth, read_key
from tests.unit import yaml_paths

NODE = "arn:aws:iam::111122223333:role/eks-node"
DEV = "arn:aws:iam::111122223333:role/dev"
ALICE = "arn:aws:iam::111122223333:user/alice"
NODE_GROUPS = ("system:bootstrappers", "system:nodes")


@dataclass(frozen=True)
class Case:
    name: str
    raw: str
    gen_a: list[tuple[str, str, tuple[str, ...]]]
    gen_c: list[tuple[str, str, tuple[str, ...]]]
    understood: bool
    problem: str = ""
    key: str = MAP_ROLES


@pytest.fixture(autouse=True, params=yaml_paths.PATHS)
def yaml_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    yaml_paths.select(request.param, monkeypatch)
    return str(request.param)


def nested(depth: int) -> str:
    """A role whose groups hold lists nesting the document ``depth`` deep (list, entry, lists, scalar)."""
    return f"- rolearn: {DEV}\n  username: dev\n  groups: " + "[" * (depth - 3) + "x" + "]" * (depth - 3) + "\n"


def sso(fields: str, extra: str = "") -> str:
    return f"- sso:\n{fields}  username: 'ro:{{{{SessionName}}}}'\n  groups: [viewers]\n{extra}"


ANCHORED_DEV = f"- &dev\n  rolearn: {DEV}\n  username: dev\n  groups: [devs]\n"
NODE_ENTRY = (NODE, "system:node:{{EC2PrivateDNSName}}", NODE_GROUPS)
NODE_YAML = (
    f"- groups:\n  - system:bootstrappers\n  - system:nodes\n  rolearn: {NODE}\n"
    "  username: system:node:{{EC2PrivateDNSName}}\n"
)
CORPUS = [
    Case(
        "EKS default node role",
        f"- groups:\n  - system:bootstrappers\n  - system:nodes\n  rolearn: {NODE}\n"
        "  username: system:node:{{EC2PrivateDNSName}}\n",
        [NODE_ENTRY],
        [NODE_ENTRY],
        True,
    ),
    Case(
        "Fargate profile",
        "- rolearn: arn:aws:iam::111122223333:role/fargate\n  username: system:node:{{SessionName}}\n"
        "  groups: [system:bootstrappers, system:nodes, system:node-proxier]\n",
        [
            (
                "arn:aws:iam::111122223333:role/fargate",
                "system:node:{{SessionName}}",
                (*NODE_GROUPS, "system:node-proxier"),
            )
        ],
        [
            (
                "arn:aws:iam::111122223333:role/fargate",
                "system:node:{{SessionName}}",
                (*NODE_GROUPS, "system:node-proxier"),
            )
        ],
        True,
    ),
    Case(
        "Windows node role",
        f'- rolearn: {NODE}\n  username: "system:node:{{{{EC2PrivateDNSName}}}}"\n'
        "  groups:\n    - system:bootstrappers\n    - system:nodes\n    - eks:kube-proxy-windows\n",
        [(NODE, "system:node:{{EC2PrivateDNSName}}", (*NODE_GROUPS, "eks:kube-proxy-windows"))],
        [(NODE, "system:node:{{EC2PrivateDNSName}}", (*NODE_GROUPS, "eks:kube-proxy-windows"))],
        True,
    ),
    Case("empty string", "", [], [], True),
    Case("empty quotes", '""', [], [], True),
    Case("empty single quotes", "''", [], [], True),
    Case("empty list", "[]", [], [], True),
    Case("null", "null", [], [], True),
    Case(
        "quoted template",
        f"- rolearn: {DEV}\n  username: 'dev:{{{{SessionName}}}}'\n  groups: [devs]\n",
        [(DEV, "dev:{{SessionName}}", ("devs",))],
        [(DEV, "dev:{{SessionName}}", ("devs",))],
        True,
    ),
    Case(
        "JSON array",
        f'[{{"rolearn": "{DEV}", "username": "dev", "groups": ["devs"]}}]',
        [(DEV, "dev", ("devs",))],
        [(DEV, "dev", ("devs",))],
        True,
    ),
    Case(
        "unquoted {{SessionName}}",
        f"- rolearn: {DEV}\n  username: {{{{SessionName}}}}\n",
        [],
        [],
        False,
        "cannot become JSON",
    ),
    Case("tab indentation", f"- rolearn: {DEV}\n\tusername: dev\n", [], [], False, "tab character"),
    Case(
        "NBSP indentation",
        f"- rolearn: {DEV}\n\u00a0 username: dev\n",
        [],
        [],
        False,
        "non-breaking space",
    ),
    Case("': ' inside a value", f"- rolearn: {DEV}\n  username: system: admin\n", [], [], False, "syntax error"),
    Case("key:value without space", f"- rolearn: {DEV}\n  username:dev\n", [], [], False, "syntax error"),
    Case(
        "misaligned continuation",
        f"- rolearn: {DEV}\n   username: dev\n",
        [],
        [],
        False,
        "syntax error",
    ),
    Case(
        "extra space before a list item",
        f"- rolearn: {NODE}\n  username: n\n  groups:\n    - system:bootstrappers\n     - system:nodes\n",
        [(NODE, "n", ("system:bootstrappers - system:nodes",))],
        [(NODE, "n", ("system:bootstrappers - system:nodes",))],
        False,
        "two list items merged",
    ),
    Case(
        "scalar groups",
        f"- rolearn: {DEV}\n  username: dev\n  groups: system:masters\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        False,
        "groups: wrong type",
    ),
    Case("JSON object instead of array", f'{{"rolearn": "{DEV}", "username": "dev"}}', [], [], False, "an object"),
    Case(
        "JSON \\/ escape",
        '[{"rolearn": "arn:aws:iam::111122223333:role\\/dev", "username": "dev"}]',
        [],
        [],
        False,
        "go-yaml v2 rejects",
    ),
    Case(
        "JSON surrogate pair",
        f'[{{"rolearn": "{DEV}", "username": "\\ud83d\\ude00"}}]',
        [],
        [],
        False,
        "surrogate",
    ),
    Case(
        "duplicate keys in an entry",
        f"- rolearn: {DEV}\n  username: first\n  username: second\n",
        [(DEV, "second", ())],
        [(DEV, "second", ())],
        False,
        "duplicate field",
    ),
    Case(
        "role ARNs differing in case: roles are keyed by lower-case ARN, the last wins in both generations",
        f"- rolearn: {DEV}\n  username: a\n- rolearn: {DEV.upper().replace('ARN:AWS:IAM', 'arn:aws:iam')}\n  username: b\n",
        [(DEV, "a", ()), (DEV.upper().replace("ARN:AWS:IAM", "arn:aws:iam"), "b", ())],
        [(DEV, "a", ()), (DEV.upper().replace("ARN:AWS:IAM", "arn:aws:iam"), "b", ())],
        True,
        "the consumer uses the last",
    ),
    Case(
        "eksctl's exact duplicate entries (it wrote them by default)",
        NODE_YAML + NODE_YAML,
        [NODE_ENTRY, NODE_ENTRY],
        [NODE_ENTRY, NODE_ENTRY],
        True,
        "2 entries for",
    ),
    Case(
        "same role ARN twice with different groups: the last wins",
        f"- rolearn: {DEV}\n  username: dev\n  groups: [a]\n- rolearn: {DEV}\n  username: dev\n  groups: [b]\n",
        [(DEV, "dev", ("a",)), (DEV, "dev", ("b",))],
        [(DEV, "dev", ("a",)), (DEV, "dev", ("b",))],
        True,
        "the consumer uses the last",
    ),
    Case(
        "user ARNs differing only in case: the winner is random",
        f"- userarn: {ALICE}\n  username: a\n- userarn: {ALICE.replace('alice', 'Alice')}\n  username: b\n",
        [(ALICE, "a", ()), (ALICE.replace("alice", "Alice"), "b", ())],
        [(ALICE, "a", ()), (ALICE.replace("alice", "Alice"), "b", ())],
        False,
        "picks one at random",
        key=MAP_USERS,
    ),
    Case(
        "an sso: entry (Identity Center permission set) beside a role",
        "- sso:\n    permissionSetName: ReadOnly\n    accountID: '111122223333'\n  username: ro:{{SessionName}}\n"
        f"  groups: [viewers]\n- rolearn: {DEV}\n  username: dev\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        True,
        "an sso: entry",
    ),
    Case(
        "roleARN casing",
        f"- roleARN: {DEV}\n  username: dev\n",
        [("", "dev", ())],
        [(DEV, "dev", ())],
        False,
        "not lower case",
    ),
    Case(
        "a second document",
        f"- rolearn: {DEV}\n  username: dev\n---\n- rolearn: {NODE}\n  username: n\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        False,
        "second YAML document",
    ),
    Case(
        "YAML 1.1 booleans and numbers",
        f"- rolearn: {DEV}\n  username: 1234\n  groups: [no, on, '010']\n",
        [(DEV, "1234", ("no", "on", "010"))],
        [(DEV, "", ("", "", "010"))],
        False,
        "Gen C zeroes the field",
    ),
    Case(
        "entry without an ARN",
        "- username: orphan\n  groups: [x]\n",
        [("", "orphan", ("x",))],
        [],
        False,
        "Gen C drops it",
    ),
    Case(
        "role ARN with a path",
        "- rolearn: arn:aws:iam::111122223333:role/teams/dev\n  username: dev\n",
        [("arn:aws:iam::111122223333:role/teams/dev", "dev", ())],
        [("arn:aws:iam::111122223333:role/teams/dev", "dev", ())],
        True,
        "never matches",
    ),
    Case(
        "unknown field kept",
        f"- rolearn: {DEV}\n  username: dev\n  syncedBy: qovery\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        True,
        "unknown field 'syncedBy'",
    ),
    Case("a scalar document", "hello", [], [], False, "a scalar"),
    Case(
        "null fields",
        f"- rolearn: {DEV}\n  username: ~\n  groups:\n",
        [(DEV, "", ())],
        [(DEV, "", ())],
        True,
        "empty username",
    ),
    Case(
        "user entry, partition aws-cn",
        "- userarn: arn:aws-cn:iam::111122223333:user/ops/bob\n  username: bob\n  groups: [ops]\n",
        [("arn:aws-cn:iam::111122223333:user/ops/bob", "bob", ("ops",))],
        [("arn:aws-cn:iam::111122223333:user/ops/bob", "bob", ("ops",))],
        True,
        key=MAP_USERS,
    ),
    Case(
        "rolearn in mapUsers",
        f"- rolearn: {DEV}\n  username: dev\n",
        [("", "dev", ())],
        [],
        False,
        "entry without userarn",
        key=MAP_USERS,
    ),
    # YAML merge keys: go-yaml (both generations) merges the aliased mapping in; refused, never rewritten.
    Case(
        "merge key from an anchored entry",
        ANCHORED_DEV + f"- <<: *dev\n  rolearn: {NODE}\n",
        [(DEV, "dev", ("devs",)), (NODE, "", ())],
        [(DEV, "dev", ("devs",)), (NODE, "", ())],
        False,
        "YAML merge key '<<'",
    ),
    Case(
        "merge key overriding a merged field",
        ANCHORED_DEV + "- <<: *dev\n  username: other\n",
        [(DEV, "dev", ("devs",)), ("", "other", ())],
        [(DEV, "dev", ("devs",))],
        False,
        "YAML merge key '<<'",
    ),
    Case(
        "merge of a sequence of mappings",
        f"- &a {{rolearn: {DEV}}}\n- &b {{username: dev}}\n- {{<<: [*a, *b], groups: [devs]}}\n",
        [(DEV, "", ()), ("", "dev", ()), ("", "", ("devs",))],
        [(DEV, "", ())],
        False,
        "YAML merge key '<<'",
    ),
    Case(
        "merge key nested in an unknown field",
        f"- rolearn: {DEV}\n  username: dev\n  note: &n {{a: 1}}\n- rolearn: {NODE}\n  username: n\n"
        "  note: {<<: *n, b: 2}\n",
        [(DEV, "dev", ()), (NODE, "n", ())],
        [(DEV, "dev", ()), (NODE, "n", ())],
        False,
        "YAML merge key '<<'",
    ),
    Case(
        "a quoted '<<' is an ordinary field, not a merge",
        f"- rolearn: {DEV}\n  username: dev\n  '<<': x\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        True,
        "unknown field '<<'",
    ),
    # Nesting depth is bounded before anything recurses.
    Case("nested 100 deep: read", nested(100), [(DEV, "dev", ("",))], [(DEV, "dev", ("",))], False, "groups[]: wrong"),
    Case("nested 101 deep: refused", nested(101), [], [], False, "nested deeper than 100 levels"),
    Case("nested 2 000 deep: refused", nested(2000), [], [], False, "nested deeper than 100 levels"),
    Case(
        "block sequences nested 3 000 deep: refused",
        "- " * 3000 + "x\n",
        [],
        [],
        False,
        "nested deeper than 100 levels",
    ),
    # sso: entries, as aws-iam-authenticator's RoleMapping.Validate judges them (it drops invalid ones).
    Case(
        "sso: entry in partition aws-cn, field names in any case",
        sso("    PermissionSetName: Admin.Team@x\n    AccountId: '111122223333'\n    partition: aws-cn\n"),
        [],
        [],
        True,
        "an sso: entry",
    ),
    Case(
        "sso: account ID of 11 digits",
        sso("    permissionSetName: ReadOnly\n    accountID: '11112222333'\n"),
        [],
        [],
        False,
        "sso.accountID '11112222333' is not 12 digits",
    ),
    Case(
        "sso: account ID unquoted (a YAML int, zeroed by Gen C)",
        sso("    permissionSetName: ReadOnly\n    accountID: 111122223333\n"),
        [],
        [],
        False,
        "sso.accountID '' is not 12 digits",
    ),
    Case(
        "sso: permission-set name with a space",
        sso("    permissionSetName: Read Only\n    accountID: '111122223333'\n"),
        [],
        [],
        False,
        "sso.permissionSetName 'Read Only' is not a permission-set name",
    ),
    Case(
        "sso: permission-set name of 33 characters",
        sso(f"    permissionSetName: {'P' * 33}\n    accountID: '111122223333'\n"),
        [],
        [],
        False,
        "is not a permission-set name",
    ),
    Case(
        "sso: permission-set name with a non-ASCII letter (Go's \\w is ASCII)",
        sso("    permissionSetName: Lecture\u00e9\n    accountID: '111122223333'\n"),
        [],
        [],
        False,
        "is not a permission-set name",
    ),
    Case(
        "sso: missing permission-set name",
        sso("    accountID: '111122223333'\n"),
        [],
        [],
        False,
        "sso.permissionSetName '' is not a permission-set name",
    ),
    Case(
        "sso: an invalid partition",
        sso("    permissionSetName: ReadOnly\n    accountID: '111122223333'\n    partition: aws-moon\n"),
        [],
        [],
        False,
        "sso.partition 'aws-moon' is not a partition",
    ),
    Case(
        "sso: a partition only 2025+ authenticators know",
        sso("    permissionSetName: ReadOnly\n    accountID: '111122223333'\n    partition: aws-eusc\n"),
        [],
        [],
        False,
        "known only to authenticators from 2025 on",
    ),
    Case(
        "sso: and rolearn in one entry",
        sso("    permissionSetName: ReadOnly\n    accountID: '111122223333'\n", f"  rolearn: {DEV}\n").replace(
            "  username: 'ro:{{SessionName}}'\n  groups: [viewers]\n", ""
        )
        + "  username: dev\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        False,
        "both rolearn and sso",
    ),
    Case(
        "sso: a scalar",
        f"- sso: ReadOnly\n  rolearn: {DEV}\n  username: dev\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        False,
        "sso: wrong type (str)",
    ),
    Case(
        "sso: null beside a rolearn is an ordinary entry",
        f"- sso: null\n  rolearn: {DEV}\n  username: dev\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        True,
        "unknown field 'sso'",
    ),
    # Where libyaml and PyYAML's scanner differ; both paths must still read alike.
    Case(
        "byte-order mark first",
        f"\ufeff- rolearn: {DEV}\n  username: dev\n",
        [(DEV, "dev", ())],
        [(DEV, "dev", ())],
        True,
    ),
    Case(
        "byte-order mark at the start of a later line",
        f"- rolearn: {DEV}\n\ufeff  username: dev\n",
        [],
        [],
        False,
        "byte-order mark inside the text",
    ),
    Case("tab after a value", f"- rolearn: {DEV}\n  username: dev\t\n", [], [], False, "tab character"),
    Case("tab inside a flow list", f"- rolearn: {DEV}\n  groups: [a,\tb]\n", [], [], False, "tab character"),
    Case("'?' in a flow plain scalar", f"- rolearn: {DEV}\n  groups: [a?b]\n", [], [], False, "expected ',' or ']'"),
    Case("a tag ended by a comma in a flow list", f"- rolearn: {DEV}\n  groups: [!x,y]\n", [], [], False, "syntax"),
    Case(
        "a comment right after a block scalar indicator",
        f"- rolearn: {DEV}\n  username: |#c\n    dev\n",
        [],
        [],
        False,
        "syntax error",
    ),
    Case(
        "\\/ after a non-ASCII character",
        f'[{{"rolearn": "{DEV}", "username": "caf\u00e9\\/x"}}]',
        [],
        [],
        False,
        "go-yaml v2 rejects",
    ),
    Case(
        "\\/ after a character outside the BMP",
        f'[{{"rolearn": "{DEV}", "note": "\U0001f600", "username": "x\\/y"}}]',
        [],
        [],
        False,
        "go-yaml v2 rejects",
    ),
    Case(
        "a BMP escape is fine",
        f'[{{"rolearn": "{DEV}", "username": "caf\\u00e9"}}]',
        [(DEV, "caf\u00e9", ())],
        [(DEV, "caf\u00e9", ())],
        True,
    ),
    Case(
        "a plain key over 1 024 characters",
        f"- rolearn: {DEV}\n  username: dev\n  {'k' * 1100}: v\n",
        [],
        [],
        False,
        "could not find expected ':'",
    ),
    Case(
        "a control character",
        f"- rolearn: {DEV}\n  username: d\x01ev\n",
        [],
        [],
        False,
        "special characters are not allowed",
    ),
]


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_corpus(case: Case) -> None:
    reading = read_key(case.key, case.raw)
    assert [(e.arn, e.username, e.groups) for e in reading.gen_a] == case.gen_a
    assert [(e.arn, e.username, e.groups) for e in reading.gen_c] == case.gen_c
    assert reading.understood is case.understood, [p.render() for p in reading.problems]
    rendered = [p.render() for p in reading.problems]
    if case.problem:
        assert any(case.problem in p for p in rendered), rendered
    if case.understood:
        assert not any(p.startswith("error") for p in rendered)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_both_yaml_paths_read_each_case_identically(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """Problems, their messages and lines included; the fixture's path is the first, the pure one the second."""
    first = read_key(case.key, case.raw)
    monkeypatch.setattr(yamlbounds, "LIBYAML", None)
    second: KeyReading = read_key(case.key, case.raw)
    assert first == second


def test_keys_are_read_independently_and_mapaccounts_by_go_yaml_v2() -> None:
    reading = read_aws_auth(
        {
            MAP_ROLES: f"- rolearn: {DEV}\n  username: system: admin\n",
            MAP_USERS: f"- userarn: {ALICE}\n  username: alice\n",
            MAP_ACCOUNTS: "- 111122223333\n- '444455556666'\n- 12\n",
        }
    )
    assert reading.entries(MAP_ROLES) == ()
    assert [e.arn for e in reading.entries(MAP_USERS)] == [ALICE]
    assert reading.accounts == ("111122223333", "444455556666", "12")
    assert not reading.understood
    assert any("'12' is not a 12-digit account ID" in p.render() for p in reading.problems)


@pytest.mark.parametrize("key", ["maproles", "MapRoles", "mapRole", "map_users", "MAPACCOUNTS"])
def test_misspelled_data_keys_are_reported(key: str) -> None:
    reading = read_aws_auth({key: f"- rolearn: {DEV}\n  username: dev\n"})
    assert any("is ignored by the consumer" in p.message and key in p.message for p in reading.problems)
    assert reading.entries(MAP_ROLES) == ()
    assert reading.understood  # an ignored key is reported, not an error
