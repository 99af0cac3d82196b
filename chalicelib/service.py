"""What the Lambda handlers call. Cheap to import: the kubernetes client is loaded only when an
event actually concerns the configuration (chalicelib.runner)."""

from __future__ import annotations

import time
from typing import Any

from chalicelib import deadlines
from chalicelib.config import Config, ConfigError, load_config, parse_config
from chalicelib.errors import PermanentError, SyncError
from chalicelib.events import Ignored, read_event
from chalicelib.observability import LogObserver, logger
from chalicelib.settings import config_source, is_remote

_config: dict[str, Config] = {}


def current_config() -> Config:
    """A file is loaded once per execution environment; an SSM parameter or S3 object is read again
    when its short cache lapses. A document that is invalid (or unreadable) is logged, counted
    (ConfigInvalid) and refused: the last good one keeps serving; with none, the run raises (events
    wait in retries and the DLQ rather than being dropped)."""
    source = config_source()
    if source in _config and not is_remote(source):
        return _config[source]
    try:
        # Its own scope: a read that failed in transport must not stop the run the last good one serves.
        with deadlines.scope("configuration read", None):
            _config[source] = read_config(source)
    except SyncError as err:
        problems = [p.render(source) for p in err.problems] if isinstance(err, ConfigError) else [str(err)]
        LogObserver().count("ConfigInvalid")
        if source not in _config:
            logger.error("invalid configuration", extra={"source": source, "problems": problems})
            raise
        logger.error("invalid new configuration refused; the last good one keeps serving", extra={"problems": problems})
    return _config[source]


def read_config(source: str) -> Config:
    """A file, ``ssm:/parameter`` or ``s3://bucket/key``, parsed and validated: the one way to read it.
    Raises a SyncError whatever went wrong (YAML nested past the interpreter's recursion limit, a
    bug in a validator: a PermanentError naming the source), so that each is a refused version,
    counted, with the last good one serving, and the CLI's one line."""
    try:
        if not is_remote(source):
            return load_config(source)
        from chalicelib.adapters.config_source import read_source  # noqa: PLC0415 - boto3 only for remote sources

        return parse_config(read_source(source), source)
    except SyncError:
        raise
    except MemoryError:
        raise  # the process itself is in trouble: let Lambda replace it (and retry)
    except Exception as err:  # every other failure is this version's, not the service's
        why = f"{type(err).__name__}: {str(err)[:300]}"
        raise PermanentError(f"{source}: cannot read the configuration: {why}") from err


def handle_iam_event(raw: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
    with deadlines.scope("invocation", deadline):
        return _handle_iam_event(raw, deadline)


def _handle_iam_event(raw: dict[str, Any], deadline: float | None) -> dict[str, Any]:
    config = current_config()
    result = read_event(raw, config)
    if isinstance(result, Ignored):
        # A malformed or hostile record is worth a look; a merely irrelevant one is not.
        log = logger.warning if result.reason == "malformed" else logger.info
        log("event ignored", extra={"eventId": result.event_id, "reason": result.reason, "detail": result.detail})
        LogObserver().count("EventsIgnored", reason=result.reason)
        return {"status": "ignored", "eventId": result.event_id, "reason": result.reason, "detail": result.detail}
    logger.set_correlation_id(result.event_id)
    logger.append_keys(eventName=result.event_name, actor=result.actor, principals=result.scope.describe())
    try:
        from chalicelib.runner import run_event  # noqa: PLC0415 - loads kubernetes only for relevant events

        clusters = run_event(config, result, deadline=deadline)
        return {"status": "reconciled", "eventId": result.event_id, "clusters": clusters}
    finally:
        logger.remove_keys(["eventName", "actor", "principals"])
        logger.set_correlation_id(None)


def reconcile_all(deadline: float | None = None) -> dict[str, Any]:
    from chalicelib.runner import run_full  # noqa: PLC0415 - see handle_iam_event

    with deadlines.scope("invocation", deadline):
        return {"status": "reconciled", "clusters": run_full(current_config(), deadline=deadline)}


# Kept from the Lambda's own timeout: once the last request is over (at the latest at the deadline),
# the failures are still to be logged, counted and raised before Lambda cuts the invocation.
REPORTING_SECONDS = 1.0


def deadline_of(context: Any) -> float | None:
    """time.monotonic() by which the invocation's requests must be over: the Lambda context's
    remaining time, less what reporting needs."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return time.monotonic() + remaining() / 1000 - REPORTING_SECONDS if callable(remaining) else None
