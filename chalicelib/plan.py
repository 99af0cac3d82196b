"""RoleBinding plan: desired bindings x the owned bindings observed -> actions. Pure.

Only bindings labelled as ours are ever observed here, so nothing unlabelled is touched. A changed
roleRef cannot be updated in Kubernetes: that is a replace (delete + create). A scoped run creates
and updates what its desired state holds, and deletes only bindings of the principals in scope.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.desired import DesiredBinding


@dataclass(frozen=True)
class ObservedBinding:
    namespace: str
    name: str
    cluster_role: str
    subjects: tuple[tuple[str, str], ...]  # (kind, name)
    source: str
    principal: str | None
    resource_version: str = ""
    raw: Any = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class BindingAction:
    action: Literal["create", "update", "replace", "delete"]
    desired: DesiredBinding | None = None
    observed: ObservedBinding | None = None

    @property
    def key(self) -> tuple[str, str]:
        target = self.desired or self.observed
        assert target is not None
        return target.key

    def describe(self) -> str:
        namespace, name = self.key
        if self.desired is None:
            return f"- rolebinding {namespace}/{name}"
        what = f"{self.desired.subject_kind} {self.desired.subject_name} -> ClusterRole {self.desired.cluster_role}"
        sign = {"create": "+", "update": "~", "replace": "~"}[self.action]
        return f"{sign} rolebinding {namespace}/{name}: {what}  ({self.desired.source})"


def plan_bindings(
    desired: Iterable[DesiredBinding],
    observed: Iterable[ObservedBinding],
    scope: Container[str] | None = None,
) -> tuple[BindingAction, ...]:
    wanted = {b.key: b for b in desired}
    seen = {b.key: b for b in observed}
    actions: list[BindingAction] = []
    for key in sorted(wanted):
        binding, current = wanted[key], seen.get(key)
        if current is None:
            actions.append(BindingAction("create", binding))
        elif current.cluster_role != binding.cluster_role:
            actions.append(BindingAction("replace", binding, current))
        elif not _same(binding, current):
            actions.append(BindingAction("update", binding, current))
    for key in sorted(set(seen) - set(wanted)):
        current = seen[key]
        if scope is None or (current.principal is not None and current.principal in scope):
            actions.append(BindingAction("delete", observed=current))
    return tuple(actions)


def _same(binding: DesiredBinding, current: ObservedBinding) -> bool:
    return (
        current.subjects == ((binding.subject_kind, binding.subject_name),)
        and current.source == binding.source
        and current.principal == binding.principal
    )
