"""Who a run concerns, decided in one place (pure: what has to be read is asked of the callables
given, nothing else).

- ``resolve_scope``: the principals of a run. ``None`` (no trigger: the schedule, the CLI, a work
  item for everyone) is everyone; an event's trigger names its principals, plus the members of a
  group renamed to a configured name (read from IAM) and a deleted group's former members (IAM can
  no longer list them: read from what the service recorded in the clusters).
- ``identity_scope``: whose identity entries the run may change: the run's principals (everyone on
  a full run) less the former members of configured groups IAM no longer has, whose mappings are
  kept until the configuration names the group again.
- ``reread_scope``: whom a full run reads again before writing (the principals its plan would
  change), or ``None`` for one full read when there are too many to read one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import overload

from chalicelib.engine.events import Trigger
from chalicelib.engine.plan import DeleteBinding, Plan
from chalicelib.model import arns
from chalicelib.model.principals import EveryoneBut, PrincipalScope
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser

# Above this many principals to re-read, one full IAM read costs less than reading each.
REREAD_LIMIT = 100

# (kind, name): "user" or "role", and the name as IAM (or, for a principal gone from it, the entry) spells it.
Principal = tuple[str, str]
Members = Callable[[str], Iterable[str]]
FormerMembers = Callable[[tuple[str, ...]], Iterable[str]]


@overload
def resolve_scope(trigger: Trigger, members: Members, former_members: FormerMembers) -> PrincipalScope: ...
@overload
def resolve_scope(trigger: None, members: Members, former_members: FormerMembers) -> None: ...
def resolve_scope(trigger: Trigger | None, members: Members, former_members: FormerMembers) -> PrincipalScope | None:
    """``members(group)``: the IAM group's user names now; ``former_members(groups)``: the user names
    the service mapped for these (deleted) groups. Each is asked only when the trigger needs it."""
    if trigger is None:
        return None
    scope = trigger.scope
    for group in trigger.groups_to_read:
        scope = scope.with_users(members(group))
    if trigger.deleted_groups:
        scope = scope.with_users(former_members(trigger.deleted_groups))
    return scope


def identity_scope(
    scope: PrincipalScope | None,
    missing_groups: tuple[str, ...],
    members_of: FormerMembers,
) -> tuple[PrincipalScope | EveryoneBut | None, frozenset[str]]:
    """The scope of the identity step, and the users kept out of it (lower case): ``members_of``
    says whom the service mapped for the configured groups IAM no longer has (``missing_groups``);
    a group renamed or deleted by mistake must not revoke everyone it mapped."""
    if not missing_groups:
        return scope, frozenset()
    kept = frozenset(name.lower() for name in members_of(missing_groups))
    return (EveryoneBut(kept) if scope is None else scope.without(kept)), kept


def touched_principals(plan: Plan, snapshot: IamSnapshot) -> frozenset[Principal]:
    """(kind, name) of every principal whose entry or own binding the plan changes, the name as the
    snapshot spells it (else as its ARN does)."""
    arns_touched = [change.arn for change in plan.identities.changes]
    for action in plan.bindings:
        binding = action.observed if isinstance(action, DeleteBinding) else action.desired
        if binding.principal:
            arns_touched.append(binding.principal)
    spelled = {key: principal.name for key, principal in principals_by_key(snapshot).items()}
    found = set()
    for arn in arns_touched:
        parsed = arns.parse(arn)
        if parsed is not None and parsed.kind in ("user", "role"):
            found.add((parsed.kind, spelled.get((parsed.kind, arns.fold(parsed.name)), parsed.name)))
    return frozenset(found)


def reread_scope(touched: frozenset[Principal]) -> PrincipalScope | None:
    """Whom to read again: these principals, spelled as given (a lookup by name may be
    case-sensitive, and a principal not found is taken for deleted); ``None``, everyone, past
    ``REREAD_LIMIT``."""
    if len(touched) > REREAD_LIMIT:
        return None
    return PrincipalScope.of(
        [name for kind, name in sorted(touched) if kind == "user"],
        [name for kind, name in sorted(touched) if kind == "role"],
    )


def principals_by_key(snapshot: IamSnapshot) -> dict[Principal, IamUser | IamRole]:
    """The snapshot's principals by (kind, name as IAM compares names)."""
    found: dict[Principal, IamUser | IamRole] = {("user", arns.fold(u.name)): u for u in snapshot.users}
    found.update({("role", arns.fold(r.name)): r for r in snapshot.roles})
    return found
