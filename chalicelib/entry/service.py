"""What the Lambda handlers call. Cheap to import: the kubernetes client is loaded only when an
event actually concerns the configuration (chalicelib.run.runner).

The handlers' effects (the shell that builds the ports, the observer, the clock, the backoff's
sleep, the work queue) are one ``Runtime``, AWS's unless the host installed another
(``chalicelib.run.runtime.installed``: the functional tests' fakes), resolved once per invocation
and passed down."""

from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.adapters.observability import logger
from chalicelib.config import Config, ConfigError, load_config, parse_config
from chalicelib.config.settings import config_source, instance, is_remote, work_queue_url
from chalicelib.engine.events import Ignored, Trigger, read_event
from chalicelib.engine.workitems import (
    BadWorkItem,
    WorkItem,
    coalesce,
    event_items,
    full_run_items,
    messages,
)
from chalicelib.engine.workitems import parse as parse_item
from chalicelib.errors import PermanentError, SyncError
from chalicelib.model import deadlines
from chalicelib.run.runtime import Runtime, current_runtime

_config: dict[str, Config] = {}


def current_config(runtime: Runtime | None = None) -> Config:
    """A file is loaded once per execution environment; an SSM parameter or S3 object is read again
    when its short cache lapses. A document that is invalid (or unreadable) is logged, counted
    (ConfigInvalid) and refused: the last good one keeps serving; with none, the run raises (events
    wait in retries and the DLQ rather than being dropped)."""
    instance()  # a bad instance name fails the invocation before anything is read or written
    source = config_source()
    if source in _config and not is_remote(source):
        return _config[source]
    try:
        # Its own scope: a read that failed in transport must not stop the run the last good one serves.
        with deadlines.scope("configuration read", None):
            _config[source] = read_config(source)
    except SyncError as err:
        problems = [p.render(source) for p in err.problems] if isinstance(err, ConfigError) else [str(err)]
        (runtime or current_runtime()).observer("").count("ConfigInvalid")
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
        return _handle_iam_event(raw, deadline, current_runtime())


def _handle_iam_event(raw: dict[str, Any], deadline: float | None, runtime: Runtime) -> dict[str, Any]:
    config = current_config(runtime)
    result = read_event(raw, config)
    if isinstance(result, Ignored):
        # A malformed or hostile record is worth a look; a merely irrelevant one is not.
        log = logger.warning if result.reason == "malformed" else logger.info
        log("event ignored", extra={"eventId": result.event_id, "reason": result.reason, "detail": result.detail})
        runtime.observer("").count("EventsIgnored", reason=result.reason)
        return {"status": "ignored", "eventId": result.event_id, "reason": result.reason, "detail": result.detail}
    logger.set_correlation_id(result.event_id)
    logger.append_keys(eventName=result.event_name, actor=result.actor, principals=result.scope.describe())
    try:
        if work_queue_url():
            clusters = enqueue_event(config, result, runtime)
            return {"status": "queued", "eventId": result.event_id, "clusters": clusters}
        from chalicelib.run.runner import run_event  # noqa: PLC0415 - loads kubernetes only for relevant events

        reconciled = run_event(config, result, runtime, deadline)
        return {"status": "reconciled", "eventId": result.event_id, "clusters": reconciled}
    finally:
        logger.remove_keys(["eventName", "actor", "principals"])
        logger.set_correlation_id(None)


def reconcile_all(deadline: float | None = None, run: str = "") -> dict[str, Any]:
    """``run``: the schedule event's id, naming its work items when there is a work queue."""
    runtime = current_runtime()
    if work_queue_url():
        return enqueue_full_run(run or f"full run {time.time():.3f}", deadline, runtime)
    from chalicelib.run.runner import run_full  # noqa: PLC0415 - see handle_iam_event

    with deadlines.scope("invocation", deadline):
        return {"status": "reconciled", "clusters": run_full(current_config(runtime), runtime, deadline)}


# Kept from the Lambda's own timeout: once the last request is over (at the latest at the deadline),
# the failures are still to be logged, counted and raised before Lambda cuts the invocation.
REPORTING_SECONDS = 1.0


def deadline_of(context: Any) -> float | None:
    """When, on the runtime's clock, the invocation's requests must be over: the Lambda context's
    remaining time, less what reporting needs."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return current_runtime().clock() + remaining() / 1000 - REPORTING_SECONDS if callable(remaining) else None


# ---- the queued path (issue 21): SQS batches of events, per-cluster work items ------------------


def handle_iam_events(raw: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
    """An SQS batch of EventBridge events: each record read alone (one that cannot be read or is a
    refusal fails alone, to its retries and the DLQ), the rest coalesced into one scope and handled
    once: one work item per cluster (queue set) or one in-process run. The handled part failing
    raises: the whole batch is received again (level-triggered, so harmless)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType  # noqa: PLC0415 - loads botocore

    runtime = current_runtime()
    with deadlines.scope("invocation", deadline):
        config = current_config(runtime)
        triggers: list[Trigger] = []
        processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
        with processor(raw.get("Records") or [], lambda record: _read_record(record, config, triggers, runtime)):
            processor.process()
        response: dict[str, Any] = dict(processor.response())
        batch = coalesce(triggers)
        if batch is None:
            return response
        logger.set_correlation_id(batch.event_ids[0])
        logger.append_keys(events=len(batch.event_ids), principals=batch.scope.describe()[:2000])
        try:
            if work_queue_url():
                _send(event_items(batch, [c.name for c in config.clusters]), runtime)
            else:
                from chalicelib.run.runner import run_event  # noqa: PLC0415 - loads kubernetes only for relevant events

                run_event(config, batch.as_trigger(), runtime, deadline)
        finally:
            logger.remove_keys(["events", "principals"])
            logger.set_correlation_id(None)
        return response


def _read_record(record: Any, config: Config, triggers: list[Trigger], runtime: Runtime) -> None:
    """One event queue message: a Trigger collected, an event ignored as today, or an error that
    fails this record alone (it is retried, then kept in the event queue's DLQ: nothing is lost)."""
    try:
        raw = json.loads(record.body)
    except ValueError as err:
        logger.error("event queue message is not JSON", extra={"messageId": record.message_id, "detail": str(err)})
        runtime.observer("").count("QueueMessagesInvalid", queue="events")
        raise PermanentError(f"message {record.message_id}: not JSON: {err}") from None
    if not isinstance(raw, dict):
        logger.error("event queue message is not an event", extra={"messageId": record.message_id})
        runtime.observer("").count("QueueMessagesInvalid", queue="events")
        raise PermanentError(f"message {record.message_id}: a JSON {type(raw).__name__}, not an event")
    result = read_event(raw, config)
    if isinstance(result, Ignored):
        log = logger.warning if result.reason == "malformed" else logger.info
        log("event ignored", extra={"eventId": result.event_id, "reason": result.reason, "detail": result.detail})
        runtime.observer("").count("EventsIgnored", reason=result.reason)
        return
    if result.renamed_groups:
        from chalicelib.run.runner import refuse_renamed  # noqa: PLC0415 - see handle_iam_events

        raise refuse_renamed(result, runtime.observer(""))
    triggers.append(result)


def _send(items: list[WorkItem], runtime: Runtime) -> list[str]:
    url = work_queue_url()
    if url is None:
        raise RuntimeError("no work queue configured")
    runtime.work_queue(url).send(messages(items))
    runtime.observer("").count("WorkItemsQueued", len(items))
    logger.info("work items queued", extra={"items": len(items), "clusters": len({i.cluster for i in items})})
    return sorted({i.cluster for i in items})


def enqueue_event(config: Config, trigger: Trigger, runtime: Runtime) -> list[str]:
    """on_iam_event with a work queue: one item per configured cluster (a rename is refused as today)."""
    if trigger.renamed_groups:
        from chalicelib.run.runner import refuse_renamed  # noqa: PLC0415 - see handle_iam_events

        raise refuse_renamed(trigger, runtime.observer(""))
    batch = coalesce([trigger])
    return _send(event_items(batch, [c.name for c in config.clusters]), runtime) if batch else []


def enqueue_full_run(run: str, deadline: float | None, runtime: Runtime) -> dict[str, Any]:
    """reconcile_all with a work queue: an ``everyone`` item per configured cluster, nothing reconciled here."""
    with deadlines.scope("invocation", deadline):
        config = current_config(runtime)
        clusters = _send(full_run_items([c.name for c in config.clusters], run), runtime)
        return {"status": "queued", "clusters": clusters}


def reconcile_work_items(raw: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
    """The worker: each work item reconciles its one cluster; an item that fails is reported alone
    (partial batch response) and received again, up to the work queue's maxReceiveCount, then its
    DLQ. On a FIFO queue, the items after a failed one in the same batch are returned as well
    (their cluster's order is kept)."""
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415 - see handle_iam_events
        SqsFifoPartialProcessor,
        process_partial_response,
    )

    runtime = current_runtime()
    with deadlines.scope("invocation", deadline):
        config = current_config(runtime)
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # A batch whose every item failed is still a partial batch response (the contract), not an
        # invocation error: the failures are counted per cluster (ReconcileFailures) and the DLQ alarms.
        processor.raise_on_entire_batch_failure = False
        response = process_partial_response(
            event=raw, record_handler=lambda record: _work(record, config, deadline, runtime), processor=processor
        )
        return dict(response)


def _work(record: Any, config: Config, deadline: float | None, runtime: Runtime) -> dict[str, Any]:
    try:
        item = parse_item(record.body)
    except BadWorkItem as err:
        logger.error("work item refused", extra={"messageId": record.message_id, "detail": str(err)})
        runtime.observer("").count("QueueMessagesInvalid", queue="work")
        raise
    if item.cluster not in {c.name for c in config.clusters}:
        # The configuration changed since the item was sent: nothing of that cluster is ours to do.
        logger.warning("work item for a cluster no longer configured", extra={"item": item.describe()})
        runtime.observer(item.cluster).count("WorkItemsDropped", reason="not-configured")
        return {"status": "dropped", "cluster": item.cluster}
    from chalicelib.run.runner import run_item  # noqa: PLC0415 - see handle_iam_events

    logger.set_correlation_id(item.events[0] if item.events else item.run or None)
    logger.append_keys(workItem=item.describe()[:500], receiveCount=record.attributes.approximate_receive_count)
    try:
        return {"status": "reconciled", "clusters": run_item(config, item, runtime, deadline)}
    finally:
        logger.remove_keys(["workItem", "receiveCount"])
        logger.set_correlation_id(None)
