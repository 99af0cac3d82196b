"""Stage 4: the plan — desired x observed -> frozen actions. Pure.

A ``Plan`` holds one identity step (aws-auth, or later EKS access entries) and the RoleBinding
actions. ``apply.Applier`` carries a plan out; ``apply.DisplayOnlyApplier`` only reports it, so a
dry run cannot write by construction.

RoleBindings (and ClusterRoleBindings: a binding without a namespace, diffed exactly alike): only
bindings labelled as ours are ever observed here, so nothing unlabelled is touched. A changed
roleRef cannot be updated in Kubernetes: that is a replace (delete + create). A scoped run creates
and updates what its desired state holds, and deletes only bindings of the principals in scope.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass

from chalicelib.model.bindings import DesiredBinding
from chalicelib.model.identities import IdentityStep
from chalicelib.model.ports import ObservedBinding


def _where(namespace: str, name: str) -> str:
    """``rolebinding <namespace>/<name>``, or ``clusterrolebinding <name>`` for one without a namespace."""
    return f"rolebinding {namespace}/{name}" if namespace else f"clusterrolebinding {name}"


def _what(binding: DesiredBinding) -> str:
    return f"{binding.subject_kind} {binding.subject_name} -> ClusterRole {binding.cluster_role}  ({binding.source})"


@dataclass(frozen=True)
class CreateBinding:
    desired: DesiredBinding
    verb = "create"

    @property
    def key(self) -> tuple[str, str]:
        return self.desired.key

    def describe(self) -> str:
        return f"+ {_where(*self.desired.key)}: {_what(self.desired)}"


@dataclass(frozen=True)
class UpdateBinding:
    desired: DesiredBinding
    observed: ObservedBinding
    verb = "update"

    @property
    def key(self) -> tuple[str, str]:
        return self.desired.key

    def describe(self) -> str:
        return f"~ {_where(*self.desired.key)}: {_what(self.desired)}"


@dataclass(frozen=True)
class ReplaceBinding:
    """roleRef is immutable: delete, then create."""

    desired: DesiredBinding
    observed: ObservedBinding
    verb = "replace"

    @property
    def key(self) -> tuple[str, str]:
        return self.desired.key

    def describe(self) -> str:
        before = self.observed.cluster_role
        return f"~ {_where(*self.desired.key)}: {_what(self.desired)} (was {before})"


@dataclass(frozen=True)
class DeleteBinding:
    observed: ObservedBinding
    verb = "delete"

    @property
    def key(self) -> tuple[str, str]:
        return self.observed.key

    def describe(self) -> str:
        return f"- {_where(*self.observed.key)}  ({self.observed.source})"


BindingAction = CreateBinding | UpdateBinding | ReplaceBinding | DeleteBinding


@dataclass(frozen=True)
class Plan:
    identities: IdentityStep
    bindings: tuple[BindingAction, ...] = ()

    @property
    def changed(self) -> bool:
        return self.identities.status == "write" or bool(self.bindings)


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
            actions.append(CreateBinding(binding))
        elif current.cluster_role != binding.cluster_role:
            actions.append(ReplaceBinding(binding, current))
        elif not _same(binding, current):
            actions.append(UpdateBinding(binding, current))
    for key in sorted(set(seen) - set(wanted)):
        current = seen[key]
        if scope is None or (current.principal is not None and current.principal in scope):
            actions.append(DeleteBinding(current))
    return tuple(actions)


def _same(binding: DesiredBinding, current: ObservedBinding) -> bool:
    return (
        current.subjects == ((binding.subject_kind, binding.subject_name),)
        and current.source == binding.source
        and current.principal == binding.principal
        and current.principal_label == binding.principal_label
        and current.group_label == binding.group_label
        and current.instance == binding.instance  # an unmarked binding adopted by an instance gets its label
    )
