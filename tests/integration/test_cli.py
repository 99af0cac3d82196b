"""The operator CLI against the real environment: plan, apply, explain, backups, restore, validate, uninstall."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client

from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.entry.cli import main
from chalicelib.model.ownership import MANAGED_BY_SELECTOR
from tests.conftest import CLUSTER_NAME as CLUSTER
from tests.conftest import Environment
from tests.harness.function import cluster_config
from tests.harness.principals import credentials_env, iam_user
from tests.harness.service import (
    Service,
    prepare_seed_cluster,
)

pytestmark = pytest.mark.cluster

GROUP = "iam-bttrm-web-ro-group"
PROJECTS = ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns")
NS3 = "bttrm-web-proj-3-ns"


@pytest.fixture
def setup(
    env: Environment, service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    prepare_seed_cluster(env.plane, service)
    config = tmp_path / "config.yaml"
    config.write_text(cluster_config(env.plane))
    kubeconfig = env.plane.admin_kubeconfig(tmp_path / "kubeconfig")
    # the operator runs the CLI with the function's role here; it reaches the cluster by EKS token
    for name, value in credentials_env(service.principal).items():
        monkeypatch.setenv(name, value)
    yield {"config": str(config), "kubeconfig": str(kubeconfig)}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def developer(tags: dict[str, str] | None = None, in_group: bool = True) -> str:
    name = f"dev-{uuid.uuid4().hex[:8]}"
    iam_user(name)
    iam = boto3.client("iam")
    if in_group:
        iam.add_user_to_group(GroupName=GROUP, UserName=name)
    if tags:
        iam.tag_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return name


def aws_auth(env: Environment) -> client.V1ConfigMap:
    return client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system")


def owned_bindings(env: Environment) -> list[str]:
    found = client.RbacAuthorizationV1Api(env.admin()).list_role_binding_for_all_namespaces(
        label_selector=MANAGED_BY_SELECTOR
    )
    return sorted(f"{b.metadata.namespace}/{b.metadata.name}" for b in found.items)


def test_plan_apply_plan(env: Environment, setup: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    name = developer()
    before = aws_auth(env).metadata.resource_version
    code, out, _ = run(capsys, "plan", "--config", setup["config"])
    assert code == 2, out
    assert (
        f"+ mapUsers arn:aws:iam::123456789012:user/{name} -> 'eks-iam-sync:user:{name}' ['rbac-bttrm-web-ro-group']"
        in out
    )
    assert "+ rolebinding bttrm-web-proj-1-ns/eks-iam-sync:group:rbac-bttrm-web-ro-group" in out
    assert aws_auth(env).metadata.resource_version == before and owned_bindings(env) == []

    code, out, _ = run(capsys, "plan", "--config", setup["config"], "--output", "json")
    plan = json.loads(out)["bttrm-eks-dev-0"]
    assert code == 2 and plan["status"] == "changes" and plan["identities"]["status"] == "planned"
    assert {c["arn"].rsplit("/", 1)[-1] for c in plan["identities"]["changes"]} >= {name}

    code, out, _ = run(capsys, "apply", "--config", setup["config"])
    assert code == 0, out
    users = {e.arn.rsplit("/", 1)[-1] for e in read_aws_auth(aws_auth(env).data).entries("mapUsers")}
    assert name in users and len(owned_bindings(env)) == 2

    code, out, _ = run(capsys, "plan", "--config", setup["config"])
    assert code == 0 and "no changes" in out


def test_explain(env: Environment, setup: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    member = developer()
    tagged = developer({f"eks-access/{NS3}": "pods-ro"}, in_group=False)
    assert run(capsys, "apply", "--config", setup["config"])[0] == 0
    admin = ["--kubeconfig", setup["kubeconfig"], "--context", "admin"]  # reading ClusterRoles takes an operator

    code, out, _ = run(capsys, "explain", member, "--config", setup["config"], *admin)
    assert code == 0, out
    assert "because: identities.groups[iam-bttrm-web-ro-group]" in out
    assert "in place now: yes" in out
    for namespace in PROJECTS:
        assert (
            f"namespace {namespace}: ClusterRole rbac-bttrm-pods-ro-cluster-role via group rbac-bttrm-web-ro-group"
            in out
        )
    assert "can pods: get, list, watch" in out

    arn = f"arn:aws:iam::123456789012:user/{tagged}"
    code, out, _ = run(capsys, "explain", arn, "--config", setup["config"], *admin)
    assert code == 0
    assert f"namespace {NS3}: ClusterRole rbac-bttrm-pods-ro-cluster-role via tag eks-access/{NS3}=pods-ro" in out
    assert PROJECTS[0] not in out

    code, out, _ = run(capsys, "explain", "nobody-at-all", "--config", setup["config"], *admin)
    assert code == 1 and "no mapping" in out


def test_backups_and_restore(env: Environment, setup: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    original = aws_auth(env).data
    developer()
    assert run(capsys, "apply", "--config", setup["config"])[0] == 0
    assert aws_auth(env).data != original
    code, out, _ = run(capsys, "backups", "--config", setup["config"])
    assert code == 0 and "    1  " in out and "eks-iam-sync apply" in out
    code, out, _ = run(capsys, "restore", "1", "--config", setup["config"])
    assert code == 0, out
    assert "restore of backup 1: written" in out and "backup 2" in out
    assert aws_auth(env).data == original
    code, out, _ = run(capsys, "restore", "7", "--config", setup["config"])
    assert code == 1 and "no backup 7 is kept (kept: 2, 1)" in out


def test_invalid_configuration_gives_a_precise_error(
    setup: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(setup["config"]).read_text().replace("pods-ro: rbac", "pods-ro: [rbac") + "\n")
    code, _, err = run(capsys, "plan", "--config", str(bad))
    assert code == 1 and f"{bad}:" in err and "YAML syntax error" in err
    bad.write_text(
        Path(setup["config"])
        .read_text()
        .replace("kubernetesGroups: [rbac-bttrm-web-ro-group]", "kubernetesGroups: [system:masters]", 1)
    )
    code, _, err = run(capsys, "apply", "--config", str(bad))
    assert code == 1 and f"{bad}:" in err and "identities.groups[0].kubernetesGroups[0]" in err


def test_validate_live(env: Environment, setup: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    admin = ["--kubeconfig", setup["kubeconfig"], "--context", "admin"]
    with contextlib.suppress(boto3.client("iam").exceptions.EntityAlreadyExistsException):
        boto3.client("iam").create_role(RoleName="iam-bttrm-web-ro-role", AssumeRolePolicyDocument="{}")
    code, out, err = run(capsys, "validate", setup["config"], "--live", *admin)
    assert code == 0 and "live checks: ok" in out, err
    text = (
        Path(setup["config"])
        .read_text()
        .replace("bttrm-web-proj-2-ns]", "not-there-ns]")
        .replace("iamGroup: iam-bttrm-web-ro-group", "iamGroup: no-such-group")
    )
    Path(setup["config"]).write_text(text)
    code, _, err = run(capsys, "validate", setup["config"], "--live", *admin)
    assert code == 1
    assert "IAM group 'no-such-group' does not exist" in err
    assert "namespace 'not-there-ns' does not exist" in err


def test_an_html_page_where_aws_should_answer_is_one_line_not_a_traceback(
    setup: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy (or a wrong AWS_ENDPOINT_URL) answering HTML: botocore cannot parse it, and the
    ResponseParserError it raised escaped every adapter; it is now a transient failure, said once."""
    from chalicelib.adapters.iam import IamReader  # noqa: PLC0415
    from chalicelib.errors import TransientError  # noqa: PLC0415
    from tests.harness import endpoints  # noqa: PLC0415

    with endpoints.html_page() as page:
        monkeypatch.setenv("AWS_ENDPOINT_URL", page.url)
        with pytest.raises(TransientError, match=r"HTTP 502 with text/html; charset=utf-8: not an AWS API answer"):
            IamReader().full_snapshot()
        code, out, err = run(capsys, "plan", "--config", setup["config"], "--kubeconfig", setup["kubeconfig"])
    assert page.requests  # AWS was asked, and the page answered
    assert code == 1
    assert "Traceback" not in out + err and "ResponseParserError" not in out + err
    assert "not an AWS API answer" in out + err
    assert (out + err).count("not an AWS API answer") == 1, out + err


def test_uninstall_removes_exactly_what_the_service_owns_backups_included(
    env: Environment, setup: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """On the real apiserver: the function's own RBAC cannot delete a backup (uninstall is the
    operator's); run as cluster admin it removes the owned entries, RoleBindings and every backup, and
    someone else's ConfigMaps (one named like a backup slot), RoleBinding and aws-auth entry stay."""
    core, rbac = client.CoreV1Api(env.admin()), client.RbacAuthorizationV1Api(env.admin())
    name = developer()
    assert run(capsys, "apply", "--config", setup["config"])[0] == 0
    assert run(capsys, "apply", "--config", setup["config"], "--force")[0] == 0
    look_alike, other = "eks-iam-sync-aws-auth-backup-49", f"someone-else-{uuid.uuid4().hex[:6]}"
    for cm_name in (look_alike, other):
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=cm_name), data={"keep": "me"})
        core.create_namespaced_config_map("kube-system", body)
    foreign_binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="someone-elses-binding"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
        subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User", name="carol")],
    )
    rbac.create_namespaced_role_binding(PROJECTS[0], foreign_binding)
    edited = aws_auth(env)
    carol = "- userarn: arn:aws:iam::123456789012:user/carol\n  username: carol\n  groups: [ops]\n"
    edited.data["mapUsers"] = edited.data.get("mapUsers", "") + carol  # kubectl edit: not in the ledger
    core.replace_namespaced_config_map("aws-auth", "kube-system", edited)
    try:
        owned = {cm.metadata.name for cm in _labelled_config_maps(core)}
        assert owned and look_alike not in owned and "aws-auth" not in owned
        others = {
            cm.metadata.name: cm.metadata.resource_version for cm in _config_maps(core) if cm.metadata.name not in owned
        }
        admin = ("--kubeconfig", setup["kubeconfig"], "--cluster", CLUSTER)

        code, out, _ = run(capsys, "uninstall", "--config", setup["config"], *admin, "--dry-run", "--output", "json")
        assert code == 2 and set(json.loads(out)[CLUSTER]["backups"]["removed"]) == owned

        # As the function (its shipped RBAC): its entries go, its backups cannot (no delete on ConfigMaps).
        code, out, _ = run(capsys, "uninstall", "--config", setup["config"], "--output", "json")
        error = str(json.loads(out)[CLUSTER]["backups"]["error"])
        assert code == 1 and "delete configmap kube-system/eks-iam-sync-aws-auth-backup-" in error and "403" in error
        assert {cm.metadata.name for cm in _labelled_config_maps(core)} >= owned

        code, out, _ = run(capsys, "uninstall", "--config", setup["config"], *admin)
        assert code == 0, out
        assert not _labelled_config_maps(core) and owned_bindings(env) == []
        mapped = {e.get("userarn") for e in yaml.safe_load(aws_auth(env).data["mapUsers"]) or []}
        assert "arn:aws:iam::123456789012:user/carol" in mapped and not any(name in str(a) for a in mapped)
        after = {cm.metadata.name: cm.metadata.resource_version for cm in _config_maps(core)}
        assert {n: rv for n, rv in after.items() if n != "aws-auth"} == {
            n: rv for n, rv in others.items() if n != "aws-auth"
        }
        kept = rbac.read_namespaced_role_binding("someone-elses-binding", PROJECTS[0])
        assert kept.subjects[0].name == "carol"
    finally:
        rbac.delete_namespaced_role_binding("someone-elses-binding", PROJECTS[0])
        for cm_name in (look_alike, other):
            core.delete_namespaced_config_map(cm_name, "kube-system")


def _config_maps(core: client.CoreV1Api) -> list[client.V1ConfigMap]:
    return list(core.list_namespaced_config_map("kube-system").items)


def _labelled_config_maps(core: client.CoreV1Api) -> list[client.V1ConfigMap]:
    return list(core.list_namespaced_config_map("kube-system", label_selector=MANAGED_BY_SELECTOR).items)
