"""Which of the bindings a store lists an instance owns: its own (labelled with its name, or unlabelled:
adopted), never another instance's; a binding this instance would create under the name of another's
is refused with that reason instead (the create would only meet a conflict). Pure over the port.

And whether a cluster is managed by another instance (``managed_by_others``), decided from the marks a
run read of it: then the run writes nothing there (``ManagedByOtherInstance``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from chalicelib.engine.desired import Refusal
from chalicelib.engine.plan import BindingAction, CreateBinding
from chalicelib.errors import ManagedByOtherInstance
from chalicelib.model.ownership import DEFAULT_INSTANCE, owner, owns
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

    @property
    def instances(self) -> frozenset[str]:
        """The other instances whose bindings were listed."""
        return frozenset(self.foreign.values())

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


def managed_by_others(cluster: str, instance: str, marks: Iterable[str | None]) -> ManagedByOtherInstance | None:
    """Whether what a run read of ``cluster`` (the instance marks of aws-auth's ledger sections, of the
    service's access entries and of its RoleBindings and ClusterRoleBindings, None for unmarked) shows
    it managed by an instance other than ``instance``: the refusal naming them, or None. Unmarked
    objects belong to no one (a named instance adopts them); the default instance marks nothing, so
    only a named instance's marks make a cluster someone else's, and to the default instance any does."""
    others = tuple(sorted({m for m in marks if m and not owns(instance, m)}))
    if not others:
        return None
    named = ", ".join(owner(o) for o in others)
    if instance == DEFAULT_INSTANCE:
        act = f"to act as it, set EKS_IAM_SYNC_INSTANCE={others[0]}"
        message = f"cluster {cluster} is managed by {named}: the default instance writes nothing here ({act})"
    else:
        message = (
            f"cluster {cluster} is managed by {named}: {owner(instance)} writes nothing here; to move it, "
            f"uninstall the other instance from it (EKS_IAM_SYNC_INSTANCE={others[0]} eks-iam-sync uninstall "
            f"--config F --cluster {cluster}), or remove the cluster from this instance's configuration"
        )
    return ManagedByOtherInstance(message, others)
