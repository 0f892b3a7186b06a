"""The run report and the site in a real browser (headless Chromium through Playwright): no
console error, no request beyond the page itself, every chart drawn, the lineage diffs open on a
click, and a screenshot that is not blank."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from synth import make_run

from evolve.cli import main

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)
if CHROMIUM is None:
    pytest.skip(
        "no chromium on PATH (apt-get install -y --no-install-recommends chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        # Chromium's own sandbox cannot start as root, nor in most containers (no user
        # namespaces); the pages opened are our own script-free files.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, page_file: Path):
    """Open a page; return it with its console errors and every URL it requested."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def _charts_drawn(page) -> int:
    boxes = page.eval_on_selector_all(
        "figure svg",
        "els => els.map(e => { const r = e.getBoundingClientRect(); "
        "return [r.width, r.height, e.querySelectorAll('path, use, text').length]; })",
    )
    assert boxes, "no chart on the page"
    for w, h, marks in boxes:
        assert w > 50 and h > 50 and marks > 10
    return len(boxes)


def _not_blank(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=False)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(str(path))[..., :3]
    non_white = np.mean(pixels.min(axis=2) < 0.9)
    assert pixels.std() > 0.01 and non_white > 0.003  # a blank page has neither


def test_run_report_in_chromium(browser, local_run, tmp_path):
    assert main(["report", str(local_run), "--format", "html"]) == 0
    report = local_run / "report.html"
    page, errors, requests = _open(browser, report)
    assert errors == []
    assert requests == [report.as_uri()]
    assert _charts_drawn(page) >= 6
    step = page.locator("#lineage details.step").last
    assert step.get_attribute("open") is None
    diff = step.locator("pre").first
    assert not diff.is_visible()
    step.locator("summary").first.click()
    assert step.get_attribute("open") is not None
    assert diff.is_visible() and "--- parent" in diff.inner_text()
    # an improvement on the best's lineage links to its step there, in the same page
    improvement = page.locator("#improvements details.step", has=page.locator("a")).last
    improvement.locator("summary").click()
    link = improvement.locator("a")
    target = link.get_attribute("href")
    link.click()
    assert page.url == f"{report.as_uri()}{target}"
    assert page.locator(f"#lineage {target}").is_visible()
    assert page.locator(f"#lineage {target}").evaluate("e => e.getBoundingClientRect().top") < 900
    assert requests == [report.as_uri()] and errors == []
    _not_blank(page, tmp_path / "report.png")
    page.close()


def test_site_in_chromium(browser, local_run, tmp_path):
    root = tmp_path / "runs"
    for seed in range(3):
        make_run(root / f"seed{seed}", n=50, seed=seed)
    shutil.copytree(local_run, root / "local")
    site = tmp_path / "site"
    assert main(["report", str(root), "--format", "html", "-o", str(site)]) == 0
    for page_file in [site / "index.html", *sorted(site.glob("*.html"))]:
        page, errors, requests = _open(browser, page_file)
        assert errors == [] and requests == [page_file.as_uri()]
        if page_file.name != "index.html":
            assert _charts_drawn(page) >= 1
            # each run's own page is linked and opens
            link = page.locator("#leaderboard a").first
            link.click()
            page.wait_for_load_state("load")
            assert "/runs/" in page.url and _charts_drawn(page) >= 6
            # the run page loaded nothing but itself either
            assert requests == [page_file.as_uri(), page.url] and errors == []
        _not_blank(page, tmp_path / f"{page_file.stem}.png")
        page.close()
