"""The access report's rendering (chalicelib/entry/accessreport/render.py): one self-contained page that
cannot be made to run anything but its own script, whatever names IAM and aws-auth hold."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import unescape

from chalicelib.entry.accessreport import rbac
from chalicelib.entry.accessreport.jsonform import as_json
from chalicelib.entry.accessreport.render import MAX_FINDINGS_SHOWN, _groups, matrix_data, render_html, render_json
from chalicelib.model.ports import ObservedConfigMap, RbacBinding
from tests.unit.test_accessreport_model import ACCOUNT, GROUP, KUBERNETES_GROUP, POD_READER, PROJECTS, World, user

HOSTILE_USERNAME = "</script><script>alert('username')</script>"
HOSTILE_GROUP = '"><img src=x onerror=alert(1)>'
HOSTILE_ARN = f"arn:aws:iam::{ACCOUNT}:user/mallory<svg onload=alert(2)>&amp;"


def hostile_world() -> World:
    """A foreign aws-auth entry (anyone with kubectl can write one) whose every field is an attack,
    mapped into the configured group so that it is a row of the matrix and a path."""
    world = World(users=[user("alice", GROUP)]).converge()
    assert world.aws_auth is not None
    fields = {"userarn": HOSTILE_ARN, "username": HOSTILE_USERNAME, "groups": [HOSTILE_GROUP, KUBERNETES_GROUP]}
    data = {**world.aws_auth.data, "mapUsers": world.aws_auth.data["mapUsers"] + f"- {json.dumps(fields)}\n"}
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", data, world.aws_auth.annotations, "3")
    return world


def scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.DOTALL)


def test_hostile_names_are_text_never_markup() -> None:
    report = hostile_world().report()
    assert any(p.arn == HOSTILE_ARN for p in report.principals), "the hostile entry is a row"
    html = render_html(report)
    for attack in ("<svg", "<img", "alert('username')</script>", "</script><script>"):
        assert attack not in html
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the matrix's data, our script
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # in the group filter and the findings, escaped
    # the matrix's data decodes back to exactly the hostile strings
    data = json.loads(scripts(html)[0])
    assert HOSTILE_ARN in [row[1] if isinstance(row[1], str) else data["prefix"] + row[1][0] for row in data["rows"]]


def test_the_page_needs_no_network_and_runs_only_its_own_script() -> None:
    html = render_html(World(users=[user("alice", GROUP)]).converge().report())
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?(?:[a-z]+:)?//""", html, flags=re.IGNORECASE)
    assert "@import" not in html and "url(" not in html
    found = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert found is not None
    csp = unescape(found.group(1))
    assert "default-src 'none'" in csp
    script = scripts(html)[1]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def test_the_page_says_when_what_and_from_which_configuration() -> None:
    html = render_html(World(users=[user("alice", GROUP)]).converge().report())
    assert '<time datetime="2026-11-30T12:00:00Z">' in html
    assert f'<code id="config-sha256">{"ab" * 32}</code>' in html
    assert '<th scope="row">bttrm-eks-dev-0</th>' in html and "CONFIG_MAP" not in html  # mode not described
    assert '<th scope="colgroup" colspan="2" class="cl"><span>bttrm-eks-dev-0</span></th>' in html
    for namespace in PROJECTS:
        assert (
            f'<th scope="col" class="ns" title="cluster bttrm-eks-dev-0" data-c="bttrm-eks-dev-0">{namespace}</th>'
            in html
        )
    assert f"<b>{POD_READER}</b> in <b>{PROJECTS[0]}</b> (bttrm-eks-dev-0) · active · 1 principal" in html


def test_matrix_rows_are_compact_and_complete() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.users.append(user("bob", GROUP))
    report = world.report()
    groups = (
        ("IAM group", GROUP),
        ("Kubernetes group", KUBERNETES_GROUP),
        ("Kubernetes group", "system:bootstrappers"),
        ("Kubernetes group", "system:nodes"),
    )
    data = matrix_data(report, groups)
    assert data["prefix"] == f"arn:aws:iam::{ACCOUNT}:" and data["roles"] == [POD_READER]
    rows = {row[0]: row for row in data["rows"]}
    cells = [[0, [0, "a"], [1], [], 0, 0, 0], [1, [0, "a"], [3], [], 0, 0, 0]]
    assert rows["alice"] == ["alice", ["user/alice"], "u", 1, [0, 1], "a", cells, "l", 0, "", 0]
    assert rows["bob"][6] == [[0, [0, "p"], [2], [], 0, 0, 0], [1, [0, "p"], [4], [], 0, 0, 0]]
    assert [p.id for p in report.paths] == ["p1", "p2", "p3", "p4"]


def test_long_finding_lists_are_capped_in_the_page_and_complete_in_json() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.users += [user(f"dev-{n:04d}", GROUP) for n in range(MAX_FINDINGS_SHOWN + 20)]
    report = world.report()
    drift = report.findings_of("drift")
    assert len(drift) == MAX_FINDINGS_SHOWN + 20  # the new users' entries, and nothing else
    html = render_html(report)
    assert f"{MAX_FINDINGS_SHOWN} of {len(drift)} shown" in html
    assert len([f for f in as_json(report)["findings"] if f["kind"] == "drift"]) == len(drift)


def test_json_rendering_is_the_model() -> None:
    report = World(users=[user("alice", GROUP)]).converge().report()
    assert json.loads(render_json(report)) == json.loads(json.dumps(as_json(report)))


def test_cluster_wide_rows_grants_outside_and_flags_travel_to_the_page() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.foreign.append(RbacBinding("oops-admin", "ClusterRole", "cluster-admin", (("Group", KUBERNETES_GROUP),)))
    report = world.report()
    data = matrix_data(report, _groups(report))
    alice = next(r for r in data["rows"] if r[0] == "alice")
    assert alice[7:] == ["c", 1, "", 0]  # critical, the cluster-wide band, last use not read
    default = next(c for c in alice[6] if report.columns[c[0]].namespace == "default")
    assert data["flags"][default[3][0]] == rbac.ALL and default[4] == 1
    assert ["*", "*"] in data["allowed"][default[5]]  # cluster-admin: every verb on every resource
    html = render_html(report)
    assert "<b>cluster-admin</b> in <b>every namespace</b>" in html
    assert '<em class="outside">granted outside eks-iam-sync</em>' in html
    assert '<span data-s="ClusterRoleBinding">oops-admin (granted outside eks-iam-sync)</span>' in html


def test_a_cell_lists_verbs_per_resource_merged_over_its_paths() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    binding = RbacBinding("by-hand", "ClusterRole", "secret-reader", (("Group", KUBERNETES_GROUP),), PROJECTS[0])
    world.foreign.append(binding)
    report = world.report()
    alice = next(p for p in report.principals if p.name == "alice")
    cell = next(c for c in alice.cells if report.columns[c.column].namespace == PROJECTS[0])
    assert cell.allowed == (
        ("", "pods", ("get", "list", "watch"), ()),
        ("", "pods/log", ("get",), ()),
        ("", "secrets", ("get",), ()),
    )
    assert cell.flags == (rbac.SECRETS_READ,)
    data = matrix_data(report, _groups(report))
    row = next(r for r in data["rows"] if r[0] == "alice")
    first = next(c for c in row[6] if report.columns[c[0]].namespace == PROJECTS[0])
    assert data["allowed"][first[5]] == [["pods", "get list watch"], ["pods/log", "get"], ["secrets", "get"]]
    document = as_json(report)
    access = next(p for p in document["principals"] if p["name"] == "alice")["access"]
    assert {"apiGroup": "", "resource": "secrets", "verbs": ["get"], "resourceNames": []} in access[0]["allowed"]


def test_given_the_previous_report_the_page_marks_what_is_new() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    old = as_json(world.report())
    world.users.append(user("bob", GROUP))
    world.converge()
    world.foreign.append(RbacBinding("oops", "ClusterRole", "cluster-admin", (("Group", KUBERNETES_GROUP),)))
    report = world.report()
    html = render_html(report, old)
    data = json.loads(scripts(html)[0])
    new = {(r[0], report.columns[c[0]].namespace) for r in data["rows"] for c in r[6] if c[6]}
    assert ("bob", PROJECTS[0]) in new and ("alice", "default") in new  # bob's access, alice's new cluster-admin
    assert ("alice", PROJECTS[0]) in new  # cluster-admin added where she had the pod reader
    assert {name for name, _ in new} == {"alice", "bob"}
    assert 'id="since"' in html and "new grant outside eks-iam-sync" in html
    assert 'id="since"' not in render_html(report)
