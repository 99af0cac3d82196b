"""A real browser for the access report's tests: Debian's headless Chromium (/usr/bin/chromium,
installed by tests/harness/install-chromium.sh, ``make browser``), driven by Playwright over the
DevTools protocol without Playwright's own browser download. And a synthetic world of thousands of
principals, reconciled on the functional fakes, whose report the tests render and filter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from chalicelib.config import Config, parse_config
from chalicelib.entry.accessreport.data import AccessReport, Meta
from chalicelib.entry.accessreport.model import build_report
from chalicelib.entry.commands.report import read_cluster
from chalicelib.run.reconcile import Options, reconcile_cluster
from tests.functional.fakes import FakeShell, RecordingObserver, role_arn

CHROMIUM = Path(os.environ.get("EKS_IAM_SYNC_CHROMIUM", "/usr/bin/chromium"))
# Headless as root, on a machine with no way out: no sandbox (root), no GPU, and none of Chromium's
# own traffic (updates, sync, QUIC probes), which a closed network would refuse at every start.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium (Playwright gives each launch a fresh, empty user-data-dir)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (tests/harness/install-chromium.sh)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ReportPage:
    """A report opened from file://, with everything the page complained about."""

    page: Page
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors (a CSP refusal too)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    dialogs: list[str] = field(default_factory=list)  # alert(), confirm(): a script that is not ours ran

    def dismiss(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def open_report(browser: Browser, path: Path, width: int = 1280, height: int = 860) -> ReportPage:
    # The report's CSP forbids eval, which Playwright's polling predicates use: the test's own probes
    # bypass it (what the page itself may run is checked by the page's hash and the request log).
    page = browser.new_page(viewport={"width": width, "height": height}, bypass_csp=True)
    opened = ReportPage(page)
    page.on("pageerror", lambda error: opened.errors.append(f"page error: {error}"))
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("dialog", opened.dismiss)
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.accessReport && window.accessReport.ready")
    return opened


# --------------------------------------------------------------------------------------------------
# A synthetic world: thousands of principals, reconciled on the fakes, then a little drift


SYNTHETIC_CLUSTER = "synthetic-0"
CLUSTER_ROLES = {
    "view-pods": ["pods: get, list, watch", "pods/log: get"],
    "edit-apps": ["deployments, statefulsets: get, list, watch, create, update, patch", "pods: get, list, delete"],
    "view-config": ["configmaps: get, list, watch"],
}


@dataclass(frozen=True)
class Synthetic:
    users: int = 4_500
    roles: int = 400  # tagged eks-access/<ns>=pods-ro: one RoleBinding each
    permission_set_roles: int = 100  # IAM Identity Center roles of one permission set
    groups: int = 20
    namespaces: int = 30
    new_users: int = 40  # added after the reconcile: pending
    deleted_users: int = 20  # deleted after the reconcile: removing

    @property
    def principals(self) -> int:
        """Rows of the report: the deleted users too, their access being removed."""
        return self.users + self.roles + self.permission_set_roles + self.new_users


def synthetic_config(world: Synthetic) -> Config:
    roles = list(CLUSTER_ROLES)
    document: dict[str, Any] = {
        "clusters": [{"name": SYNTHETIC_CLUSTER, "region": "eu-west-1"}],
        "identities": {
            "groups": [
                {"iamGroup": f"team-{g:02d}", "kubernetesGroups": [f"team-{g:02d}-k8s"]} for g in range(world.groups)
            ],
            "permissionSets": [{"name": "ReadOnly", "kubernetesGroups": ["readers"]}],
        },
        "namespaceGrants": [
            {
                "kubernetesGroup": f"team-{g:02d}-k8s",
                "clusterRole": roles[g % len(roles)],
                "namespaces": sorted({_namespace(world, g * 3 + i) for i in range(2 + g % 4)}),
            }
            for g in range(world.groups)
        ]
        + [{"kubernetesGroup": "readers", "clusterRole": "view-pods", "namespaces": [_namespace(world, 0)]}],
        "tagGrants": {"tagPrefix": "eks-access/", "profiles": {"pods-ro": "view-pods"}},
    }
    return parse_config(yaml.safe_dump(document), "synthetic.yaml")


def _namespace(world: Synthetic, index: int) -> str:
    return f"team-ns-{index % world.namespaces:02d}"


def synthetic_report(world: Synthetic) -> AccessReport:
    """Every principal reconciled into one fake cluster, then users added and deleted (drift), then
    read back for the report the way ``eks-iam-sync report`` reads a cluster."""
    config = synthetic_config(world)
    shell = FakeShell()
    cluster = shell.add_cluster(SYNTHETIC_CLUSTER)
    for n in range(world.namespaces):
        cluster.bindings.add_namespace(_namespace(world, n))
    cluster.cluster_roles.roles.update({name: list(rules) for name, rules in CLUSTER_ROLES.items()})
    cluster.config_maps.seed("kube-system", "aws-auth", {"mapRoles": ""})
    iam = shell.iam_port
    for g in range(world.groups):
        iam.add_group(f"team-{g:02d}")
    for r in range(world.roles):
        iam.add_role(f"service-{r:04d}", tags={f"eks-access/{_namespace(world, r)}": "pods-ro"})
    for r in range(world.permission_set_roles):
        iam.add_role(f"AWSReservedSSO_ReadOnly_{r:016x}", path="/aws-reserved/sso.amazonaws.com/")
    for u in range(world.users + world.new_users):
        if u == world.users:
            _reconcile(config, shell)
        teams = [f"team-{u % world.groups:02d}"] + ([f"team-{(u * 7) % world.groups:02d}"] if u % 5 == 0 else [])
        iam.add_user(f"user-{u:05d}", groups=teams, path="/people/" if u % 3 == 0 else "/")
    if world.new_users == 0:
        _reconcile(config, shell)
    for u in range(world.deleted_users):
        iam.delete_user(f"user-{u:05d}")
    snapshot = iam.full_snapshot()
    ports = shell.cluster(config.cluster(SYNTHETIC_CLUSTER))
    read = read_cluster(config, config.cluster(SYNTHETIC_CLUSTER), ports, snapshot, role_arn("auditor"))
    meta = Meta("2026-11-30T12:00:00Z", "synthetic.yaml", "0" * 64, "synthetic", role_arn("auditor"))
    return build_report(config, snapshot, [read], meta)


def _reconcile(config: Config, shell: FakeShell) -> None:
    snapshot = shell.iam_port.full_snapshot()
    ports = shell.cluster(config.cluster(SYNTHETIC_CLUSTER))
    options = Options(own_arns=frozenset({shell.arn}), force_deletions=True)
    reconcile_cluster(config, ports, snapshot, RecordingObserver(), None, options)


def two_cluster_report() -> AccessReport:
    """The functional tests' seed world (fn-east, fn-west): alice in the seed group, reconciled, then
    read for the report; on fn-east someone bound the seed's Kubernetes group to cluster-admin."""
    from tests.functional.fakes import GROUP, KUBERNETES_GROUP, config_text, seed_world  # noqa: PLC0415

    config = parse_config(config_text(), "two-clusters.yaml")
    shell = seed_world()
    shell.iam_port.add_user("alice", groups=[GROUP])
    snapshot = shell.iam_port.full_snapshot()
    reads = []
    for cluster in config.clusters:
        ports = shell.cluster(cluster)
        reconcile_cluster(config, ports, snapshot, RecordingObserver(), None, Options(own_arns=frozenset({shell.arn})))
        rbac = shell.clusters[cluster.name].rbac
        if rbac is not None and cluster.name == "fn-east":
            rbac.bind_cluster_wide("platform-admins", "cluster-admin", (("Group", KUBERNETES_GROUP),))
        reads.append(read_cluster(config, cluster, shell.cluster(cluster), snapshot, role_arn("auditor")))
    meta = Meta("2026-11-30T12:00:00Z", "two-clusters.yaml", "0" * 64, "test", role_arn("auditor"))
    return build_report(config, snapshot, reads, meta)
