"""The access report's page in headless Chromium (issue 23, item 5): printed to PDF, a 30-namespace
report contains every namespace; the cluster filter; a filter brings its column into view; the
keyboard keeps the focused cell on screen in a long matrix; a phone does not scroll sideways; with
scripts off, a summary is readable."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pypdf  # reads the printed PDF's text (requirements-dev)
import pytest
from playwright.sync_api import Browser, Page

from chalicelib.entry.accessreport.render import render_html
from tests.harness.browser import (
    SYNTHETIC_CLUSTER,
    Synthetic,
    chromium,
    open_report,
    synthetic_report,
    two_cluster_report,
)

THIRTY = Synthetic(users=120, roles=20, permission_set_roles=4, groups=20, namespaces=30, new_users=4, deleted_users=2)
LONG = Synthetic(users=900, roles=40, permission_set_roles=4, groups=20, namespaces=30, new_users=4, deleted_users=2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def thirty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("thirty") / "access.html"
    path.write_text(render_html(synthetic_report(THIRTY)))
    return path


def shown(page: Page) -> list[str]:
    names: list[str] = page.evaluate(
        "[...document.querySelectorAll('#m tbody tr:not(.spacer)')].map(tr => tr.cells[0].dataset.name)"
    )
    return names


def test_the_printed_pdf_holds_every_namespace(browser: Browser, thirty: Path, tmp_path: Path) -> None:
    opened = open_report(browser, thirty)
    pdf = opened.page.pdf(format="A4", landscape=True, print_background=True)
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    # each namespace as a header of the printed matrix ("<namespace> · <cluster>"), not only in the
    # list of paths further down
    namespaces = [f"team-ns-{n:02d}" for n in range(THIRTY.namespaces)]
    flowing = " ".join(text.split())
    missing = [ns for ns in namespaces if f"{ns} · {SYNTHETIC_CLUSTER}" not in flowing]
    assert missing == [], f"{len(missing)} of {len(namespaces)} namespaces not printed"
    assert "Namespaces 25" in text and "of 30" in text  # the last printed part says where it is
    assert "user-00119" in text and "service-0019" in text  # rows of every kind
    (tmp_path / "access.pdf").write_bytes(pdf)
    print(f"\nprinted: {len(pypdf.PdfReader(io.BytesIO(pdf)).pages)} pages, {len(pdf) / 1024:.0f} KiB")


def test_a_namespace_filter_brings_its_column_into_view(browser: Browser, thirty: Path) -> None:
    page = open_report(browser, thirty, width=1100).page
    last = page.locator("#m thead tr:nth-child(2) th").count() - 1
    page.select_option("#f-n", str(last))
    inside = page.evaluate(
        """n => {
            const box = document.getElementById('scroll').getBoundingClientRect();
            const th = document.querySelectorAll('#m thead tr:nth-child(2) th')[n].getBoundingClientRect();
            return th.left >= box.left && th.right <= box.right + 1;
        }""",
        last,
    )
    assert inside
    assert shown(page)  # rows that reach it, drawn


def test_the_keyboard_keeps_the_focused_cell_on_screen_in_a_long_matrix(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "access.html"
    path.write_text(render_html(synthetic_report(LONG)))
    page = open_report(browser, path, height=800).page
    assert page.evaluate("window.accessReport.rows") > 400  # drawn around the view, not all at once
    page.focus("#m tbody [tabindex='0']")
    page.keyboard.press("ArrowRight")
    for presses in range(1, 121):
        page.keyboard.press("ArrowDown")
        if presses % 20:
            continue
        on_screen = page.evaluate(
            """() => {
                const box = document.getElementById('scroll').getBoundingClientRect();
                const cell = document.activeElement.getBoundingClientRect();
                return document.activeElement.tagName === 'TD' && cell.top >= box.top && cell.bottom <= box.bottom + 1;
            }"""
        )
        assert on_screen, f"focus off screen after {presses} presses"
    index = page.evaluate("Number(document.activeElement.parentNode.getAttribute('aria-rowindex'))")
    assert index == 3 + 120  # the header rows, then the 121st principal


def test_the_cluster_filter(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "access.html"
    path.write_text(render_html(two_cluster_report()))
    page = open_report(browser, path).page
    everyone = shown(page)
    page.select_option("#f-c", "fn-east")
    east = shown(page)
    assert "alice" in east and len(east) <= len(everyone)
    counts = page.locator("#m tfoot td").all_text_contents()
    clusters = page.evaluate("[...document.querySelectorAll('#m thead tr:nth-child(2) th')].map(th => th.dataset.c)")
    assert all(counts[i] == "0" for i, c in enumerate(clusters) if c == "fn-west")
    assert any(counts[i] != "0" for i, c in enumerate(clusters) if c == "fn-east")


def test_a_phone_does_not_scroll_sideways(browser: Browser, thirty: Path) -> None:
    page = open_report(browser, thirty, width=390, height=844).page
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def test_with_scripts_off_a_summary_is_readable(browser: Browser, thirty: Path) -> None:
    page = browser.new_page(java_script_enabled=False)
    page.goto(thirty.resolve().as_uri())
    summary = page.locator("table.summary").inner_text()
    for n in range(THIRTY.namespaces):
        assert f"team-ns-{n:02d}" in summary
    page.close()


def test_a_cluster_label_stays_in_view_while_its_namespaces_scroll(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "access.html"
    path.write_text(render_html(two_cluster_report()))
    page = open_report(browser, path, width=640).page
    east = page.evaluate("document.querySelector('#m thead th.cl').getBoundingClientRect().width")
    page.evaluate(f"document.getElementById('scroll').scrollLeft = {int(east) // 2}")  # half of fn-east gone
    where = page.evaluate(
        """() => {
            const corner = document.querySelector('#m .corner').getBoundingClientRect();
            const label = document.querySelector('#m thead th.cl span').getBoundingClientRect();
            const cell = document.querySelector('#m thead th.cl').getBoundingClientRect();
            return [corner.right, label.left, cell.left];
        }"""
    )
    corner_right, label_left, cell_left = where
    assert cell_left < corner_right  # the column group starts under the principal column
    assert label_left >= corner_right  # and its label is beside it, readable
