"""The service's one error taxonomy. Every error eks-iam-sync raises on purpose is a ``SyncError``,
either transient (raise: Lambda/EventBridge retry, the DLQ catches what never succeeds) or permanent
(log, count, alarm: retrying would not help). Adapters translate SDK errors into the subclasses
below, so the core never reads HTTP status codes or SDK exception types."""


class SyncError(Exception):
    """Base of every error eks-iam-sync raises on purpose."""

    kind = "permanent"  # how a cluster's failure is counted (ReconcileFailures' dimension)


class TransientError(SyncError):
    """Throttling, 5xx, an unreachable cluster, or too many write conflicts: try again later."""

    kind = "transient"


class PermanentError(SyncError):
    """Forbidden, invalid input, a missing object that should exist: fix something first."""


class WriteConflict(TransientError):
    """The object changed since it was read, or already exists (HTTP 409): re-read, recompute, retry."""


class NotFound(PermanentError):
    """The object (or its namespace) does not exist (HTTP 404)."""


class Forbidden(PermanentError):
    """Authentication or authorisation refused (HTTP 401/403): RBAC, escalation prevention, IAM."""


class Rejected(PermanentError):
    """The server refused the request as invalid (HTTP 400/422): the input needs fixing."""


class CorruptState(PermanentError):
    """Something the service wrote (the ownership ledger, a backup) cannot be read back."""


class ManagedByOtherInstance(PermanentError):
    """The cluster carries another instance's marks (its aws-auth ledger section, tagged access entries,
    labelled RoleBindings): this instance writes nothing there until an operator acts."""

    kind = "managed-by-other-instance"

    def __init__(self, message: str, owners: tuple[str, ...]) -> None:
        super().__init__(message)
        self.owners = owners
