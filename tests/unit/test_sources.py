"""Where a mapping or binding comes from (chalicelib/model/sources.py): each kind rendered as stored
on clusters, and every written form read back, what older versions wrote included."""

from __future__ import annotations

import pytest

from chalicelib.model import sources
from chalicelib.model.sources import Source


@pytest.mark.parametrize(
    ("source", "written"),
    [
        (Source.group("devs"), "identities.groups[devs]"),
        (Source.role("Deployer"), "identities.roles[Deployer]"),
        (Source.permission_set("AdminAccess"), "identities.permissionSets[AdminAccess]"),
        (Source.tag_grants(), "tagGrants"),
        (Source.namespace_grant(3), "namespaceGrants[3]"),
        (Source.tag("eks-access/team-a=developer"), "tag eks-access/team-a=developer"),
        (Source.group("a,b.c@d=e+f-g_h"), "identities.groups[a,b.c@d=e+f-g_h]"),  # every character IAM allows
    ],
)
def test_each_kind_is_written_as_stored_and_read_back(source: Source, written: str) -> None:
    assert source.render() == written
    assert sources.parse(written) == (source,)


def test_an_identity_s_sources_are_joined_with_a_comma_a_binding_s_with_a_semicolon() -> None:
    identity = (Source.group("devs"), Source.group("ops"), Source.tag_grants())
    assert sources.render(identity) == "identities.groups[devs], identities.groups[ops], tagGrants"
    binding = (Source.namespace_grant(0), Source.tag("eks-access/ns=view"))
    assert sources.render(binding, sources.BINDING_SEPARATOR) == "namespaceGrants[0]; tag eks-access/ns=view"
    assert sources.parse(sources.render(identity)) == identity
    assert sources.parse(sources.render(binding, "; ")) == binding


@pytest.mark.parametrize(
    "written",
    [
        "rule",  # anything a hand or an older tool wrote
        "identities.groups[devs",  # an access-entry tag cut at EKS's 256 characters
        "tag ",
        "namespaceGrants[x]",
    ],
)
def test_what_it_does_not_know_is_kept_as_written(written: str) -> None:
    (read,) = sources.parse(written.strip() or written)
    assert read.kind == "unknown" and read.render() == written.strip()


def test_the_configured_groups_a_written_source_names_whatever_its_case() -> None:
    written = "identities.groups[Devs], Identities.Groups[ops], identities.roles[devs], tagGrants"
    assert sources.groups_named(written) == {"devs", "ops"}
    assert sources.groups_named("") == frozenset()
    assert sources.groups_named("identities.groups[devs") == frozenset()


def test_an_access_policy_s_rbac_equivalent_names_the_rules_behind_it_unsplit() -> None:
    policy = Source.access_policy("AmazonEKSViewPolicy", (Source.group("devs"), Source.tag("eks-access/b=viewer")))
    written = "accessPolicy AmazonEKSViewPolicy (identities.groups[devs], tag eks-access/b=viewer)"
    assert policy.render() == written
    assert sources.parse(written) == (policy,)
    both = sources.render((policy, Source.namespace_grant(2)), sources.BINDING_SEPARATOR)
    assert sources.parse(both) == (policy, Source.namespace_grant(2))
