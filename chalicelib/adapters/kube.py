"""One request to the Kubernetes API, with its failure translated into the service's error taxonomy:
404 NotFound, 401/403 Forbidden, 409 WriteConflict, 400/422 Rejected, 429/5xx/network TransientError.
A network failure (a timeout, a refused or dropped connection) also stops the cluster's other requests
(``bounds.transport_failed``): each would wait out the same timeouts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import urllib3
from kubernetes.client.rest import ApiException

from chalicelib.adapters.bounds import transport_failed
from chalicelib.errors import Forbidden, NotFound, PermanentError, Rejected, SyncError, TransientError, WriteConflict
from chalicelib.model import deadlines

T = TypeVar("T")


def call(what: str, request: Callable[[], T]) -> T:
    try:
        return request()
    except ApiException as err:
        raise translate(what, err) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        budget = deadlines.current()
        cut = budget.failure if budget is not None else None  # the watchdog's reason, when it cut this one
        transport_failed(f"{what}: {err}")
        raise TransientError(f"{what}: cluster unreachable: {cut or err}") from err


def translate(what: str, err: ApiException) -> SyncError:
    status = int(err.status or 0)
    detail = f"{what}: HTTP {status} {err.reason}: {_message(err)}"
    if status == 404:
        return NotFound(detail)
    if status in (401, 403):
        return Forbidden(detail)
    if status == 409:
        return WriteConflict(f"{what}: conflict ({err.reason})")
    if status in (0, 429) or status >= 500:
        return TransientError(f"{what}: HTTP {status} {err.reason}")
    if status in (400, 422):
        return Rejected(detail)
    return PermanentError(detail)


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.body)[:300]
