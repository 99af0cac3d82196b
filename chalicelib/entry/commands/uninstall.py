"""``uninstall``: removes what the service owns in each configured cluster (or one), and nothing else.

It is ``apply --force`` (``plan`` with ``--dry-run``) against an empty desire: the same configuration
(clusters, username prefix, break-glass ARNs, the aws-auth settings) with no identity rule, no grant
(Identity Center's included) and no tag profile, so every owned identity, RoleBinding and
ClusterRoleBinding (an access policy's equivalent at cluster scope on aws-auth) is planned away,
and everything else is kept by the rules that protect it on every run: aws-auth entries
outside the ledger, node and Fargate entries, untagged access entries (the service's own bootstrap entries among them),
unlabelled RoleBindings and ClusterRoleBindings, break-glass and the caller's own ARN. aws-auth is written through the
normal writer: checked, with a backup first. The deletion breaker is lifted for this run only
(removing everything is the point). ``paused`` is ignored.

Then, in each cluster whose run succeeded (so aws-auth no longer holds the service's entries) and
only there, the aws-auth backups go: the ConfigMaps of the backup slots' names (every slot a ring of
the largest size could use) that carry the service's label, each deleted on the resourceVersion read.
A dry run lists them. ``keep_backups`` keeps them (the way back: ``restore``). The deletes are the
operator's: the service's own RBAC grants no delete on ConfigMaps. The backups are the cluster's, not
an instance's: while aws-auth still maps entries of another instance (its ledger section), they are
kept, and the result says why.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.config import MAX_BACKUP_COUNT, Config, Identities, TagGrants
from chalicelib.config.settings import instance
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.entry.commands.common import Reach, connect, shell_for
from chalicelib.entry.commands.plan_apply import Reconciled, RemovedBackups, reconcile
from chalicelib.errors import SyncError
from chalicelib.model.ownership import (
    AWS_AUTH_NAME,
    AWS_AUTH_NAMESPACE,
    DEFAULT_INSTANCE,
    LEDGER_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    backup_names,
    owner,
)
from chalicelib.model.ports import ConfigMapStore
from chalicelib.run.results import succeeded


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


def uninstall(config: Config, reach: Reach, dry_run: bool, keep_backups: bool = False) -> Reconciled:
    """The owned identities and RoleBindings removed, then (unless ``keep_backups``) the backups of
    every cluster whose removal succeeded."""
    # Only this instance's own objects are removed: a cluster another instance manages is not refused.
    result = reconcile(without_grants(config), reach, dry_run=dry_run, force=True, exclusive=False)
    if keep_backups:
        return result
    done = {name for name, r in result.clusters if succeeded(r)}
    reached = connect(config, reach, shell_for(reach))
    removed = [
        RemovedBackups(name, (), str(ports))
        if isinstance(ports, SyncError)
        else remove_backups(name, ports.config_maps, dry_run, instance())
        for name, ports in reached.items()
        if name in done
    ]
    return replace(result, backups=tuple(r for r in removed if r.names or r.error or r.kept))


def remove_backups(
    cluster: str, store: ConfigMapStore, dry_run: bool, instance: str = DEFAULT_INSTANCE
) -> RemovedBackups:
    """Deletes (a dry run: lists) every backup slot that exists and is labelled as the service's, unless
    aws-auth still maps another instance's entries (the backups are theirs too)."""
    removed: list[str] = []
    try:
        others = _other_instances(store, instance)
        if others:
            why = f"aws-auth still maps entries of {', '.join(owner(o) for o in others)}, whose way back they are"
            return RemovedBackups(cluster, (), kept=why)
        for name in backup_names(MAX_BACKUP_COUNT):
            observed = store.read(AWS_AUTH_NAMESPACE, name)
            if observed is None or observed.labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                continue
            if not dry_run:
                store.delete(observed)
            removed.append(name)
    except SyncError as err:
        return RemovedBackups(cluster, tuple(removed), str(err))
    return RemovedBackups(cluster, tuple(removed))


def _other_instances(store: ConfigMapStore, instance: str) -> list[str]:
    """The other instances whose section of aws-auth's ledger still records entries."""
    aws_auth = store.read(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME)
    text = aws_auth.annotations.get(LEDGER_ANNOTATION) if aws_auth else None
    return sorted(set(Ledger.parse(text, instance).owners.values()))
