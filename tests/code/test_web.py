"""The web page in headless Chromium against a real `upvote serve`: load, submit, see a number."""

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}"),
]


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 900, "height": 900})
        finally:
            browser.close()


def test_submit_a_title_and_see_a_prediction(page, live_server, tmp_path):
    page.goto(live_server + "/")
    assert "upvote" in page.title()
    page.fill("#title", "Show HN: I wrote word2vec from scratch in PyTorch")
    page.fill("#url", "https://github.com/example/word2vec")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=15_000)

    assert re.fullmatch(r"\d+", page.inner_text("#score"))
    assert re.fullmatch(r"\d+%", page.inner_text("#percentile"))
    tokens = page.locator("#tokens li")
    assert tokens.count() > 0
    assert page.locator("#tokens .bar").count() == tokens.count()
    assert page.is_hidden("#error")
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)


def test_an_empty_title_shows_the_error(page, live_server):
    page.goto(live_server + "/")
    # the browser's own `required` check would stop an empty submit; spaces get to the server
    page.fill("#title", "   ")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=15_000)
    assert "title" in page.inner_text("#error")
