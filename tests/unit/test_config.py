"""The configuration contract: the seed loads; every bad file is refused with its key path and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chalicelib.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from chalicelib.entry.cli import main

VALID = """\
clusters:
  - name: bttrm-eks-dev-0
    region: us-east-2
identities:
  groups:
    - iamGroup: iam-bttrm-web-ro-group
      kubernetesGroups: [rbac-bttrm-web-ro-group]
  roles:
    - iamRole: iam-bttrm-web-ro-role
      kubernetesGroups: [rbac-bttrm-web-ro-group]
namespaceGrants:
  - kubernetesGroup: rbac-bttrm-web-ro-group
    clusterRole: rbac-bttrm-pods-ro-cluster-role
    namespaces: [bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]
tagGrants:
  profiles:
    pods-ro: rbac-bttrm-pods-ro-cluster-role
"""


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as err:
        parse_config(textwrap.dedent(text))
    return [(p.path, p.line, p.message) for p in err.value.problems]


def test_the_shipped_seed_config_is_valid() -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.clusters[0].name == "bttrm-eks-dev-0"
    assert config.identities.groups[0].kubernetes_groups == ("rbac-bttrm-web-ro-group",)
    assert config.namespace_grants[0].namespaces == ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns")
    assert config.tag_grants.profiles == {"pods-ro": "rbac-bttrm-pods-ro-cluster-role"}


def test_defaults() -> None:
    config = parse_config(VALID)
    assert config.identities.roles[0].username is None
    assert config.identities.username_prefix == "eks-iam-sync:"
    assert config.tag_grants.tag_prefix == "eks-access/"
    assert config.tag_grants.denied_namespaces == ("kube-system", "kube-public", "kube-node-lease")
    assert config.clusters[0].endpoint is None and config.clusters[0].insecure_skip_tls_verify is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clusters: []\n", [("clusters", 1, "must list at least one entry")]),
        ("identities: {}\n", [("clusters", 1, "required key is missing")]),
        (
            "clusters:\n  - name: c\n    region: us-east-2\n    colour: blue\n",
            [("clusters[0].colour", 4, "unknown key")],
        ),
        (
            "clusters:\n  - name: c\n    region: 5\n",
            [("clusters[0].region", 3, "Input should be a valid string")],
        ),
        (
            "clusters:\n  - name: c\n    region: us-east-2\n    insecureSkipTLSVerify: 'yes'\n",
            [("clusters[0].insecureSkipTLSVerify", 4, "Input should be a valid boolean")],
        ),
        (
            "clusters:\n  - {name: c, region: us-east-2}\nidentities:\n  groups:\n"
            "    - iamGroup: g\n      kubernetesGroups: [ok, system:masters]\n",
            [
                (
                    "identities.groups[0].kubernetesGroups[1]",
                    6,
                    "'system:masters': 'system:' groups (system:masters above all) are never granted, in any case",
                )
            ],
        ),
        (
            "clusters:\n  - {name: c, region: us-east-2}\nnamespaceGrants:\n"
            "  - kubernetesGroup: g\n    clusterRole: r\n    namespaces: [ok, Not_OK]\n",
            [
                (
                    "namespaceGrants[0].namespaces[1]",
                    6,
                    "'Not_OK' is not a valid namespace name (RFC 1123 label, at most 63 characters)",
                )
            ],
        ),
        (
            "clusters:\n  - {name: c, region: us-east-2}\ntagGrants:\n  deniedNamespaces: [kube-system, -x]\n",
            [
                (
                    "tagGrants.deniedNamespaces[1]",
                    4,
                    "'-x' is not a valid namespace name (RFC 1123 label, at most 63 characters)",
                )
            ],
        ),
        (
            "clusters:\n  - name: c\n    region: nowhere\n",
            [("clusters[0].region", 3, "'nowhere' is not a valid AWS region")],
        ),
        (
            "clusters:\n  - {name: c, region: us-east-2, endpoint: 'http://x'}\n",
            [("clusters[0].endpoint", 2, "'http://x' is not an https:// URL")],
        ),
        (
            "clusters:\n  - {name: c, region: us-east-2, certificateAuthorityData: bm90IGEgY2VydA==}\n",
            [
                (
                    "clusters[0].certificateAuthorityData",
                    2,
                    "certificateAuthorityData must be a base64-encoded PEM certificate",
                )
            ],
        ),
    ],
)
def test_shape_problems_name_the_key_path_and_line(text: str, expected: list[tuple[str, int | None, str]]) -> None:
    assert problems(text) == expected


def test_cross_key_problems() -> None:
    found = problems(
        """\
        clusters:
          - {name: c, region: us-east-2}
          - {name: c, region: eu-west-1}
        identities:
          roles:
            - iamRole: Admin
            - iamRole: admin
        namespaceGrants:
          - kubernetesGroup: g
            clusterRole: r
          - kubernetesGroup: g
            clusterRole: r
            namespaces: [a]
            namespaceSelector: {matchLabels: {team: web}}
        tagGrants:
          profiles:
            pods-ro: view-pods
            readers: view-pods
        """
    )
    assert found == [
        ("clusters[1].name", 3, "duplicate cluster 'c' (first at clusters[0].name)"),
        (
            "identities.roles[1].iamRole",
            7,
            "duplicate IAM role (role names are compared case-insensitively, as aws-iam-authenticator "
            "matches ARNs) 'admin' (first at identities.roles[0].iamRole)",
        ),
        ("namespaceGrants[0]", 9, "give exactly one of 'namespaces' or 'namespaceSelector'"),
        ("namespaceGrants[1]", 11, "give exactly one of 'namespaces' or 'namespaceSelector'"),
        (
            "tagGrants.profiles.readers",
            18,
            "ClusterRole 'view-pods' is already named by profile 'pods-ro'; one profile per ClusterRole",
        ),
    ]


def test_reserved_usernames_are_refused() -> None:
    found = problems(
        "clusters:\n  - {name: c, region: us-east-2}\nidentities:\n  roles:\n    - {iamRole: r, username: 'eks:x'}\n"
    )
    assert found[0][:2] == ("identities.roles[0].username", 5)
    assert "reserved prefix" in found[0][2]


def test_yaml_problems() -> None:
    assert problems("clusters:\n  - name: a\n    name: b\n    region: us-east-2\n") == [
        ("clusters[0].name", 3, "duplicate key")
    ]
    [(path, line, message)] = problems("clusters:\n  - name: a\n  region: x\n")
    assert (path, line) == ("", 3) and message.startswith("YAML syntax error")
    assert problems("") == [("", None, "the file is empty")]
    assert problems("clusters: [a]\n---\nclusters: [b]\n")[0][2].startswith("YAML")


def test_namespace_selector_is_validated() -> None:
    config = parse_config(
        "clusters:\n  - {name: c, region: us-east-2}\nnamespaceGrants:\n  - kubernetesGroup: g\n    clusterRole: r\n"
        "    namespaceSelector:\n      matchLabels: {team: web}\n"
        "      matchExpressions: [{key: tier, operator: In, values: [dev]}]\n"
    )
    selector = config.namespace_grants[0].namespace_selector
    assert selector is not None and selector.match_labels == {"team": "web"}
    found = problems(
        "clusters:\n  - {name: c, region: us-east-2}\nnamespaceGrants:\n  - kubernetesGroup: g\n    clusterRole: r\n"
        "    namespaceSelector:\n      matchExpressions: [{key: tier, operator: Like}]\n"
    )
    assert found[0][:2] == ("namespaceGrants[0].namespaceSelector.matchExpressions[0].operator", 7)


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DEFAULT_CONFIG_PATH)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "valid: 1 cluster, 1 IAM group mapping" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters:\n  - name: c\n    region: us-east-2\n    extra: 1\n")
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: clusters[0].extra: unknown key" in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().err


def test_validate_defaults_to_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(VALID)
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(path))
    assert main(["validate"]) == 0
    assert str(path) in capsys.readouterr().out


ROLE = "- iamRole: iam-bttrm-web-ro-role"


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("[rbac-bttrm-web-ro-group]", "[SYSTEM:masters]", "never granted, in any case"),
        ("[rbac-bttrm-web-ro-group]", '[" system:masters"]', "must not start or end with whitespace"),
        ("[rbac-bttrm-web-ro-group]", '["devs\\u0007"]', "control or invisible characters"),
        (ROLE, f'{ROLE}\n      username: "ci "', "must not start or end with whitespace"),
        (ROLE, f"{ROLE}\n      username: EKS:ci", "reserved prefix"),
        (ROLE, f"{ROLE}\n      username: ops-admin", "could be a subject the service does not own"),
        ("[bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]", "[kube-system]", "set allowSystemNamespaces: true"),
        ("    pods-ro: rbac-bttrm-pods-ro-cluster-role", "    pods-ro: admin", "is privileged"),
    ],
)
def test_validate_is_as_strict_as_the_runtime(replace: str, by: str, message: str) -> None:
    text = DEFAULT_CONFIG_PATH.read_text().replace(replace, by, 1)
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_a_system_namespace_grant_with_the_opt_in_is_valid() -> None:
    text = DEFAULT_CONFIG_PATH.read_text().replace(
        "    namespaces: [bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]",
        "    namespaces: [kube-system]\n    allowSystemNamespaces: true",
    )
    assert parse_config(text).namespace_grants[0].allow_system_namespaces


CROSS_ACCOUNT = """\
clusters:
  - name: bttrm-eks-dev-0
    region: us-east-2
  - name: bttrm-eks-prod-0
    region: eu-west-1
    roleArn: arn:aws:iam::222222222222:role/platform/eks-iam-sync-access
    externalId: bttrm-eks-prod-0
iam:
  roleArn: arn:aws:iam::333333333333:role/eks-iam-sync-iam-reader
"""


def test_clusters_in_other_accounts_and_iam_in_an_identity_account() -> None:
    config = parse_config(CROSS_ACCOUNT)
    own, other = config.clusters
    assert own.assumed_role is None and own.role_arn is None
    assert other.assumed_role is not None
    assert other.assumed_role.role_arn == "arn:aws:iam::222222222222:role/platform/eks-iam-sync-access"
    assert other.assumed_role.external_id == "bttrm-eks-prod-0"
    assert config.iam_role is not None and config.iam_role.external_id is None
    assert config.iam_role.role_arn == "arn:aws:iam::333333333333:role/eks-iam-sync-iam-reader"
    assert parse_config(VALID).iam_role is None


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-cn:iam::222222222222:role/eks-iam-sync-access",
        "arn:aws-us-gov:iam::222222222222:role/a/b/eks-iam-sync-access",
        "arn:aws:iam::222222222222:role/name+=,.@_-",
    ],
)
def test_role_arns_of_every_partition_and_path_are_accepted(arn: str) -> None:
    config = parse_config(CROSS_ACCOUNT.replace("arn:aws:iam::333333333333:role/eks-iam-sync-iam-reader", arn))
    assert config.iam_role is not None and config.iam_role.role_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sts::222222222222:assumed-role/eks-iam-sync-access/eks-iam-sync",
        "arn:aws:iam::222222222222:user/alice",
        "arn:aws:iam::22222222222:role/short-account",
        "arn:aws:iam::222222222222:role/",
        "arn:aws:iam::222222222222:role/path/",
        "arn:gcp:iam::222222222222:role/x",
        "eks-iam-sync-access",
        "arn:aws:iam::222222222222:role/" + "n" * 65,
    ],
)
def test_anything_but_an_iam_role_arn_is_refused(arn: str) -> None:
    text = CROSS_ACCOUNT.replace("arn:aws:iam::222222222222:role/platform/eks-iam-sync-access", arn)
    [(path, line, message)] = problems(text)
    assert (path, line) == ("clusters[1].roleArn", 6)
    assert message.startswith(f"{arn!r} is not a valid IAM role ARN")


def test_cross_account_keys_are_checked_like_any_other() -> None:
    text = CROSS_ACCOUNT.replace("    externalId: bttrm-eks-prod-0\n", "    externalId: 'x'\n    role: admin\n")
    text = text.replace("iam:\n", "iam:\n  externalId: ok-id\n  region: us-east-1\n").replace(
        "  roleArn: arn:aws:iam::333333333333:role/eks-iam-sync-iam-reader\n", ""
    )
    assert problems(text) == [
        ("clusters[1].externalId", 7, "'x' is not a valid external id (2 to 1224 of A-Z a-z 0-9 _ + = , . @ : / -)"),
        ("clusters[1].role", 8, "unknown key"),
        ("iam.roleArn", 9, "required key is missing"),
        ("iam.region", 11, "unknown key"),
    ]


def test_an_external_id_without_a_role_is_refused() -> None:
    text = CROSS_ACCOUNT.replace("    region: us-east-2\n", "    region: us-east-2\n    externalId: orphan-id\n", 1)
    assert problems(text) == [
        (
            "clusters[0].externalId",
            4,
            "externalId is sent when assuming roleArn: give the cluster's roleArn too",
        )
    ]


# Issue 24: usernames the service owns, system namespaces a floor for tag grants, ASCII IAM names.

ROLES = "clusters:\n  - {name: c, region: us-east-2}\nidentities:\n"


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("ops-admin", "could be a subject the service does not own"),
        ("alice@example.com", "could be a subject the service does not own"),
        ("'{{SessionName}}'", "could be a subject the service does not own"),  # no namespace of its own
        ("'{{AccountID}}:ci'", "could be a subject the service does not own"),  # fixed per account
        ("eks-iam-sync:user:bob", "the usernames of the principals the service maps by name"),
        ("'eks-iam-sync:role:ci:{{SessionName}}'", "the usernames of the principals the service maps by name"),
    ],
)
def test_an_explicit_username_that_could_collide_is_refused(username: str, message: str) -> None:
    for key in ("roles:\n    - {iamRole: r, username: %s}\n", "permissionSets:\n    - {name: p, username: %s}\n"):
        [(path, _, found)] = problems(ROLES + "  " + key % username)
        assert path.endswith("[0].username") and message in found


@pytest.mark.parametrize("username", ["eks-iam-sync:deployers", "'ci:{{SessionName}}'", "'sso:{{SessionNameRaw}}'"])
def test_an_explicit_username_under_the_prefix_or_per_session_is_valid(username: str) -> None:
    config = parse_config(ROLES + f"  roles:\n    - {{iamRole: r, username: {username}}}\n")
    assert config.identities.roles[0].username == username.strip("'")


def test_an_explicit_username_follows_a_configured_prefix() -> None:
    text = ROLES + "  usernamePrefix: 'corp:'\n  roles:\n    - {iamRole: r, username: %s}\n"
    assert parse_config(text % "corp:deployers").identities.username_prefix == "corp:"
    [(_, _, message)] = problems(text % "eks-iam-sync:deployers")
    assert "usernamePrefix 'corp:'" in message


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("'iam:'", "reserves"),
        ("'IAM:'", "reserves"),
        ("'eks:sync:'", "reserves"),
        ("'system:'", "reserves"),
        ("'amazon:'", "reserves"),
        ("'aws:'", "reserves"),
        ("eks-iam-sync", "is not a username prefix"),  # no ':' to end it
        ("''", "is not a username prefix"),
        ("'a{{SessionName}}:'", "is not a username prefix"),
        ("'\u212aube:'", "is not a username prefix"),
    ],
)
def test_a_username_prefix_must_be_valid_for_access_entries_and_aws_auth(prefix: str, message: str) -> None:
    [(path, _, found)] = problems(ROLES + f"  usernamePrefix: {prefix}\n")
    assert path == "identities.usernamePrefix" and message in found


TAGS = "clusters:\n  - {name: c, region: us-east-2}\ntagGrants:\n"


def test_a_tag_profile_in_full_form_opts_into_system_namespaces() -> None:
    config = parse_config(
        TAGS + "  profiles:\n    ops: {clusterRole: edit, allowSystemNamespaces: true}\n    ro: view\n"
        "  deniedNamespaces: [kube-public]\n"
    )
    ops, ro = config.tag_grants.profile("ops"), config.tag_grants.profile("ro")
    assert ops is not None and (ops.cluster_role, ops.allow_system_namespaces) == ("edit", True)
    assert ro is not None and (ro.cluster_role, ro.allow_system_namespaces) == ("view", False)
    assert config.tag_grants.cluster_roles() == {"edit", "view"}


@pytest.mark.parametrize(
    ("profiles", "path", "message"),
    [
        (
            "ops: {clusterRole: admin, allowSystemNamespaces: true}",
            "tagGrants.profiles.ops.allowSystemNamespaces",
            "a tag never grants it in a system namespace",
        ),
        (
            "ops: {clusterRole: edit, allowSystemNamespaces: true}\n  deniedNamespaces: "
            "[kube-system, kube-public, kube-node-lease]",
            "tagGrants.profiles.ops.allowSystemNamespaces",
            "this opt-in grants nothing",
        ),
        (
            "ops: {clusterRole: edit, allowSystemNamespaces: 'yes'}",
            "tagGrants.profiles.ops.allowSystemNamespaces",
            "bool",
        ),
        ("ops: {clusterRole: edit, namespaces: [a]}", "tagGrants.profiles.ops.namespaces", "unknown key"),
    ],
)
def test_validate_refuses_what_a_tag_profile_must_not_open(profiles: str, path: str, message: str) -> None:
    text = TAGS + f"  profiles:\n    {profiles}\nallowPrivilegedClusterRoles: [admin]\n"
    found = problems(text)
    assert any(p == path and message in m for p, _, m in found), found


@pytest.mark.parametrize("name", ["\u212aate", "al\u0131ce", "\u0430lice", "\uff41lice", "stra\u00dfe", "bob\u0663"])
def test_iam_names_in_the_configuration_are_ascii(name: str) -> None:
    for key in (f"groups:\n    - iamGroup: {name}\n", f"roles:\n    - iamRole: {name}\n"):
        [(path, _, message)] = problems(ROLES + "  " + key)
        assert path.endswith(("iamGroup", "iamRole")) and "is not a valid IAM name" in message
    [(path, _, message)] = problems(
        "clusters:\n  - {name: c, region: us-east-2, roleArn: 'arn:aws:iam::111122223333:role/" + name + "'}\n"
    )
    assert path == "clusters[0].roleArn"
