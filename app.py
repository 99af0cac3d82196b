"""eks-iam-sync's Lambda functions, deployed with Chalice. Wiring only: the logic lives in chalicelib/.

Both handler names are contract: infrastructure, alarms and tests refer to them.
"""

from typing import Any

from chalice.app import Chalice, CloudWatchEvent, Rate

from chalicelib import service
from chalicelib.events import EVENT_PATTERN
from chalicelib.settings import schedule_minutes

# Logging is Powertools' (JSON, correlation ids); Chalice's own setup would claim the same logger name.
app = Chalice(app_name="eks-iam-sync", configure_logs=False)


@app.on_cw_event(EVENT_PATTERN)
def on_iam_event(event: CloudWatchEvent) -> dict[str, Any]:
    """An IAM change (CloudTrail via EventBridge): re-read the principals it names, reconcile them."""
    return service.handle_iam_event(event.to_dict(), service.deadline_of(event.context))


@app.schedule(Rate(schedule_minutes(), unit=Rate.MINUTES))
def reconcile_all(event: CloudWatchEvent) -> dict[str, Any]:
    """Every cluster, everyone: repairs drift and whatever an event missed."""
    return service.reconcile_all(service.deadline_of(event.context))
