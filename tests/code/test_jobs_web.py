"""The jobs page in headless Chromium against a real jobs API (uvicorn) and a real worker:
a token, an uploaded corpus trains with a live progress bar, its vectors download and load in
gensim, nearest words show; a bad option and a refused URL show their reasons."""

from __future__ import annotations

import re

import pytest

# the fixtures db and service (a real PostgreSQL, uvicorn and a worker) come from the API tests
from test_jobs_api import corpus_bytes, db, gensim_models, new_token, service, word  # noqa: F401
from test_web import CHROMIUM, page  # noqa: F401  (the headless Chromium page fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}"),
]


def test_upload_watch_download_and_find_neighbours(page, service, db, tmp_path):  # noqa: F811
    url, _ = service
    token = new_token(db[0], "web")["Authorization"].removeprefix("Bearer ")
    corpus = tmp_path / "topics.txt"
    corpus.write_bytes(corpus_bytes(200_000, seed=3))
    page.goto(url + "/")
    assert page.title() == "upvote embeddings"
    page.fill("#token", token)
    page.click("#save-token")

    # a bad option: the API's 422 names the field
    page.set_input_files("#file", str(corpus))
    page.fill("#dim", "0")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "options.dim" in page.inner_text("#error")

    # a real job: live progress, then downloads
    page.set_input_files("#file", str(corpus))
    page.fill("#dim", "16")
    page.fill("#epochs", "4")
    page.fill("#min_count", "1")
    page.click("#submit")
    page.wait_for_selector("tr.job", timeout=10_000)
    assert page.is_hidden("#error")
    job_id = page.get_attribute("tr.job", "data-id")
    fractions = set()
    for _ in range(600):  # the bar moves while it trains (the page polls every second)
        state = page.inner_text(f"tr[data-id='{job_id}'] td.state")
        fractions.add(page.eval_on_selector(f"tr[data-id='{job_id}'] progress", "b => b.value"))
        if state in ("succeeded", "failed"):
            break
        page.wait_for_timeout(100)
    assert state == "succeeded", page.inner_text(f"tr[data-id='{job_id}']")
    assert 1.0 in fractions and len(fractions) >= 2, fractions
    assert re.search(r"words/s", page.inner_text(f"tr[data-id='{job_id}'] .detail"))
    for fmt, binary in (("txt", False), ("bin", True)):
        with page.expect_download() as download:
            page.click(f"tr[data-id='{job_id}'] button.download-{fmt}")
        path = tmp_path / f"vectors.{fmt}"
        download.value.save_as(path)
        vectors = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
        assert len(vectors) == 20 * 26 and vectors.vector_size == 16

    page.fill("#similar-job", job_id)
    page.fill("#similar-word", word(3, 1))
    page.click("#similar-submit")
    page.wait_for_selector("#similar li")
    neighbours = page.locator("#similar li").all_inner_texts()
    assert len(neighbours) == 10 and sum(n.startswith("td") for n in neighbours) >= 5

    # a URL the fetcher refuses: the job fails with the reason, shown in its row
    page.fill("#url", "http://10.0.0.1/corpus.txt")
    page.click("#submit")
    refused = page.locator("tr.job", has_text="10.0.0.1")
    refused.locator("td.state", has_text="failed").wait_for(timeout=30_000)
    assert "not a public address" in refused.inner_text()
    page.screenshot(path=str(tmp_path / "jobs-page.png"), full_page=True)
