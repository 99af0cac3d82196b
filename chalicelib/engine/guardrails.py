"""What both identity backends protect, written once so they cannot drift apart: the protected
ARNs (the service's own mapping, break-glass) and the deletion breaker. Pure. The aws-auth specifics
(size, sso: entries, node entries) are in ``awsauth/guardrails.py``; the access-entry quota in
``accessentries/plan.py``."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.model import arns
from chalicelib.model.identities import Refusal
from chalicelib.model.ownership import DEFAULT_INSTANCE


@dataclass(frozen=True)
class Policy:
    protected_arns: frozenset[str] = frozenset()  # lower case: the service's own mapping, break-glass
    max_deletion_share: float = 0.5
    force_deletions: bool = False
    instance: str = DEFAULT_INSTANCE  # this install: what carries another instance's name is never changed

    def protects(self, arn: str) -> bool:
        """Whether ``arn`` (with or without its path, in any case) is never to be changed."""
        return arn.lower() in self.protected_arns or arns.unpathed(arn).lower() in self.protected_arns


def deletion_breaker(
    owned: int, removed: int, policy: Policy, what: str, verb: str, truth: str = "IAM"
) -> Refusal | None:
    """One removal is never a mass deletion; two or more may not exceed the share, nor take all.
    ``what`` and ``verb`` say it in the backend's terms ("owned entries", "remove"); ``truth`` is
    where the operator checks that the removals are meant (IAM, or the Identity Store)."""
    if policy.force_deletions or removed < 2:
        return None
    if removed > policy.max_deletion_share * owned or removed >= owned:
        return Refusal(
            "deletion-breaker",
            f"this run would {verb} {removed} of {owned} {what} "
            f"(limit {policy.max_deletion_share:.0%}, never all); check {truth}, then apply with --force",
        )
    return None
