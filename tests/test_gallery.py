"""The onboarding gallery in real headless Chromium (Debian's), driven by Playwright, and docs/templates.md."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cells.model import Cell
from chat_template_harness.models.rules import Think
from chat_template_harness.outputs import gallery, golden, overview

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts"
QWEN3_OFF = Cell("qwen3-8b", Think.OFF, "single_turn")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    gallery.build(out, REPO / "goldens")
    return out


def test_every_cell_has_a_page_and_the_index_links_them_all(site: Path):
    index = (site / "index.html").read_text("utf-8")
    for cell in cellmodel.cells():
        page = f"cells/{cell.model}/think-{cell.think}/{cell.fixture}.html"
        assert f'href="{page}"' in index and (site / page).is_file()
    assert "<script" not in index and "http" not in index  # works from file://, fetches nothing


def test_a_stale_golden_stops_the_build(tmp_path: Path):
    goldens = tmp_path / "goldens"
    shutil.copytree(REPO / "goldens", goldens)
    path = golden.path_for(goldens, QWEN3_OFF)
    path.write_text(path.read_text("utf-8").replace("[785]", "[786]"), "utf-8")
    with pytest.raises(
        Exception, match="qwen3-8b/think-off/single_turn: golden differs.*fix: see what changed and why with `cth diff`"
    ):
        gallery.build(tmp_path / "site", goldens)


def test_docs_templates_md_is_current(cth_run):
    results = [cth_run(c) for c in cellmodel.cells()]
    committed = (REPO / "docs" / "templates.md").read_text("utf-8")
    assert committed == overview.templates_markdown(results), "regenerate: nox -s docs"


def _golden_trained_text(cell: Cell) -> list[str]:
    """The ⟦trained⟧ runs of each sample, read from the committed golden's marked text."""
    body = golden.parse(golden.path_for(REPO / "goldens", cell).read_text("utf-8")).body
    texts = re.findall(r"--- text [^\n]*\n(.*?)\n--- spans", body, re.S)
    return ["".join(re.findall(r"⟦(.*?)⟧", t.replace("\n┆", ""), re.S)) for t in texts]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is missing: apt-get install chromium chromium-driver (scripts/setup does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Never `playwright install`: it downloads a browser. Debian's, with the flags a closed network needs.
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.mark.browser
def test_index_to_a_qwen3_think_off_cell_shows_the_golden_trained_text_and_the_injected_empty_think(
    site: Path, browser
):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((site / "index.html").as_uri())
    assert page.title() == "chat-template-harness gallery"
    page.click('a[href="cells/qwen3-8b/think-off/single_turn.html"]')
    assert page.title() == QWEN3_OFF.id

    trained = page.eval_on_selector_all(
        "pre.sample",
        "samples => samples.map(s => Array.from(s.querySelectorAll('.trained')).map(t => t.textContent).join(''))",
    )
    assert trained == _golden_trained_text(QWEN3_OFF) == ["The capital of France is Paris.<|im_end|>"]

    empty = page.locator('[data-kind="empty_think"]')
    assert "".join(empty.all_text_contents()) == "<think>↵\n↵\n</think>↵\n↵\n"
    assert all(e.get_attribute("data-injected") == "true" for e in empty.all())
    assert page.locator('[data-kind="empty_think"].trained').count() == 0
    assert "empty think, injected by the template (not trained)" in page.locator('[data-testid="legend"]').inner_text()
    assert "id 151667" in (empty.first.get_attribute("title") or "")  # <think>: boundary and id on hover
    assert "sha256 chat template: a55ee1b16601" in page.locator('[data-testid="provenance"]').inner_text()

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "gallery-qwen3-think-off-single_turn.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
def test_compare_and_family_pages_render(site: Path, browser):
    page = browser.new_page()
    page.goto((site / "compare" / "single_turn.html").as_uri())
    cards = page.locator(".card")
    assert cards.count() == len(cellmodel.cells(fixtures=["single_turn"]))
    page.click('nav a[href="../families/deepseek-v3.1.html"]')
    text = page.inner_text("body")
    assert "The generation prompt ends with '</think>'" in text and "never trained" in text


# --- conformance: which framework trains what ------------------------------------------------------------------------

CONFORMANCE_SUBSET = {
    "reference": "chat_template_harness.examples.reference:preprocess",
    "naive": "chat_template_harness.examples.naive:preprocess",
    "specforge qwen3-thinking": "chat_template_harness.frameworks.specforge:qwen3_thinking",
}


@pytest.fixture(scope="module")
def conformance_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chat_template_harness.outputs import conformance

    out = tmp_path_factory.mktemp("conformance-site")
    columns = conformance.run(cellmodel.cells(["qwen3-8b", "qwen2.5-7b"]), CONFORMANCE_SUBSET)
    gallery.build(out, REPO / "goldens", conformance=columns)
    return out


@pytest.mark.browser
@pytest.mark.specforge
def test_the_conformance_page_links_each_failure_to_its_violations(conformance_site: Path, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((conformance_site / "index.html").as_uri())
    page.click('a[href="conformance.html"]')
    grid = page.locator('[data-testid="conformance"]')
    assert grid.locator("tr").first.inner_text().split("\t")[1:] == list(CONFORMANCE_SUBSET)
    row = grid.locator("tr", has=page.locator('a[href="cells/qwen3-8b/think-off/single_turn.html"]'))
    assert [td.get_attribute("data-status") for td in row.locator("td").all()] == ["pass", "fail", "fail"]
    assert grid.locator('td[data-status="fail"]').count() > 0 and grid.locator('td[data-status="na"]').count() > 0
    row.locator("td").nth(2).locator("a").click()
    assert page.url.endswith("conformance/specforge-qwen3-thinking.html#qwen3-8b--think-off--single_turn")
    section = page.locator("h2#qwen3-8b--think-off--single_turn + pre")
    assert "4 trained token(s) are an empty think block" in section.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto((conformance_site / "conformance.html").as_uri())
    page.screenshot(path=str(ARTIFACTS / "gallery-conformance.png"), full_page=False)


@pytest.mark.trl
@pytest.mark.specforge
@pytest.mark.slow
def test_docs_conformance_md_is_current():
    from chat_template_harness.outputs import conformance

    cells = cellmodel.cells()
    committed = (REPO / "docs" / "conformance.md").read_text("utf-8")
    assert committed == conformance.markdown(conformance.run(cells), cells), "regenerate: nox -s docs"
