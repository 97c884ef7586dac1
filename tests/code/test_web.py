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
    page.fill("#author", "pg")
    page.fill("#time", "2016-09-20T14:30")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=15_000)

    assert re.fullmatch(r"\d+", page.inner_text("#score"))
    assert re.fullmatch(r"[<>]?\d+%", page.inner_text("#percentile"))
    words = page.locator("#words li .token").all_inner_texts()
    # whole words, never SentencePiece's raw pieces or their marker
    assert "word2vec" in words and not any("\u2581" in w for w in words)
    assert page.locator("#words .bar").count() == len(words)
    factors = page.inner_text("#factors")
    for factor in ("domain history", "author history", "time", "title form"):
        assert factor in factors
    assert "2016-09-20 14:30 UTC" in factors and "Show HN" in factors
    assert page.is_hidden("#error")
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)


def test_an_empty_title_shows_the_error(page, live_server):
    page.goto(live_server + "/")
    # the browser's own `required` check would stop an empty submit; spaces get to the server
    page.fill("#title", "   ")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=15_000)
    assert "title" in page.inner_text("#error")


def test_an_error_clears_the_previous_answer(page, live_server):
    page.goto(live_server + "/")
    page.fill("#title", "Ask HN: How do you learn?")
    page.check("#no-url")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=15_000)
    assert "no url (a text post)" in page.inner_text("#factors")
    page.fill("#title", "   ")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=15_000)
    assert page.is_hidden("#result")
