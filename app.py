"""eks-iam-sync's Lambda functions, deployed with Chalice. Wiring only: the logic lives in chalicelib/.

Every handler name is contract: infrastructure, alarms and tests refer to them.
"""

from typing import Any

from chalice.app import Chalice, CloudWatchEvent, Rate, SQSEvent

from chalicelib.config.settings import schedule_minutes
from chalicelib.engine.events import EVENT_PATTERN
from chalicelib.entry import service

# Logging is Powertools' (JSON, correlation ids); Chalice's own setup would claim the same logger name.
app = Chalice(app_name="eks-iam-sync", configure_logs=False)


@app.on_cw_event(EVENT_PATTERN)
def on_iam_event(event: CloudWatchEvent) -> dict[str, Any]:
    """An IAM change (CloudTrail via EventBridge): re-read the principals it names, reconcile them."""
    return service.handle_iam_event(event.to_dict(), service.deadline_of(event.context))


@app.schedule(Rate(schedule_minutes(), unit=Rate.MINUTES))
def reconcile_all(event: CloudWatchEvent) -> dict[str, Any]:
    """Every cluster, everyone: repairs drift and whatever an event missed."""
    return service.reconcile_all(service.deadline_of(event.context), run=event.to_dict().get("id", ""))


# The queued path. The queues, their ARNs, batch sizes, window and concurrency are the template's
# (infra/cloudformation/chalice-merge.yaml overrides these placeholders with its parameters).
@app.on_sqs_message(queue="eks-iam-sync-events", batch_size=100, maximum_batching_window_in_seconds=5)
def on_iam_events(event: SQSEvent) -> dict[str, Any]:
    """A batch of IAM changes (EventBridge -> SQS): coalesced, then one work item per cluster."""
    return service.handle_iam_events(event.to_dict(), service.deadline_of(event.context))


@app.on_sqs_message(queue="eks-iam-sync-work.fifo", batch_size=1, maximum_concurrency=10)
def reconcile_cluster(event: SQSEvent) -> dict[str, Any]:
    """One cluster's work item: its failure is that item's alone (partial batch response)."""
    return service.reconcile_work_items(event.to_dict(), service.deadline_of(event.context))
