"""The Streamlit app: every page renders through AppTest (the real scripts, the shipped models)."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(monkeypatch) -> AppTest:
    monkeypatch.chdir(REPO)
    return AppTest.from_file(str(REPO / "app.py"), default_timeout=120)


def test_label_page_is_the_default(app: AppTest) -> None:
    app.run()
    assert not app.exception
    assert app.title[0].value == "Label a product photo"
    assert any("Upload one photo" in info.value for info in app.info)


@pytest.mark.parametrize("page, title", [("pages/about.py", "About FashionGen"), ("pages/generate.py", "Generate"),
                                         ("pages/reconstruct.py", "Reconstruct")])
def test_every_page_renders(app: AppTest, page: str, title: str) -> None:
    app.run()
    app.switch_page(page).run()
    assert not app.exception
    assert app.title[0].value == title
