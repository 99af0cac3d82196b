"""Stage 5: carries out a plan. Two appliers over the same ``Plan`` (after Chalice's deployer's
Executor / DisplayOnlyExecutor): ``Applier`` writes through the ports; ``DisplayOnlyApplier`` holds
no store at all and only reports what would happen, so a dry run cannot write.

RoleBindings are applied one at a time so that one failure never blocks the rest: a missing
namespace skips its binding (it appears on the next reconcile after the namespace exists); a write
conflict is reported and retried by the next run; a refusal (403: escalation prevention or a
permission the service lacks; 400/422: rejected) is reported; a transient failure is raised after
every other binding was tried, so that the run is retried.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from chalicelib.engine.plan import BindingAction, CreateBinding, DeleteBinding, Plan, ReplaceBinding, UpdateBinding
from chalicelib.errors import Forbidden, NotFound, PermanentError, TransientError, WriteConflict
from chalicelib.model.identities import Outcome, preview
from chalicelib.model.ports import BindingStore, IdentityBackend, ObservedBinding, Observer


@dataclass
class BindingResult:
    done: list[BindingAction] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.skipped + self.conflicts + self.refused + self.failed


@dataclass(frozen=True)
class Applied:
    identities: Outcome
    bindings: BindingResult
    display_only: bool = False


class DisplayOnlyApplier:
    """Reports a plan; writes nothing (it has nothing to write with)."""

    def apply(self, plan: Plan, reason: str) -> Applied:
        return Applied(preview(plan.identities), BindingResult(done=list(plan.bindings)), display_only=True)


def applier(
    dry_run: bool, identities: IdentityBackend[Any], bindings: BindingStore, observer: Observer
) -> Applier | DisplayOnlyApplier:
    """The applier for a run: the display-only one, which holds no store, for a dry run."""
    return DisplayOnlyApplier() if dry_run else Applier(identities, bindings, observer)


@dataclass
class Applier:
    identities: IdentityBackend[Any]
    bindings: BindingStore
    observer: Observer

    def apply(self, plan: Plan, reason: str) -> Applied:
        outcome = self.identities.apply(plan.identities, reason)
        actions: tuple[BindingAction, ...] = plan.bindings
        held: tuple[BindingAction, ...] = ()
        if any(r.reason == "deletion-breaker" for r in outcome.refusals):
            # The breaker keeps people's identities; it keeps what their tag grants bind too.
            held = tuple(a for a in actions if isinstance(a, DeleteBinding) and a.observed.principal is not None)
            actions = tuple(a for a in actions if a not in held)
        result = self.apply_bindings(actions)
        result.refused += [f"{a.describe()}: held back by the deletion breaker" for a in held]
        return Applied(outcome, result)

    def apply_bindings(self, actions: tuple[BindingAction, ...]) -> BindingResult:
        result = BindingResult()
        for action in actions:
            try:
                _apply(action, self.bindings)
            except PermanentError as err:
                self._refused(action, err, result)
                continue
            except WriteConflict as err:
                result.conflicts.append(f"{action.describe()}: {err}")
                self.observer.warning("rolebinding conflict", action=action.describe(), detail=str(err))
                self.observer.count("BindingConflicts")
                continue
            except TransientError as err:
                result.failed.append(f"{action.describe()}: {err}")
                self.observer.error("rolebinding write failed", action=action.describe(), detail=str(err))
                continue
            result.done.append(action)
            self.observer.change("rolebinding changed", action=action.verb, binding=action.describe())
        for metric, verbs in (
            ("BindingsCreated", ("create",)),
            ("BindingsUpdated", ("update", "replace")),
            ("BindingsDeleted", ("delete",)),
        ):
            self.observer.count(metric, sum(1 for a in result.done if a.verb in verbs))
        if result.failed:
            raise TransientError(f"{len(result.failed)} rolebinding writes failed: {result.failed[0]}")
        return result

    def _refused(self, action: BindingAction, err: PermanentError, result: BindingResult) -> None:
        message = f"{action.describe()}: {err}"
        if isinstance(err, NotFound) and isinstance(action, CreateBinding | ReplaceBinding):
            result.skipped.append(message)
            self.observer.warning("namespace missing: binding skipped until it exists", action=action.describe())
            self.observer.count("BindingsSkipped")
            return
        result.refused.append(message)
        self.observer.error("rolebinding write refused by the API server", action=action.describe(), detail=str(err))
        self.observer.count("Refusals", reason="api-forbidden" if isinstance(err, Forbidden) else "api-rejected")


def _apply(action: BindingAction, store: BindingStore) -> None:
    match action:
        case CreateBinding(desired=desired):
            store.create(desired)
        case UpdateBinding(desired=desired, observed=observed):
            store.update(desired, observed)
        case ReplaceBinding(desired=desired, observed=observed):
            _delete(store, observed)
            store.create(desired)
        case DeleteBinding(observed=observed):
            _delete(store, observed)


def _delete(store: BindingStore, observed: ObservedBinding) -> None:
    with contextlib.suppress(NotFound):  # someone deleted it first: what the plan wanted
        store.delete(observed)
