"""The access report in a real browser: Debian's headless Chromium (``make browser``), driven by
Playwright (tests/harness/browser.py).

- The seed scenario on the session's real cluster: alice in the seed group, tagged into a denied
  namespace (a refusal), applied; then bob joins (pending) and someone maps a principal by hand with a
  hostile username. ``eks-iam-sync report`` runs as the service itself (its EKS token, its RBAC);
  the page is opened from file:// and its DOM checked: cells, alice's chain, the refusal, the filters,
  the keyboard, no request and no script but its own. A screenshot is saved under the test's tmp dir
  (``EKS_IAM_SYNC_UPDATE_SCREENSHOT=1`` also writes docs/report.png, the README's).
- 5 000 principals (a synthetic world reconciled on the fakes): the page stays under 2 MB, renders,
  and its filters answer quickly. Figures are printed (``pytest -s``); only generous bounds are asserted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client
from playwright.sync_api import Browser, Page

from chalicelib.entry.accessreport.render import render_html
from chalicelib.entry.cli import main
from tests.conftest import Environment
from tests.harness.browser import ReportPage, Synthetic, chromium, open_report, synthetic_report
from tests.harness.function import cluster_config
from tests.harness.principals import credentials_env
from tests.harness.service import SEED_CLUSTER_ROLE, SEED_GROUP, SEED_NAMESPACES, Service, prepare_seed_cluster

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOT = ROOT / "docs" / "report.png"
KUBERNETES_GROUP = "rbac-bttrm-web-ro-group"
SEED_ROLE = "iam-bttrm-web-ro-role"  # configured in the seed; in IAM once tests/integration/test_cli.py made it
HOSTILE = '<img src=x onerror="document.title=`pwned`">'
MAX_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def ensure_user(name: str) -> str:
    iam = boto3.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=name)
    return str(iam.get_user(UserName=name)["User"]["Arn"])


def map_by_hand(env: Environment, arn: str, username: str, groups: list[str]) -> None:
    """Someone with kubectl adds a mapUsers entry: not the service's (no ledger record)."""
    core = client.CoreV1Api(env.admin())
    current = core.read_namespaced_config_map("aws-auth", "kube-system")
    data = dict(current.data or {})
    data["mapUsers"] = (data.get("mapUsers") or "") + yaml.safe_dump(
        [{"userarn": arn, "username": username, "groups": groups}], default_flow_style=False
    )
    current.data = data
    core.replace_namespaced_config_map("aws-auth", "kube-system", current)


@pytest.fixture
def seed_report(env: Environment, service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The seed scenario's report, written by the CLI running as the service."""
    prepare_seed_cluster(env.plane, service)
    monkeypatch.chdir(tmp_path)  # the report names the configuration as given: eks-iam-sync.yaml
    config = Path("eks-iam-sync.yaml")
    config.write_text(cluster_config(env.plane))
    for name, value in credentials_env(service.principal).items():
        monkeypatch.setenv(name, value)
    iam = boto3.client("iam")
    ensure_user("alice")
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName="alice")
    iam.tag_user(UserName="alice", Tags=[{"Key": "eks-access/kube-system", "Value": "pods-ro"}])
    assert main(["apply", "--config", str(config)]) == 0
    ensure_user("bob")
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName="bob")
    map_by_hand(env, "arn:aws:iam::123456789012:user/mallory", HOSTILE, [KUBERNETES_GROUP])
    output = tmp_path / "access.html"
    started = time.monotonic()
    code = main(["report", "--config", str(config), "--output", str(output)])
    print(f"\nseed report: {output.stat().st_size / 1024:.1f} KiB in {time.monotonic() - started:.2f} s")
    assert code == 0
    yield output
    for name in ("alice", "bob"):
        iam.remove_user_from_group(GroupName=SEED_GROUP, UserName=name)
    iam.untag_user(UserName="alice", TagKeys=["eks-access/kube-system"])


def row_cells(page: Page, name: str) -> dict[str, tuple[str, str]]:
    """namespace -> (class, text) of a principal's non-empty cells."""
    found: dict[str, tuple[str, str]] = page.evaluate(
        """name => {
            const headers = [...document.querySelectorAll('#m thead tr:nth-child(2) th')].map(th => th.textContent);
            const row = [...document.querySelectorAll('#m tbody tr:not(.spacer)')].find(tr => tr.cells[0].dataset.name === name);
            const cells = {};
            [...row.cells].slice(1, -1).forEach((td, i) => { if (td.className) cells[headers[i]] = [td.className.split(' ')[0], td.textContent]; });
            return cells;
        }""",
        name,
    )
    return {k: (v[0], v[1]) for k, v in found.items()}


def shown(page: Page) -> list[str]:
    names: list[str] = page.evaluate(
        "[...document.querySelectorAll('#m tbody tr:not(.spacer)')].map(tr => tr.cells[0].dataset.name)"
    )
    return names


@pytest.mark.cluster
def test_the_seed_scenario_report_in_chromium(browser: Browser, seed_report: Path, tmp_path: Path) -> None:
    opened: ReportPage = open_report(browser, seed_report, width=1280, height=1060)
    page = opened.page
    projects, ns3 = SEED_NAMESPACES[:2], SEED_NAMESPACES[2]

    # The matrix: alice in place in both project namespaces, bob pending, the hand-made mapping a row
    # (and the seed's configured role, when an earlier test of the session created it in IAM); every
    # other mapping aws-auth holds is a row too: the node role's and the service's own.
    rows = shown(page)
    mapped = {"eks-node-group", "eks-iam-sync-function"}
    assert {"alice", "bob", "mallory", *mapped} <= set(rows) <= {"alice", "bob", "mallory", SEED_ROLE, *mapped}
    total = len(rows)
    reaching = len(set(rows) - mapped)  # the service, as the reader, may not list others' bindings
    assert row_cells(page, "alice") == {ns: ("a", SEED_CLUSTER_ROLE) for ns in projects}
    assert row_cells(page, "bob") == {ns: ("p", f"+ {SEED_CLUSTER_ROLE}") for ns in projects}
    assert ns3 not in row_cells(page, "alice")
    footer = page.locator("#m tfoot td").all_text_contents()
    assert footer[:2] == [str(reaching), str(reaching)]
    assert "rbac-unread" in page.locator("#findings-incomplete").inner_text()  # and the page says so

    # alice's chain, on hover: IAM group -> aws-auth -> Kubernetes group -> RoleBinding -> ClusterRole -> verbs
    alice = page.locator("#m tbody tr", has_text="alice").locator("td[data-p]").first
    alice.hover()
    chain = page.locator("#chain-body").inner_text()
    for step in (
        f"IAM group {SEED_GROUP}",
        "aws-auth mapUsers entry",
        f"Kubernetes group {KUBERNETES_GROUP}",
        f"{projects[0]}/eks-iam-sync:group:{KUBERNETES_GROUP}:{SEED_CLUSTER_ROLE} (namespaceGrants[0])",
        SEED_CLUSTER_ROLE,
        "pods: get, list, watch",
    ):
        assert step in chain, chain
    assert "alice" in chain and "arn:aws:iam::123456789012:user/alice" in chain

    # The findings: alice's tag into kube-system refused, with its reason; bob cannot authenticate yet.
    refusals = page.locator("#findings-refusal").inner_text()
    assert "denied-namespace" in refusals and "arn:aws:iam::123456789012:user/alice" in refusals
    assert "kube-system" in refusals
    assert "bob" in page.locator("#findings-cannot-authenticate").inner_text()
    assert "mallory" in page.locator("#findings-foreign").inner_text()
    assert "aws-auth data" in page.locator("#findings-size").inner_text()
    digest = hashlib.sha256(seed_report.with_name("eks-iam-sync.yaml").read_bytes()).hexdigest()
    assert page.locator("#config-sha256").inner_text() == digest

    # Filters: the search box, then the mechanism, then the status; counts follow.
    page.fill("#f-q", "ALI")
    assert shown(page) == ["alice"] and page.locator("#shown").inner_text() == f"1 of {total} principals"
    page.fill("#f-q", "")
    page.select_option("#f-m", "f")
    assert "mallory" in shown(page) and set(shown(page)) <= {"mallory", *mapped}
    page.select_option("#f-m", "")
    page.select_option("#f-s", "p")
    assert shown(page) == ["bob"] and page.locator("#m tfoot td").all_text_contents()[:2] == ["1", "1"]
    page.click("#f-reset")
    page.wait_for_function(f"document.getElementById('shown').textContent === '{total} of {total} principals'")

    # The keyboard: one tab stop into the matrix, arrows between cells, Enter pins the chain.
    page.focus("#m tbody [tabindex='0']")  # the matrix's one tab stop: the first row's header
    page.keyboard.press("ArrowRight")
    focused = page.evaluate("[document.activeElement.tagName, document.activeElement.cellIndex]")
    assert focused == ["TD", 1]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator("#chain.pinned").count() == 1
    page.keyboard.press("Escape")
    assert page.locator("#chain.pinned").count() == 0

    # The hostile username is text: no element, no script ran, nothing was requested.
    assert page.locator("#m img, #findings img").count() == 0
    assert HOSTILE in page.locator("#findings-foreign").inner_text()
    assert opened.dialogs == [] and page.title() != "pwned"
    assert opened.errors == []
    assert [url for url in opened.requests if not url.startswith("file://")] == []

    # The screenshot: alice's chain pinned beside the matrix.
    alice.click()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), clip={"x": 0, "y": 0, "width": 1280, "height": 1060})
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot} ({screenshot.stat().st_size / 1024:.0f} KiB)")
    if os.environ.get("EKS_IAM_SYNC_UPDATE_SCREENSHOT"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)


@pytest.fixture(scope="module")
def large_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Synthetic]:
    world = Synthetic()
    started = time.monotonic()
    report = synthetic_report(world)
    built = time.monotonic() - started
    started = time.monotonic()
    html = render_html(report)
    rendered = time.monotonic() - started
    path = tmp_path_factory.mktemp("large") / "access.html"
    path.write_text(html, encoding="utf-8")
    size = path.stat().st_size
    print(
        f"\n{len(report.principals)} principals x {len(report.columns)} namespaces, {len(report.paths)} paths, "
        f"{len(report.findings)} findings: world and model {built:.1f} s, HTML rendered in {rendered * 1000:.0f} ms, "
        f"{size / 1024 / 1024:.2f} MB ({size / len(report.principals):.0f} bytes per principal)"
    )
    assert len(report.principals) == world.principals
    assert size < MAX_BYTES
    return path, world


def timed(page: Page, action: str, *args: object) -> tuple[float, float, str]:
    """(wall ms to the filtered layout, the filter's own ms, the count shown) for one filter change."""
    result: list[object] = page.evaluate(
        """([action, value]) => {
            const started = performance.now();
            if (action === 'search') {
                const box = document.getElementById('f-q');
                box.value = value;
                box.dispatchEvent(new Event('input'));
            } else {
                const select = document.getElementById(action);
                select.value = value;
                select.dispatchEvent(new Event('change'));
            }
            document.body.getBoundingClientRect();  // style and layout of the filtered table, included
            return [performance.now() - started, window.accessReportFilterMs, document.getElementById('shown').textContent];
        }""",
        [action, *args],
    )
    return float(str(result[0])), float(str(result[1])), str(result[2])


def test_five_thousand_principals_render_and_filter_quickly(
    browser: Browser, large_report: tuple[Path, Synthetic]
) -> None:
    path, world = large_report
    started = time.monotonic()
    opened = open_report(browser, path, height=900)
    page = opened.page
    page.evaluate("document.body.getBoundingClientRect()")
    loaded = time.monotonic() - started
    assert page.evaluate("window.accessReport.rows") == world.principals
    assert page.get_attribute("#m", "aria-rowcount") == str(world.principals + 3)
    drawn = page.evaluate("window.accessReport.drawn()")
    assert drawn < 200  # only the rows in view, and a margin
    assert opened.errors == []
    figures = [f"page ready (parse, {drawn} rows drawn, first layout) in {loaded * 1000:.0f} ms"]
    for label, action, value, expected in (
        ("search 'user-0421'", "search", "user-0421", "10 of"),
        ("search cleared", "search", "", f"{world.principals} of"),
        ("group: the first IAM group", "f-g", "0", None),
        ("group: all", "f-g", "", None),
        ("namespace: the first", "f-n", "0", None),
        ("namespace: all", "f-n", "", f"{world.principals} of"),
        ("status: pending", "f-s", "p", f"{world.new_users} of"),
        ("status: removing", "f-s", "r", f"{world.deleted_users} of"),
        ("status: all", "f-s", "", f"{world.principals} of"),
    ):
        wall, own, count = timed(page, action, value)
        figures.append(f"{label}: {wall:.0f} ms ({own:.0f} ms filtering), {count}")
        if expected:
            assert count.startswith(expected), (label, count)
        assert wall < 3_000, (label, wall)  # generous: typically tens of ms
    # Scrolled to the middle: the rows drawn are the right ones, in their place.
    scrolled: list[object] = page.evaluate(
        """() => new Promise(resolve => {
            const scroller = document.getElementById('scroll');
            const started = performance.now();
            scroller.scrollTop = scroller.scrollHeight / 2;
            requestAnimationFrame(() => requestAnimationFrame(() => {
                const names = JSON.parse(document.getElementById('matrix-data').textContent).rows.map(r => r[0]);
                const drawn = [...document.querySelectorAll('#m tbody tr:not(.spacer)')];
                const misplaced = drawn.filter(tr => names[Number(tr.getAttribute('aria-rowindex')) - 3] !== tr.cells[0].dataset.name);
                resolve([performance.now() - started, drawn.length, misplaced.length, drawn[0].getAttribute('aria-rowindex')]);
            }));
        })"""
    )
    figures.append(f"scrolled to the middle: {float(str(scrolled[0])):.0f} ms, rows from {scrolled[3]} drawn")
    assert scrolled[2] == 0 and int(str(scrolled[3])) > 1000
    print("\n" + "\n".join(figures))
    assert loaded < 30
