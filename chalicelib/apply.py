"""Carries out a RoleBinding plan, one binding at a time, so that one failure never blocks the rest.

A missing namespace skips its binding (it appears on the next reconcile after the namespace
exists); a binding of the same name that is not ours is left alone (conflict); a 403 is a refusal
(the API server's escalation prevention, or a permission the service lacks); a transient failure is
raised after every other binding was tried, so that the run is retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.desired import DesiredBinding
from chalicelib.errors import PermanentError, TransientError, WriteConflict
from chalicelib.observability import Observer
from chalicelib.plan import BindingAction, ObservedBinding


class BindingStore(Protocol):
    def create(self, binding: DesiredBinding) -> None: ...
    def update(self, binding: DesiredBinding, current: ObservedBinding) -> None: ...
    def delete(self, current: ObservedBinding) -> None: ...


@dataclass
class BindingResult:
    done: list[BindingAction] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def apply_bindings(actions: Iterable[BindingAction], store: BindingStore, observer: Observer) -> BindingResult:
    result = BindingResult()
    for action in actions:
        try:
            _apply(action, store)
        except PermanentError as err:
            _classify(action, err, result, observer)
            continue
        except WriteConflict as err:
            result.conflicts.append(f"{action.describe()}: {err}")
            observer.warning("rolebinding conflict", action=action.describe(), detail=str(err))
            observer.count("BindingConflicts")
            continue
        except TransientError as err:
            result.failed.append(f"{action.describe()}: {err}")
            observer.error("rolebinding write failed", action=action.describe(), detail=str(err))
            continue
        result.done.append(action)
        observer.info("rolebinding changed", action=action.action, binding=action.describe())
    for name, verb in (("BindingsCreated", "create"), ("BindingsUpdated", "update"), ("BindingsDeleted", "delete")):
        count = sum(1 for a in result.done if a.action == verb or (verb == "update" and a.action == "replace"))
        observer.count(name, count)
    if result.failed:
        raise TransientError(f"{len(result.failed)} rolebinding writes failed: {result.failed[0]}")
    return result


def _apply(action: BindingAction, store: BindingStore) -> None:
    if action.action == "create" and action.desired:
        store.create(action.desired)
    elif action.action == "update" and action.desired and action.observed:
        store.update(action.desired, action.observed)
    elif action.action == "replace" and action.desired and action.observed:
        store.delete(action.observed)  # roleRef is immutable: delete, then create
        store.create(action.desired)
    elif action.action == "delete" and action.observed:
        store.delete(action.observed)


def _classify(action: BindingAction, err: PermanentError, result: BindingResult, observer: Observer) -> None:
    message = f"{action.describe()}: {err}"
    if err.status == 404 and action.action in ("create", "replace"):
        result.skipped.append(message)
        observer.warning("namespace missing: binding skipped until it exists", action=action.describe())
        observer.count("BindingsSkipped")
    else:
        result.refused.append(message)
        observer.error("rolebinding write refused by the API server", action=action.describe(), detail=str(err))
        observer.count("Refusals", reason="api-forbidden" if err.status == 403 else "api-rejected")
