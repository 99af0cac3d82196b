"""The service's own error types. Adapters translate SDK errors into these; handlers map them to
Lambda behaviour: a TransientError is raised so that EventBridge/Lambda retry (and the DLQ catches
what never succeeds); a PermanentError is logged and counted, and retrying would not help."""


class SyncError(Exception):
    """Base of every error eks-iam-sync raises on purpose."""


class TransientError(SyncError):
    """Throttling, 5xx, an unreachable cluster, or too many write conflicts: try again later."""


class PermanentError(SyncError):
    """Forbidden, invalid input, a missing object that should exist: fix something first."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status behind it, when there was one


class WriteConflict(TransientError):
    """The object changed since it was read (HTTP 409): re-read, recompute, retry."""
