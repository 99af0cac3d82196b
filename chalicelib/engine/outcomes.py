"""How an identity step's outcome is logged and counted, alike for every backend."""

from __future__ import annotations

from chalicelib.model.identities import Outcome
from chalicelib.model.ports import Observer


def observe(outcome: Outcome, observer: Observer, subject: str) -> None:
    """Logs and counts an outcome alike for every backend: refusals, foreign entries, each change."""
    for refusal in outcome.refusals:
        observer.error(f"{subject} refused", reason=refusal.reason, detail=refusal.message)
        observer.count("GuardrailRefusals", reason=refusal.reason)
    for conflict in outcome.conflicts:
        # Another instance's entry is named: the operator sees which install holds it.
        observer.warning(f"{subject} owned by {conflict.owner or 'someone else'}", detail=conflict.describe())
        observer.count("OwnershipConflicts")
    if outcome.status != "written":
        return
    for change in outcome.changes:
        why = ": the IAM principal was recreated" if change.action == "recreate" else ""
        observer.change(
            f"{subject} changed{why}",
            action=change.action,
            principal=change.arn,
            before=change.before.describe() if change.before else None,
            after=change.after.describe() if change.after else None,
            source=change.source,
        )
