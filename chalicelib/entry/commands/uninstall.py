"""``uninstall``: removes what the service owns in each configured cluster (or one), and nothing else.

It is ``apply --force`` (``plan`` with ``--dry-run``) against an empty desire: the same configuration
(clusters, username prefix, break-glass ARNs, the aws-auth settings) with no identity rule, no grant
(Identity Center's included) and no tag profile, so every owned identity and RoleBinding is planned
away and everything else is kept by the rules that protect it on every run: aws-auth entries
outside the ledger, node and Fargate entries, untagged access entries (the service's own bootstrap entries among them),
unlabelled RoleBindings, break-glass and the caller's own ARN. aws-auth is written through the
normal writer: checked, with a backup first. The deletion breaker is lifted for this run only
(removing everything is the point). ``paused`` is ignored. The backups themselves stay: they are
the way back (``restore``); delete them by hand once sure.
"""

from __future__ import annotations

from chalicelib.config import Config, Identities, TagGrants


def without_grants(config: Config) -> Config:
    """The configuration with every rule that maps or grants taken out, everything that protects kept."""
    identities = Identities.model_validate({"usernamePrefix": config.identities.username_prefix})
    return config.model_copy(
        update={
            "identities": identities,
            "namespace_grants": (),
            "tag_grants": TagGrants.model_validate({"tagPrefix": config.tag_grants.tag_prefix}),
            "identity_center": None,
            "paused": False,
        }
    )
