"""``sso:`` entries of mapRoles (aws-iam-authenticator 0.6.0+ matches them by permission set, with no
rolearn), judged as the authenticator's RoleMapping.Validate judges them: what it refuses is an
error, as it logs and drops the entry. They are kept as they are, never re-rendered."""

from __future__ import annotations

import re

import yaml

from chalicelib.engine.awsauth.document import NULL_TAG
from chalicelib.engine.awsauth.fields import kind, string_c
from chalicelib.engine.awsauth.model import MAP_ROLES, Problem

# aws-iam-authenticator's RoleMapping.Validate (pkg/config/mapper.go): Go's \w and [0-9] are ASCII.
_SSO_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_PERMISSION_SET_NAME = re.compile(r"[\w+=,.@-]{1,32}", re.ASCII)
_SSO_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"})  # every version since 0.6.0
_SSO_PARTITIONS_SINCE_2025 = frozenset({"aws-iso-e", "aws-iso-f", "aws-eusc"})  # 0.7.x: endpoints.PARTITIONS


def sso_value(item: yaml.Node) -> yaml.Node | None:
    """The value of an entry's ``sso`` field (any case: encoding/json folds names; the last wins)."""
    if not isinstance(item, yaml.MappingNode):
        return None
    found = None
    for key_node, value_node in item.value:
        if isinstance(key_node, yaml.ScalarNode) and str(key_node.value).lower() == "sso":
            found = value_node
    return found


def sso_entry(item: yaml.Node, sso: yaml.Node, problems: list[Problem]) -> bool:
    """Whether ``item`` is an sso: entry (Gen C, 0.6.0+, reads an sso mapping and no rolearn); what
    the authenticator's RoleMapping.Validate refuses in it is an error, as it logs and drops the entry.
    Gen A has no sso field: it keeps an entry without rolearn that never matches."""
    line = item.start_mark.line + 1
    if isinstance(sso, yaml.ScalarNode) and sso.tag == NULL_TAG:
        return False  # a nil SSO: an ordinary entry, judged by its rolearn
    if not isinstance(sso, yaml.MappingNode):
        problems.append(Problem(MAP_ROLES, "error", f"sso: wrong type ({kind(sso)}): Gen C zeroes the field", line))
        return False
    folded = {str(k.value).lower(): v for k, v in item.value if isinstance(k, yaml.ScalarNode)}
    found: list[Problem] = []
    if string_c(folded.get("rolearn"), found, MAP_ROLES, "rolearn"):
        problems.append(
            Problem(MAP_ROLES, "error", "an entry with both rolearn and sso: the authenticator drops it", line)
        )
        return False
    fields = {str(k.value).lower(): v for k, v in sso.value if isinstance(k, yaml.ScalarNode)}
    name = string_c(fields.get("permissionsetname"), found, MAP_ROLES, "sso.permissionSetName")
    account = string_c(fields.get("accountid"), found, MAP_ROLES, "sso.accountID")
    partition = string_c(fields.get("partition"), found, MAP_ROLES, "sso.partition")
    dropped = "the authenticator (0.6.0+) logs an error and drops this sso: entry"
    if not _SSO_ACCOUNT_ID.fullmatch(account):
        found.append(Problem(MAP_ROLES, "error", f"sso.accountID {account!r} is not 12 digits: {dropped}", line))
    if not _PERMISSION_SET_NAME.fullmatch(name):
        found.append(
            Problem(MAP_ROLES, "error", f"sso.permissionSetName {name!r} is not a permission-set name: {dropped}", line)
        )
    if partition in _SSO_PARTITIONS_SINCE_2025:
        found.append(
            Problem(
                MAP_ROLES,
                "error",
                f"sso.partition {partition!r} is known only to authenticators from 2025 on; earlier ones "
                "log an error and drop this sso: entry",
                line,
            )
        )
    elif partition and partition not in _SSO_PARTITIONS:
        found.append(Problem(MAP_ROLES, "error", f"sso.partition {partition!r} is not a partition: {dropped}", line))
    problems.extend(found or [Problem(MAP_ROLES, "warning", "an sso: entry: kept as it is", line)])
    return True
