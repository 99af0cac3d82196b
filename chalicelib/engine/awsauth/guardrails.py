"""Checks a proposed aws-auth post-image before anything is written. Pure.

Each refusal has a stable ``reason`` (a metric dimension and a log field) and a message that says
what to do. Any refusal means nothing is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chalicelib.config import RESERVED_USERNAME_PREFIXES
from chalicelib.engine.awsauth import reading as readings
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.model import ENTRY_KEYS, MAP_ROLES, Entry
from chalicelib.engine.awsauth.parse import Reading
from chalicelib.engine.guardrails import Policy, deletion_breaker
from chalicelib.model import arns
from chalicelib.model.identities import Refusal

# What the API server accepts (a ConfigMap's data; all annotations of an object together), and the
# share past which every write warns, long before a write could be refused.
DATA_LIMIT_BYTES = 1024 * 1024
ANNOTATIONS_LIMIT_BYTES = 256 * 1024
SIZE_WARNING_SHARE = 0.8
NODE_GROUPS = frozenset({"system:bootstrappers", "system:nodes", "system:node-proxier"})


@dataclass(frozen=True)
class Verdict:
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    sizes: tuple[tuple[str, float], ...] = ()  # (limit, share) of the post-image

    @property
    def allowed(self) -> bool:
        return not self.refusals


def check_current(reading: Reading) -> Verdict:
    """A document the consumer does not read unambiguously is never written over."""
    if reading.understood:
        return Verdict()
    details = "; ".join(p.render() for p in reading.errors) or "the parser generations disagree"
    return Verdict(
        (
            Refusal(
                "current-not-understood",
                f"aws-auth is not read unambiguously by EKS, so nothing is written: {details}. "
                "Fix it by hand (or restore a backup), then the next run proceeds.",
            ),
        )
    )


def check_post_image(
    before: Reading,
    before_ledger: Ledger,
    after_data: Mapping[str, str],
    after_ledger: Ledger,
    *,
    removed: int,
    policy: Policy,
    annotations: Mapping[str, str] | None = None,
) -> Verdict:
    """``annotations``: every annotation aws-auth would carry after the write (ours and others')."""
    after = readings.read(after_data)
    refusals: list[Refusal] = []
    if not after.understood:
        details = "; ".join(p.render() for p in after.errors)
        refusals.append(Refusal("post-image-not-understood", f"the new document would not load cleanly: {details}"))
    refusals += _protected_changed(before, after, policy)
    refusals += _owned_entries(after, after_ledger)
    refusals += _roles_sharing_a_name(after, after_ledger)
    refusals += _sso_entries_rewritten(before, after)
    refusals += _deletion_breaker(len(before_ledger.records), removed, policy)
    sizes = size_shares(after_data, annotations or {})
    warnings = [p.render() for p in after.problems if p.severity == "warning"]
    for limit, share in sizes:
        if share > 1:
            refusals.append(
                Refusal(
                    "too-large",
                    f"aws-auth's {limit} would be {share:.0%} of what the API server accepts: map IAM roles to "
                    "Kubernetes groups instead of many users, or move the cluster to EKS access entries "
                    "(eks-iam-sync migrate)",
                )
            )
        elif share > SIZE_WARNING_SHARE:
            warnings.append(f"aws-auth's {limit} at {share:.0%} of what the API server accepts")
    return Verdict(tuple(refusals), tuple(warnings), sizes)


def size_shares(data: Mapping[str, str], annotations: Mapping[str, str]) -> tuple[tuple[str, float], ...]:
    """How full aws-auth's data and its annotations would be, as shares of the API server's limits."""
    data_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    annotation_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    return (("data", data_bytes / DATA_LIMIT_BYTES), ("annotations", annotation_bytes / ANNOTATIONS_LIMIT_BYTES))


def is_protected(entry: Entry, policy: Policy) -> bool:
    """A protected ARN (both backends' rule), or in aws-auth a node or Fargate entry."""
    return (
        policy.protects(entry.arn)
        or entry.username.startswith("system:node:")
        or bool(NODE_GROUPS.intersection(entry.groups))
    )


def _protected_changed(before: Reading, after: Reading, policy: Policy) -> Iterable[Refusal]:
    for key in ENTRY_KEYS:
        kept = [e for e in before.entries(key) if is_protected(e, policy)]
        now = {e.key: e for e in after.entries(key)}
        for entry in kept:
            if now.get(entry.key) != entry:
                yield Refusal(
                    "protected-entry-changed",
                    f"{key} entry {entry.describe()} (node, Fargate, the service's own or break-glass) "
                    "would change or disappear",
                )


def _owned_entries(after: Reading, ledger: Ledger) -> Iterable[Refusal]:
    for key in ENTRY_KEYS:
        for entry in after.entries(key):
            if not ledger.owns(entry.arn):
                continue
            system = [g for g in entry.groups if g.startswith("system:")]
            if system:
                yield Refusal("system-group", f"owned entry {entry.arn} would map to {system}")
            if not entry.username.strip():
                yield Refusal("empty-username", f"owned entry {entry.arn} would have an empty username")
            elif entry.username.lower().startswith(RESERVED_USERNAME_PREFIXES):
                yield Refusal("reserved-username", f"owned entry {entry.arn} would use username {entry.username!r}")
            if key == MAP_ROLES and arns.has_path(entry.arn):
                yield Refusal("role-path", f"owned role ARN {entry.arn} has a path and would never match")


def _roles_sharing_a_name(after: Reading, ledger: Ledger) -> Iterable[Refusal]:
    names = Counter(arns.role_identity(arn) for arn in {e.key for e in after.entries(MAP_ROLES)})
    for entry in after.entries(MAP_ROLES):
        if names[arns.role_identity(entry.arn)] > 1 and ledger.owns(entry.arn):
            yield Refusal(
                "roles-share-a-name",
                f"{entry.arn} shares its name with another mapped role; STS drops paths, so they are indistinguishable",
            )


def _sso_entries_rewritten(before: Reading, after: Reading) -> Iterable[Refusal]:
    for key, reading in before.keys.items():
        if reading.sso > after.keys[key].sso:
            yield Refusal(
                "sso-entry-rewrite",
                f"{key} holds sso: entries (matched by permission set, kept by aws-iam-authenticator 0.6.0+) "
                f"that this change would have to rewrite; the service never does, so {key} is left as it is. "
                "Map these principals with access entries, or replace the sso: entries by their role ARNs.",
            )


def _deletion_breaker(owned_before: int, removed: int, policy: Policy) -> Iterable[Refusal]:
    refused = deletion_breaker(owned_before, removed, policy, "owned entries", "remove")
    if refused is not None:
        yield refused
