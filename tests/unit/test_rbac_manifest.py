"""The service's own RBAC: the shipped manifest is exactly what the seed configuration needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.config import ADMIN_VIEW_CLUSTER_ROLE, DEFAULT_CONFIG_PATH, load_config, parse_config
from chalicelib.deploy.rbac_manifest import render_manifest
from chalicelib.entry.cli import main

SHIPPED = Path(__file__).parents[2] / "infra" / "kubernetes" / "rbac.yaml"


def test_the_shipped_manifest_is_the_rendering_of_the_seed_config() -> None:
    assert SHIPPED.read_text() == render_manifest(load_config(DEFAULT_CONFIG_PATH))


def own_documents() -> list[dict[str, Any]]:
    """The service's own permissions: every document but the read-all ClusterRole it ships for others."""
    found = [d for d in yaml.safe_load_all(SHIPPED.read_text()) if d]
    return [d for d in found if d["metadata"]["name"] != ADMIN_VIEW_CLUSTER_ROLE]


def test_the_admin_view_equivalent_reads_everything_and_is_bound_to_nobody() -> None:
    documents = [d for d in yaml.safe_load_all(SHIPPED.read_text()) if d]
    [role] = [d for d in documents if d["metadata"]["name"] == ADMIN_VIEW_CLUSTER_ROLE]
    assert role["kind"] == "ClusterRole"
    assert role["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]
    assert not [d for d in documents if d.get("roleRef", {}).get("name") == ADMIN_VIEW_CLUSTER_ROLE]


def test_a_configuration_granting_policies_may_bind_their_equivalents_on_aws_auth_clusters() -> None:
    text = DEFAULT_CONFIG_PATH.read_text().replace(
        "      kubernetesGroups: [rbac-bttrm-web-ro-group]\n  roles:",
        "      kubernetesGroups: [rbac-bttrm-web-ro-group]\n"
        "      accessPolicies: [{policy: AmazonEKSViewPolicy, namespaces: [a]}, "
        "{policy: AmazonEKSAdminViewPolicy, namespaces: [a]}]\n  roles:",
    )
    manifest = [d for d in yaml.safe_load_all(render_manifest(parse_config(text))) if d]
    [bind] = [
        r
        for d in manifest
        if d["metadata"]["name"] == "eks-iam-sync"
        for r in d.get("rules", [])
        if "bind" in r["verbs"]
    ]
    assert bind["resourceNames"] == [ADMIN_VIEW_CLUSTER_ROLE, "rbac-bttrm-pods-ro-cluster-role", "view"]
    entries_only = text.replace("region: us-east-2", "region: us-east-2\n    backend: accessEntries")
    manifest = [d for d in yaml.safe_load_all(render_manifest(parse_config(entries_only))) if d]
    [bind] = [
        r
        for d in manifest
        if d["metadata"]["name"] == "eks-iam-sync"
        for r in d.get("rules", [])
        if "bind" in r["verbs"]
    ]
    assert bind["resourceNames"] == ["rbac-bttrm-pods-ro-cluster-role"]


def test_least_privilege() -> None:
    documents = own_documents()
    rules = [rule for d in documents if "rules" in d for rule in d["rules"]]
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in rules)
    [bind] = [r for r in rules if "bind" in r["verbs"]]
    assert bind["resourceNames"] == ["rbac-bttrm-pods-ro-cluster-role"]
    assert "escalate" not in {v for r in rules for v in r["verbs"]}
    subjects = [s for d in documents for s in d.get("subjects", [])]
    assert {(s["kind"], s["name"]) for s in subjects} == {("Group", "eks-iam-sync")}
    [configmaps] = [r for r in rules if r["resources"] == ["configmaps"] and "get" in r["verbs"]]
    # aws-auth, the ring of 10 newest versions, one slot per hour of the day, the last foreign version
    assert configmaps["resourceNames"][0] == "aws-auth" and len(configmaps["resourceNames"]) == 1 + 10 + 24 + 1
    assert "system:masters" not in SHIPPED.read_text()


def test_rbac_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rbac", str(DEFAULT_CONFIG_PATH)]) == 0
    assert capsys.readouterr().out == SHIPPED.read_text()


ADAPTERS = Path(__file__).parents[2] / "chalicelib" / "adapters"
# kubernetes client method -> RBAC verb; "list_x_for_all_namespaces" is a cluster-wide list.
VERBS = {"read": "get", "list": "list", "create": "create", "replace": "update", "patch": "patch", "delete": "delete"}


def adapter_calls() -> set[tuple[str, str, bool]]:
    """(resource, verb, cluster-wide) for every kubernetes API call in chalicelib/adapters."""
    calls = set()
    for source in ADAPTERS.glob("*.py"):
        for method in re.findall(r"self\._(?:core|rbac)\.([a-z_]+)", source.read_text()):
            action, _, rest = method.partition("_")
            namespaced = rest.startswith("namespaced_")
            everywhere = rest.endswith("_for_all_namespaces")
            kind = rest.removeprefix("namespaced_").removesuffix("_for_all_namespaces")
            calls.add((kind.replace("_", "") + "s", VERBS[action], everywhere or not namespaced))
    return calls


def manifest_grants() -> set[tuple[str, str, bool]]:
    """(resource, verb, cluster-wide) for every rule of the shipped manifest but `bind`."""
    grants = set()
    for document in (d for d in own_documents() if "rules" in d):
        cluster_wide = document["kind"] == "ClusterRole"
        for rule in document["rules"]:
            grants |= {(r, v, cluster_wide) for r in rule["resources"] for v in rule["verbs"] if v != "bind"}
    return grants


# Made only by `eks-iam-sync report` (adapters/rbac_reader.py), with the reader's own credentials, never
# by the service: its manifest does not grant them.
REPORT_ONLY_CALLS = {("roles", "list", True), ("clusterroles", "list", True), ("clusterrolebindings", "list", True)}
# Made only by `eks-iam-sync uninstall` (its backups), as a cluster admin, never by the service.
OPERATOR_ONLY_CALLS = {("configmaps", "delete", False)}


# Granted only to a configuration with an access policy at cluster scope (an aws-auth cluster binds its
# RBAC equivalent with a ClusterRoleBinding); the seed has none.
CLUSTER_SCOPE_CALLS = {("clusterrolebindings", v, True) for v in ("list", "create", "update", "delete")}


def test_the_manifest_grants_exactly_the_verbs_the_adapters_call() -> None:
    """No verb the code never uses (get/watch/patch on rolebindings, patch on configmaps were), none missing."""
    assert adapter_calls() >= OPERATOR_ONLY_CALLS
    assert CLUSTER_SCOPE_CALLS - {("clusterrolebindings", "list", True)} <= adapter_calls()
    calls = adapter_calls() - REPORT_ONLY_CALLS - OPERATOR_ONLY_CALLS - CLUSTER_SCOPE_CALLS
    assert calls == {
        ("configmaps", "get", False),
        ("configmaps", "update", False),  # replace, with the resourceVersion; the dry run too
        ("configmaps", "create", False),
        ("rolebindings", "list", True),  # cluster-wide, by label selector
        ("rolebindings", "create", False),
        ("rolebindings", "update", False),
        ("rolebindings", "delete", False),
        ("namespaces", "list", True),
        ("clusterroles", "get", True),
    }, (
        "an adapter calls something new: grant it in chalicelib/deploy/rbac_manifest.py and regenerate infra/kubernetes/rbac.yaml"
    )
    # A namespaced call is granted by the kube-system Role (configmaps) or the ClusterRole (rolebindings, anywhere).
    granted = manifest_grants()
    assert {(r, v) for r, v, _ in granted} == {(r, v) for r, v, _ in calls}
    assert {(r, v) for r, v, wide in calls if wide} <= {(r, v) for r, v, wide in granted if wide}
    [bind] = [
        rule
        for d in yaml.safe_load_all(SHIPPED.read_text())
        if d and "rules" in d
        for rule in d["rules"]
        if "bind" in rule["verbs"]
    ]
    assert bind["resources"] == ["clusterroles"] and bind["verbs"] == ["get", "bind"]  # bind: escalation prevention


def documents_for(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render_manifest(parse_config(text))) if d]


def rules_of(documents: list[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        rule
        for d in documents
        if d["kind"] == kind and d["metadata"].get("namespace") == namespace
        for rule in d["rules"]
        if d["metadata"]["name"] != ADMIN_VIEW_CLUSTER_ROLE
    ]


SEED_TEXT = DEFAULT_CONFIG_PATH.read_text()
ENTRIES_ONLY = SEED_TEXT.replace("region: us-east-2", "region: us-east-2\n    backend: accessEntries")
NO_TAG_GRANTS = SEED_TEXT.split("tagGrants:")[0] + "allowPrivilegedClusterRoles: []\n"


def test_no_configmap_rights_when_every_cluster_uses_access_entries() -> None:
    """In API_AND_CONFIG_MAP, write on aws-auth is a path to system:masters around every IAM fence."""
    documents = documents_for(ENTRIES_ONLY)
    assert not [r for d in documents for r in d.get("rules", []) if "configmaps" in r["resources"]]
    assert not [d for d in documents if d["metadata"].get("namespace") == "kube-system"]
    # auto follows the authentication mode, which only the cluster knows: aws-auth's rights stay
    assert rules_of(documents_for(SEED_TEXT), "Role", "kube-system")


def test_rolebinding_writes_only_in_the_listed_namespaces_when_the_configuration_lists_them_all() -> None:
    documents = documents_for(NO_TAG_GRANTS)
    [rolebindings] = [r for r in rules_of(documents, "ClusterRole") if r["resources"] == ["rolebindings"]]
    assert rolebindings["verbs"] == ["list"]  # listed by label, cluster-wide; written nowhere else
    for namespace in ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns"):
        assert rules_of(documents, "Role", namespace) == [
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings"],
                "verbs": ["create", "update", "delete"],
            }
        ]
        [binding] = [d for d in documents if d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == namespace]
        assert binding["subjects"] == [
            {"kind": "Group", "name": "eks-iam-sync", "apiGroup": "rbac.authorization.k8s.io"}
        ]
    # a tag grant or a selector chooses namespaces at run time: RBAC cannot follow, the writes are cluster-wide
    selector = NO_TAG_GRANTS.replace(
        "    namespaces: [bttrm-web-proj-1-ns, bttrm-web-proj-2-ns]",
        "    namespaceSelector: {matchLabels: {team: web}}",
    )
    for text in (SEED_TEXT, selector):
        [rolebindings] = [r for r in rules_of(documents_for(text), "ClusterRole") if r["resources"] == ["rolebindings"]]
        assert rolebindings["verbs"] == ["list", "create", "update", "delete"]


def test_identity_center_grants_bind_their_cluster_role_in_their_listed_namespaces() -> None:
    with_sso = NO_TAG_GRANTS.replace("allowPrivilegedClusterRoles: []\n", "") + (
        "allowPrivilegedClusterRoles: []\n"
        "identityCenter:\n"
        "  identityStoreId: d-9067a1b2c3\n"
        "  region: us-east-1\n"
        "  groupGrants: [{group: team-a, permissionSet: Developer, clusterRole: edit, namespaces: [team-a]}]\n"
    )
    with_sso = with_sso.replace("identities:\n", "identities:\n  permissionSets: [{name: Developer}]\n", 1)
    documents = documents_for(with_sso)
    assert rules_of(documents, "Role", "team-a")[0]["verbs"] == ["create", "update", "delete"]
    [bind] = [r for r in rules_of(documents, "ClusterRole") if "bind" in r["verbs"]]
    assert "edit" in bind["resourceNames"]
    selected = with_sso.replace("namespaces: [team-a]}", "namespaceSelector: {matchLabels: {team: a}}}")
    [rolebindings] = [r for r in rules_of(documents_for(selected), "ClusterRole") if r["resources"] == ["rolebindings"]]
    assert rolebindings["verbs"] == ["list", "create", "update", "delete"]


CLUSTER_VIEW = SEED_TEXT.replace(
    "      kubernetesGroups: [rbac-bttrm-web-ro-group]\n  roles:",
    "      kubernetesGroups: [rbac-bttrm-web-ro-group]\n      accessPolicies: [{policy: AmazonEKSViewPolicy}]\n  roles:",
)


def grants_of(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r, v) for rule in rules_of(documents, "ClusterRole") for r in rule["resources"] for v in rule["verbs"]}


def test_clusterrolebindings_only_with_a_cluster_scope_policy_on_a_cluster_that_may_use_aws_auth() -> None:
    assert CLUSTER_VIEW != SEED_TEXT
    wide = documents_for(CLUSTER_VIEW)
    # exactly what the adapters call on ClusterRoleBindings, beside the seed's own grants
    assert grants_of(wide) - grants_of(documents_for(SEED_TEXT)) == {(r, v) for r, v, _ in CLUSTER_SCOPE_CALLS}
    [crbs] = [r for r in rules_of(wide, "ClusterRole") if r["resources"] == ["clusterrolebindings"]]
    assert crbs["verbs"] == ["list", "create", "update", "delete"] and "resourceNames" not in crbs
    # escalation prevention: the service may bind view (and the seed's role), never cluster-admin, edit or admin
    [bind] = [r for r in rules_of(wide, "ClusterRole") if "bind" in r["verbs"]]
    assert bind["resourceNames"] == ["rbac-bttrm-pods-ro-cluster-role", "view"]
    # namespace scope, or access entries everywhere: no ClusterRoleBinding rights
    scoped = CLUSTER_VIEW.replace("{policy: AmazonEKSViewPolicy}", "{policy: AmazonEKSViewPolicy, namespaces: [a]}")
    entries_only = CLUSTER_VIEW.replace("region: us-east-2", "region: us-east-2\n    backend: accessEntries")
    for text in (SEED_TEXT, scoped, entries_only):
        assert not [r for r in rules_of(documents_for(text), "ClusterRole") if "clusterrolebindings" in r["resources"]]
