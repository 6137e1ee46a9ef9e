"""A real browser against a real server: `streamlit run app.py`, driven by Playwright in Debian's
Chromium. Screenshots land in screenshots/ (gitignored)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from test_train_generator import load_script

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "screenshots"
# the benchmark's app section starts the same server in the same Chromium
benchmark = load_script(REPO / "scripts" / "benchmark.py")
CHROMIUM, CHROMIUM_FLAGS = benchmark.CHROMIUM, benchmark.CHROMIUM_FLAGS


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    port = benchmark.free_port()
    process = benchmark.start_app(port, subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start: {process.stdout.read()[-2000:].decode(errors='replace')}")
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        yield page
        browser.close()


def test_label_a_real_photo(server, page, shared_data: Path) -> None:
    page.goto(server)
    page.get_by_text("Label a product photo").wait_for()
    page.locator("input[type=file]").set_input_files(str(shared_data / "images" / "15970.jpg"))
    page.get_by_text("Sub-category").first.wait_for()
    page.get_by_text("Topwear").first.wait_for()  # styles.csv: a men's shirt
    page.get_by_text("Men", exact=True).first.wait_for()
    page.screenshot(path=str(SCREENSHOTS / "label.png"), full_page=True)


def test_generate_a_grid(server, page) -> None:
    page.goto(f"{server}/generate")
    page.get_by_text("Interpolate").wait_for()
    grid = page.locator("[data-testid='stImage'] img").first
    grid.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll(\"[data-testid='stImage'] img\")]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    assert grid.evaluate("img => img.naturalWidth") > 100  # a rendered grid, not a broken image
    page.screenshot(path=str(SCREENSHOTS / "generate.png"), full_page=True)
