"""Names that mark what eks-iam-sync owns in a cluster. Defined once; every reader and writer uses these."""

from __future__ import annotations

import hashlib

AWS_AUTH_NAMESPACE = "kube-system"
AWS_AUTH_NAME = "aws-auth"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "eks-iam-sync"
MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"

# The ownership ledger of aws-auth entries, kept on aws-auth itself so that one update with one
# resourceVersion changes entries and ledger together.
LEDGER_ANNOTATION = "eks-iam-sync.io/ledger"
BACKUP_SEQUENCE_ANNOTATION = "eks-iam-sync.io/backup-sequence"

# Backups of aws-auth's data: a ring of fixed names, so the service's RBAC can name each one.
BACKUP_NAME_PREFIX = "eks-iam-sync-aws-auth-backup-"


def backup_name(slot: int) -> str:
    return f"{BACKUP_NAME_PREFIX}{slot}"


# Besides the ring of the newest versions, the first version replaced in each UTC hour is kept for a
# day, so a burst of writes (Terraform adding 40 users) never rotates out the version from before it.
HOURLY_BACKUPS = 24
BACKUP_HOUR_ANNOTATION = "eks-iam-sync.io/backup-hour"  # the hour (UTC, "2026-11-30T11") of the last hourly backup


def hourly_backup_name(hour: int) -> str:
    return f"{BACKUP_NAME_PREFIX}hour-{hour:02d}"


# The last version of aws-auth the service did not write itself (a hand edit, a restore, another
# tool): the one version nobody can recompute, so it keeps a slot of its own that no burst of the
# service's own writes rotates; only a newer foreign version replaces it.
FOREIGN_BACKUP_NAME = f"{BACKUP_NAME_PREFIX}foreign"
# A digest of the data the service last wrote to aws-auth. kubectl edit, eksctl and Terraform change
# data and keep annotations, so data that no longer matches it was written by someone else.
WRITTEN_DIGEST_ANNOTATION = "eks-iam-sync.io/written-digest"


def backup_names(ring: int) -> list[str]:
    return [
        *(backup_name(slot) for slot in range(ring)),
        *(hourly_backup_name(h) for h in range(HOURLY_BACKUPS)),
        FOREIGN_BACKUP_NAME,
    ]


# RoleBindings: owned exactly when labelled MANAGED_BY_LABEL=MANAGED_BY_VALUE; these say why.
SOURCE_ANNOTATION = "eks-iam-sync.io/source"  # the configuration rule or IAM tag
PRINCIPAL_ANNOTATION = "eks-iam-sync.io/principal"  # the IAM ARN behind a tag grant
EVENT_ID_ANNOTATION = "eks-iam-sync.io/event-id"  # the CloudTrail eventID that last changed it
# A tag grant's principal as a label, so an event lists only that principal's bindings (an ARN is
# not a valid label value: its kind and a hash of its lower-case name are).
PRINCIPAL_LABEL = "eks-iam-sync.io/principal"


def principal_label(kind: str, name: str) -> str:
    return f"{kind}-{hashlib.sha256(name.lower().encode()).hexdigest()[:40]}"


# A namespace grant's Kubernetes group as a label, so an event that gives someone that group lists
# only that group's bindings (a group name is not always a valid label value; a hash of it is).
# Kubernetes group names are case-sensitive, so the hash is of the name as written.
GROUP_LABEL = "eks-iam-sync.io/group"


def group_label(kubernetes_group: str) -> str:
    return f"group-{hashlib.sha256(kubernetes_group.encode()).hexdigest()[:40]}"


# An IAM Identity Center group grant's RoleBinding names one person: PRINCIPAL_LABEL is theirs, by
# Identity Store user id (which a rename keeps), GROUP_LABEL the granted group's, by DisplayName; so
# a person's event lists only their bindings, and a group's only that group's.
SSO_USER_KIND = "ssouser"


def sso_user_label(user_id: str) -> str:
    return principal_label(SSO_USER_KIND, user_id)


def sso_group_label(display_name: str) -> str:
    return f"{SSO_GROUP_LABEL_PREFIX}{hashlib.sha256(display_name.encode()).hexdigest()[:40]}"


SSO_GROUP_LABEL_PREFIX = "ssogroup-"


# The Kubernetes group the service's own IAM role is mapped to; infra/kubernetes/rbac.yaml binds it.
SERVICE_GROUP = "eks-iam-sync"
SERVICE_USERNAME = "eks-iam-sync"

# EKS access entries: owned exactly when tagged MANAGED_BY_LABEL=MANAGED_BY_VALUE (and STANDARD). The
# principal's IAM unique id tells a principal recreated under the same ARN (its entry then no longer
# authenticates); the source says which rule or tag mapped it.
ENTRY_PRINCIPAL_ID_TAG = "eks-iam-sync/principal-id"
ENTRY_SOURCE_TAG = "eks-iam-sync/source"
ACCESS_ENTRY_QUOTA = 3000  # per cluster, not adjustable
# The access policies the service associated with an owned entry (short names, space-separated):
# associations cannot be tagged, so this record says which entries have any to read and keep in step.
ENTRY_POLICIES_TAG = "eks-iam-sync/access-policies"

# Instances: every object an install owns carries its instance's name (config.settings.instance()): a
# RoleBinding the label INSTANCE_LABEL, an access entry the tag ENTRY_INSTANCE_TAG, an aws-auth entry
# its instance's section of the ledger. The instance "default" (nothing set: the CLI, `chalice deploy`)
# marks nothing, as every version before instances did. An install changes only what carries its own
# name, or no name at all: an object from before instances is adopted by the first named instance that
# reconciles it, which writes its name on it (migrated in place) on that run. What carries another
# instance's name is never changed or deleted; wanting it is a conflict naming that instance.
INSTANCE_LABEL = "eks-iam-sync.io/instance"
ENTRY_INSTANCE_TAG = "eks-iam-sync/instance"
DEFAULT_INSTANCE = "default"


def instance_marker(instance: str) -> str | None:
    """What an install writes on its objects: its name, or nothing for the default instance."""
    return None if instance == DEFAULT_INSTANCE else instance


def owns(instance: str, marker: str | None) -> bool:
    """Whether ``instance`` may change an object of the service marked ``marker`` (None: unmarked)."""
    return not marker or marker == instance


def owner(marker: str) -> str:
    return f"eks-iam-sync instance {marker!r}"
