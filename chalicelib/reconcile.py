"""The only module that orders the stages for one cluster:
IAM snapshot -> desired state -> aws-auth merge (guardrails, conflict-safe write) -> RoleBinding plan -> apply.

``scope=None`` is a full reconcile (namespaces listed, every owned object considered); a
PrincipalScope limits every write to those principals' entries and bindings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes import client

from chalicelib.adapters.configmaps import ConfigMaps
from chalicelib.adapters.rolebindings import RoleBindings
from chalicelib.apply import BindingResult, apply_bindings
from chalicelib.awsauth.guardrails import Policy
from chalicelib.awsauth.writer import AwsAuthWriter, Outcome, WriterSettings
from chalicelib.config import Config
from chalicelib.desired import DesiredState, desired_state
from chalicelib.observability import Observer
from chalicelib.plan import BindingAction, plan_bindings
from chalicelib.principals import PrincipalScope
from chalicelib.snapshot import IamSnapshot


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    force_deletions: bool = False
    event_id: str | None = None
    own_arns: frozenset[str] = frozenset()  # the service's own mapping: never changed
    reason: str = "full reconcile"


@dataclass
class ClusterReport:
    cluster: str
    desired: DesiredState
    aws_auth: Outcome
    binding_plan: tuple[BindingAction, ...]
    bindings: BindingResult = field(default_factory=BindingResult)

    @property
    def changed(self) -> bool:
        return bool(self.aws_auth.changes) or bool(self.binding_plan)


def reconcile_cluster(
    config: Config,
    cluster: str,
    api: client.ApiClient,
    snapshot: IamSnapshot,
    scope: PrincipalScope | None = None,
    options: Options | None = None,
    observer: Observer | None = None,
) -> ClusterReport:
    options = options or Options()
    observer = observer or Observer(cluster)
    bindings = RoleBindings(api)
    namespaces = bindings.namespaces() if scope is None else None
    desired = desired_state(config, snapshot, namespaces, options.event_id)
    _report_desired(desired, observer)
    writer = aws_auth_writer(config, api, options, observer)
    outcome = writer.sync(desired.aws_auth, scope=scope, reason=options.reason, dry_run=options.dry_run)
    plan = plan_bindings(desired.bindings, bindings.list_owned(), scope)
    report = ClusterReport(cluster, desired, outcome, plan)
    if not options.dry_run:
        report.bindings = apply_bindings(plan, bindings, observer)
    return report


def aws_auth_writer(config: Config, api: client.ApiClient, options: Options, observer: Observer) -> AwsAuthWriter:
    """The one way to build the aws-auth writer: break-glass and the caller's own ARNs are protected."""
    return AwsAuthWriter(
        ConfigMaps(api),
        policy=Policy(
            protected_arns=frozenset(a.lower() for a in (*config.aws_auth.break_glass_arns, *options.own_arns)),
            max_deletion_share=config.aws_auth.max_deletion_share,
            force_deletions=options.force_deletions,
        ),
        settings=WriterSettings(backups=config.aws_auth.backups),
        observer=observer,
    )


def _report_desired(desired: DesiredState, observer: Observer) -> None:
    for refusal in desired.refusals:
        observer.warning(
            "grant refused",
            principal=refusal.principal,
            subject=refusal.subject,
            reason=refusal.reason,
            detail=refusal.message,
        )
        observer.count("Refusals", reason=refusal.reason)
    for skipped in desired.skipped:
        observer.warning("binding skipped", detail=skipped)
