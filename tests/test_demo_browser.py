"""The demo in a real headless Chromium: type a query, click Search, see both galleries fill; an error shows as a toast."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_demo_support import QUERY, launch_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_ENV = "EVDSEARCH_DEMO_SCREENSHOT"  # also save the screenshot here (e.g. docs/demo.png)
K = 8

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def url(local: Any) -> str:
    app, address = launch_app(local, k=K)
    yield address
    app.close()


@pytest.fixture(scope="module")
def page(url: str) -> Any:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)  # two shared CPU cores: encoding and first paint can be slow
        page.goto(url)
        yield page
        browser.close()


def _loaded_images(gallery: str) -> str:
    return f"[...document.querySelectorAll('{gallery} img')].filter(i => i.complete && i.naturalWidth > 0).length"


def test_typing_a_query_and_clicking_search_fills_both_galleries(page: Any, tmp_path: Path) -> None:
    page.locator("#query textarea").fill(QUERY)
    page.locator("#search-button").click()
    page.wait_for_function(f"{_loaded_images('#ranked-gallery')} >= {K} && {_loaded_images('#original-gallery')} >= {K}")
    captions = page.locator("#ranked-gallery .caption-label").all_inner_texts()
    assert len(captions) == K and captions[0].startswith("#1 fused ") and "orig " in captions[0]
    entities = page.locator("#entities").inner_text()
    assert "tomatoes" in entities and "school bus" in entities
    assert page.locator("#rewritten textarea").input_value().startswith(QUERY + ", tomato which is")
    assert "a red round fruit" in page.locator("#descriptions").inner_text()
    assert "Traceback" not in page.content()
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])


def test_an_empty_query_shows_an_error_message_not_a_traceback(page: Any) -> None:
    page.locator("#query textarea").fill("")
    page.locator("#search-button").click()
    page.get_by_text("type a query or upload an image to search with").first.wait_for()
    assert "Traceback" not in page.content()


def test_uploading_an_image_searches_by_image(page: Any, parts: tuple[Path, Path]) -> None:
    page.locator("#query textarea").fill("")
    page.locator("#query-image input[type=file]").set_input_files(str(parts[0].parent / "data" / "images" / "005.png"))
    page.locator("#query-image img").first.wait_for()  # the upload finished and shows a preview
    page.locator("#search-button").click()
    page.get_by_text("image query: nothing to rewrite").first.wait_for()
    page.wait_for_function(f"{_loaded_images('#ranked-gallery')} >= {K}")
    assert page.locator("#rewritten textarea").input_value() == "(image query: not rewritten)"
    first = page.locator("#ranked-gallery .caption-label").first.inner_text()
    assert "picture number 5" in first  # the indexed copy of the uploaded image ranks first
