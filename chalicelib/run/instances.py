"""Which of the bindings a store lists an instance owns: its own (labelled with its name, or unlabelled:
adopted), never another instance's; a binding this instance would create under the name of another's
is refused with that reason instead (the create would only meet a conflict). Pure over the port."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from chalicelib.engine.desired import Refusal
from chalicelib.engine.plan import BindingAction, CreateBinding
from chalicelib.model.ownership import owner, owns
from chalicelib.model.ports import BindingStore, ObservedBinding


@dataclass
class OwnBindings:
    """The RoleBindings and ClusterRoleBindings ``instance`` owns, of what ``store`` lists; another
    instance's are kept aside by key (their names), for ``claimed``."""

    store: BindingStore
    instance: str
    foreign: dict[tuple[str, str], str] = field(default_factory=dict)

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        return self._mine(self.store.list_owned(principals))

    def list_owned_of_groups(self, groups: Collection[str]) -> list[ObservedBinding]:
        return self._mine(self.store.list_owned_of_groups(groups))

    def list_owned_cluster(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        return self._mine(self.store.list_owned_cluster(principals))

    def claimed(self, actions: tuple[BindingAction, ...]) -> tuple[tuple[BindingAction, ...], tuple[Refusal, ...]]:
        """The actions without the creates of another instance's bindings, and their refusals."""
        taken = [a for a in actions if isinstance(a, CreateBinding) and a.key in self.foreign]
        refusals = tuple(
            Refusal(
                a.desired.principal or a.desired.subject_name,
                f"{a.desired.kind.lower()} {a.desired.namespace + '/' if a.desired.namespace else ''}{a.desired.name}",
                "other-instance",
                f"the {a.desired.kind} is owned by {owner(self.foreign[a.key])}: left as it is",
            )
            for a in taken
        )
        return tuple(a for a in actions if a not in taken), refusals

    def _mine(self, listed: list[ObservedBinding]) -> list[ObservedBinding]:
        for binding in listed:
            if binding.instance and not owns(self.instance, binding.instance):
                self.foreign[binding.key] = binding.instance
        return [b for b in listed if owns(self.instance, b.instance)]
