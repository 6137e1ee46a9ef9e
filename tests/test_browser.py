"""A real browser against a real server: `streamlit run app.py`, driven by Playwright in Debian's
Chromium. Screenshots land in screenshots/ (gitignored)."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from helpers import product_photo

from fashiongen.app_server import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    RUN_FINISHED,
    free_port,
    start_app,
    stop_app,
    wait_until_serving,
)

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "screenshots"


def chromium_or_skip() -> None:
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


@contextmanager
def serving() -> Iterator[str]:
    """A fresh `streamlit run app.py` server, started as the benchmark starts it; yields its URL."""
    port = free_port()
    process = start_app(port, subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    if not wait_until_serving(url, process, timeout_s=90):
        process.kill()
        pytest.fail(f"streamlit did not start: {process.stdout.read()[-2000:].decode(errors='replace')}")
    try:
        yield url
    finally:
        stop_app(process)


@pytest.fixture(scope="module")
def server():
    chromium_or_skip()
    with serving() as url:
        yield url


@pytest.fixture(scope="module")
def page():
    chromium_or_skip()
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


LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def test_every_request_stays_on_this_machine(server, page) -> None:
    """The app needs no internet: every page's requests (scripts, fonts, icons, the favicon) go to the
    local server. A `:material/...:` page icon made the browser fetch the favicon from fonts.gstatic.com."""
    requests = []

    def record(request) -> None:
        requests.append(request)

    page.on("request", record)
    try:
        for path, text in (("", "Label a product photo"), ("reconstruct", "Reconstruct"), ("generate", "Interpolate"),
                           ("about", "About FashionGen")):
            page.goto(f"{server}/{path}")
            page.get_by_text(text).first.wait_for()
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(500)  # the favicon and icon fonts are set after the first render
    finally:
        page.remove_listener("request", record)
    urls = [request.url for request in requests]
    assert any(urlsplit(url).path.endswith(".js") for url in urls), urls  # the listener saw the page load
    off_host = [url for url in urls if urlsplit(url).scheme not in ("data", "blob")
                and urlsplit(url).hostname not in LOCAL_HOSTS]
    assert off_host == []


def test_file_names_show_as_written(server, page) -> None:
    """An upload named like Markdown is shown as written in its error and its caption, not bold or red."""
    name = "**BOLD** :red[x] `tick`.jpg"
    page.goto(server)
    page.get_by_text("Label a product photo").wait_for()
    uploader = page.locator("input[type=file]")
    uploader.set_input_files(files=[{"name": name, "mimeType": "image/jpeg", "buffer": b"not pixels" * 10}])
    error = page.get_by_test_id("stAlertContentError")
    error.wait_for()
    assert error.inner_text().startswith(f"{name} is not an image format"), error.inner_text()
    assert error.locator("strong").count() == 0
    page.goto(server)  # a new session
    uploader.set_input_files(files=[{"name": name, "mimeType": "image/jpeg", "buffer": product_photo()}])
    caption = page.get_by_test_id("stImageCaption")
    caption.wait_for()
    assert caption.inner_text() == f"{name} as the model sees it (60x80)"
    assert caption.locator("strong").count() == 0


def test_a_fresh_servers_first_page_lists_the_page_titles(page) -> None:
    """The first script run of a new server, reached straight at /generate, shows st.navigation's pages.
    With the page scripts in a folder named pages/ beside app.py, Streamlit ran that first run as an
    old-style multipage app: the sidebar listed the file names (app, about, generate, label,
    reconstruct) and the tab said "generate", until the user's next click."""
    with serving() as url:
        page.goto(f"{url}/generate")
        page.get_by_text("Interpolate").wait_for()
        page.wait_for_function(RUN_FINISHED)
        names = page.locator("[data-testid='stSidebarNavLink'] [data-testid='stMarkdownContainer']").all_inner_texts()
        assert names == ["Label", "Reconstruct", "Generate", "About"]
        assert page.title() == "FashionGen"
