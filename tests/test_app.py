"""The Streamlit app starts and renders its home page (AppTest runs the real script)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]


def test_home_page_renders(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert app.title[0].value == "FashionGen"
    assert any("download_data.py" in m.value or "Dataset found" in m.value for m in [*app.info, *app.success])
