"""Take the README's demo screenshot: a running `evdsearch demo`, one query typed and searched in headless Chromium.

Usage: python scripts/demo_screenshot.py --url http://127.0.0.1:7860 --query "..." --out docs/demo.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, as in the browser test
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--query", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/demo.png"))
    parser.add_argument("--hits", type=int, default=8, help="wait until this many hits show in both galleries")
    args = parser.parse_args()
    loaded = "[...document.querySelectorAll('{} img')].filter(i => i.complete && i.naturalWidth > 0).length"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(args.url)
        page.locator("#query textarea").fill(args.query)
        page.locator("#search-button").click()
        page.wait_for_function(f"{loaded.format('#ranked-gallery')} >= {args.hits} && "
                               f"{loaded.format('#original-gallery')} >= {args.hits}")
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()
