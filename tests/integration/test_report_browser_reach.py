"""The access report's page in headless Chromium (issue 23): the cluster-wide band, grants made outside
eks-iam-sync, the verbs a cell allows, and "who can VERB RESOURCE in NAMESPACE" answered from the
rules in the page. Built from the unit tests' small world (no cluster needed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from chalicelib.entry.accessreport.render import render_html
from chalicelib.model.ports import ObservedConfigMap, RbacBinding
from tests.harness.browser import ReportPage, chromium, open_report
from tests.unit.test_accessreport_model import ACCOUNT, GROUP, KUBERNETES_GROUP, PROJECTS, World, user


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def shown(page: Page) -> list[str]:
    names: list[str] = page.evaluate(
        "[...document.querySelectorAll('#m tbody tr:not(.spacer)')].map(tr => tr.cells[0].dataset.name)"
    )
    return names


@pytest.fixture
def opened(browser: Browser, tmp_path: Path) -> Iterator[ReportPage]:
    """alice and bob in the seed group; bob's group also bound by hand to a secret reader in
    PROJECTS[0]; mallory mapped by hand into system:masters."""
    world = World(users=[user("alice", GROUP), user("bob", GROUP, "ops")]).converge()
    assert world.aws_auth is not None
    masters = f"- userarn: arn:aws:iam::{ACCOUNT}:user/mallory\n  username: mallory\n  groups: [system:masters]\n"
    pathed = (
        f"- rolearn: arn:aws:iam::{ACCOUNT}:role/teams/deployer\n  username: deployer\n  groups: [{KUBERNETES_GROUP}]\n"
    )
    data = {
        **world.aws_auth.data,
        "mapUsers": world.aws_auth.data["mapUsers"] + masters,
        "mapRoles": world.aws_auth.data["mapRoles"] + pathed,
    }
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", data, world.aws_auth.annotations, "7")
    reader = RbacBinding("by-hand", "ClusterRole", "secret-reader", (("Group", KUBERNETES_GROUP),), PROJECTS[0])
    world.foreign.append(reader)
    path = tmp_path / "access.html"
    path.write_text(render_html(world.report()))
    found = open_report(browser, path)
    yield found
    assert found.errors == [] and [u for u in found.requests if not u.startswith("file://")] == []


def test_the_cluster_wide_band_comes_first_and_says_so(opened: ReportPage) -> None:
    page = opened.page
    assert shown(page)[0] == "mallory"
    label = page.locator("#m tbody tr:not(.spacer)").first.locator("th small").inner_text()
    assert "every namespace" in label and "critical" in label
    outside = page.locator("#m tbody td.x").count()
    assert outside >= 5  # mallory everywhere, and the hand-made RoleBinding's cells


def test_who_can_get_secrets_in_a_namespace_from_the_rules_in_the_page(opened: ReportPage) -> None:
    page = opened.page
    namespaces = page.locator("#m thead tr:nth-child(2) th").all_text_contents()
    page.select_option("#f-n", str(namespaces.index(PROJECTS[0])))
    page.fill("#f-v", "get")
    page.fill("#f-r", "secrets")
    assert sorted(shown(page)) == ["alice", "bob", "mallory"]  # not the deployer: its entry never matches
    page.select_option("#f-n", str(namespaces.index(PROJECTS[1])))
    assert shown(page) == ["mallory"]  # the secret reader is bound in PROJECTS[0] only
    page.fill("#f-v", "list")
    page.fill("#f-r", "pods")
    assert sorted(shown(page)) == ["alice", "bob", "mallory"]
    page.fill("#f-v", "create")
    page.fill("#f-r", "deployments.apps")
    assert shown(page) == ["mallory"]
    page.click("#f-reset")
    page.wait_for_function("document.querySelectorAll('#m tbody tr:not(.spacer)').length === 5")


def test_a_cell_shows_its_verbs_per_resource(opened: ReportPage) -> None:
    page = opened.page
    namespaces = page.locator("#m thead tr:nth-child(2) th").all_text_contents()
    alice = page.locator("#m tbody tr", has_text="alice")
    alice.locator("td").nth(namespaces.index(PROJECTS[0])).hover()
    chain = page.locator("#chain-body").inner_text()
    assert "Can, in this namespace" in chain
    assert "secrets: get" in chain and "pods: get list watch" in chain
    assert "granted outside eks-iam-sync" in chain and "RoleBinding" in chain


def test_an_entry_that_never_matches_is_shown_ineffective(opened: ReportPage) -> None:
    page = opened.page
    deployer = page.locator("#m tbody tr", has_text="deployer")
    assert deployer.locator("td.i").count() == 2 and deployer.locator("td.a").count() == 0
    assert deployer.locator("td.i").first.inner_text().startswith("\u00d7 ")
    page.select_option("#f-s", "i")
    assert shown(page) == ["deployer"]


def test_csv_of_the_shown_rows_is_made_in_the_page(opened: ReportPage, tmp_path: Path) -> None:
    page = opened.page
    page.fill("#f-q", "alice")
    with page.expect_download() as download:
        page.click("#f-csv")
    saved = tmp_path / "shown.csv"
    download.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(), newline="")))
    assert rows[0] == ["cluster", "namespace", "principal", "arn", "kind", "status", "ClusterRoles"]
    assert {(r[1], r[2], r[5]) for r in rows[1:]} == {(ns, "alice", "active") for ns in PROJECTS}
    assert "secret-reader" in next(r[6] for r in rows[1:] if r[1] == PROJECTS[0])
    page.fill("#f-q", "")
    every = page.evaluate("window.accessReport.csv()")
    assert not [cell for row in csv.reader(io.StringIO(every)) for cell in row if cell[:1] in ("=", "+", "-", "@")]
    assert opened.requests == [opened.requests[0]]  # the page itself, nothing else


def test_a_long_name_keeps_both_ends_and_another_account_is_named(browser: Browser, tmp_path: Path) -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    assert world.aws_auth is not None
    names = [f"AWSReservedSSO_AdministratorAccess_{n:016x}" for n in (0xA1, 0xB2)]
    entries = "".join(
        f"- rolearn: arn:aws:iam::210987654321:role/{name}\n  username: admin-{n}\n  groups: [{KUBERNETES_GROUP}]\n"
        for n, name in enumerate(names)
    )
    data = {**world.aws_auth.data, "mapRoles": world.aws_auth.data["mapRoles"] + entries}
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", data, world.aws_auth.annotations, "8")
    path = tmp_path / "access.html"
    path.write_text(render_html(world.report()))
    page = open_report(browser, path).page
    heads = page.evaluate(
        """() => [...document.querySelectorAll('#m tbody tr:not(.spacer) th')]
            .filter(th => th.dataset.name.startsWith('AWSReserved'))
            .map(th => [th.dataset.name, th.firstChild.nodeValue, th.querySelector('small').textContent])"""
    )
    assert [h[0] for h in heads] == names
    shown_names = [h[1] for h in heads]
    assert all(s.startswith("AWSReservedSSO_") and "\u2026" in s for s in shown_names)
    assert shown_names[0] != shown_names[1] and shown_names[0].endswith(names[0][-14:])  # the ends tell them apart
    assert all("210987654321" in h[2] for h in heads)
    page.locator("#m tbody th", has_text=shown_names[0]).hover()
    assert names[0] in page.locator("#chain-body").inner_text()  # the whole name in the chain panel
