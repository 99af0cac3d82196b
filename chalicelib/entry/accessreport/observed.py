"""What one cluster holds now, as the report compares it with the plan applied (``grants.state_after``):
the aws-auth entries EKS loads, each managed or not as the ledger records it; the access entries,
those whose principal was recreated since (stale) marked; and every grant to them (the owned
RoleBindings and ClusterRoleBindings as read, RBAC made outside eks-iam-sync, access policies). Pure."""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.engine.accessentries.plan import KEY as ACCESS_ENTRY_KEY
from chalicelib.engine.accessentries.plan import owned
from chalicelib.engine.awsauth.ledger import Ledger, LedgerError
from chalicelib.engine.awsauth.model import ENTRY_KEYS, Problem
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.entry.accessreport.data import ClusterRead, principal_key
from chalicelib.entry.accessreport.grants import (
    Grant,
    Mapped,
    State,
    never_matches,
    outside_grants,
    policy_grants,
    role_rules,
)
from chalicelib.model.bindings import kind_of
from chalicelib.model.ownership import ENTRY_PRINCIPAL_ID_TAG, ENTRY_SOURCE_TAG, LEDGER_ANNOTATION


def state_now(read: ClusterRead, iam_ids: Mapping[str, str]) -> tuple[State, str | None]:
    """The cluster's state now, and why its ledger could not be read (then every aws-auth entry is
    shown as unmanaged). ``iam_ids``: principal key -> IAM's unique id now."""
    aws_auth, problems, ledger_error = _aws_auth(read)
    access, stale = _access_entries(read, iam_ids)
    bindings = {
        b.key: Grant(
            b.namespace,
            b.name,
            b.cluster_role,
            b.subjects,
            b.source,
            kind_of(b.namespace),  # an owned ClusterRoleBinding (no namespace) reaches every namespace
            rules=role_rules(read, b.cluster_role, b.namespace),
        )
        for b in read.bindings
    }
    bindings.update(outside_grants(read))
    bindings.update(policy_grants(read, access))
    return State(aws_auth, access, frozenset(stale), bindings, problems), ledger_error


def _aws_auth(read: ClusterRead) -> tuple[dict[str, Mapped], tuple[Problem, ...], str | None]:
    if read.aws_auth is None:
        return {}, (), None
    ledger_error = None
    try:
        ledger = Ledger.parse(read.aws_auth.annotations.get(LEDGER_ANNOTATION), None)  # every instance's
    except LedgerError as err:
        ledger, ledger_error = Ledger(), str(err)
    reading = read_aws_auth(read.aws_auth.data)
    aws_auth: dict[str, Mapped] = {}
    for where in ENTRY_KEYS:
        for entry in reading.entries(where):  # what EKS loads; of duplicates, the last wins
            record = ledger.records.get(entry.key)
            key = principal_key(entry.arn)
            source = record.source if record else ""
            never = never_matches(where, entry.arn, entry.username)
            aws_auth[key] = Mapped(key, entry.arn, entry.username, entry.groups, where, bool(record), source, never)
    return aws_auth, reading.problems, ledger_error


def _access_entries(read: ClusterRead, iam_ids: Mapping[str, str]) -> tuple[dict[str, Mapped], set[str]]:
    access: dict[str, Mapped] = {}
    stale: set[str] = set()
    for described in read.access_entries or ():
        key = principal_key(described.principal_arn)
        managed = owned(described, None)  # any instance's
        source = described.tags.get(ENTRY_SOURCE_TAG, "") if managed else ""
        arn, username, groups = described.principal_arn, described.username, tuple(described.kubernetes_groups)
        access[key] = Mapped(key, arn, username, groups, ACCESS_ENTRY_KEY, managed, source)
        recorded, current = described.tags.get(ENTRY_PRINCIPAL_ID_TAG), iam_ids.get(key)
        if managed and recorded and current and recorded != current:
            stale.add(key)
    return access, stale
