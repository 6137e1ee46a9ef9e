"""The app with a missing or corrupt model: that page explains how to retrain, the other pages work.

The model folders come from FASHIONGEN_CLASSIFIER_DIR / FASHIONGEN_GENERATOR_DIR (webapp.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import streamlit as st
from helpers import assert_probability_chart, new_app, product_photo
from streamlit.testing.v1 import AppTest

from fashiongen.generator.generator import CONFIG_FILE, DECODER_FILE
from fashiongen.labeler.labeler import MODEL_FILE
from fashiongen.model_folder import CARD_FILE, GENERATOR, LABELER, SCHEMA_FILE

CLASSIFIER_RETRAIN = "Retrain it with: python scripts/train_classifier.py --data-dir data/fashion-small --out {}"
GENERATOR_RETRAIN = "Retrain it with: python scripts/train_generator.py --data-dir data/fashion-small --out {}"


@pytest.fixture(autouse=True)
def fresh_model_cache():
    """Models cached by earlier tests must not stand in for the folders these tests name."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def page(monkeypatch, path: str | None = None) -> AppTest:
    app = new_app(monkeypatch)
    app.run()
    if path:
        app.switch_page(path).run()
    assert not app.exception, app.exception
    return app


def errors(app: AppTest) -> list[str]:
    return [error.value for error in app.error]


def only_error(app: AppTest) -> str:
    assert len(app.error) == 1, errors(app)
    return app.error[0].value


def assert_labels_an_upload(monkeypatch) -> None:
    app = page(monkeypatch)
    app.file_uploader[0].set_value(("photo.jpg", product_photo(), "image/jpeg")).run()
    assert not app.exception and errors(app) == []
    assert {metric.label for metric in app.metric} == {"Sub-category", "Gender"}
    assert_probability_chart(app, {metric.label: metric.value for metric in app.metric})


def assert_generates(monkeypatch) -> None:
    app = page(monkeypatch, "app_pages/generate.py")
    assert errors(app) == []
    assert len(app.get("image")) == 2  # the grid and the interpolation
    assert len(app.get("download_button")) == 1


def test_missing_generator(monkeypatch, tmp_path: Path) -> None:
    empty = tmp_path / "no-generator"
    empty.mkdir()
    monkeypatch.setenv("FASHIONGEN_GENERATOR_DIR", str(empty))
    problem = f"{empty / 'encoder.keras'} is missing. {GENERATOR_RETRAIN.format(empty)}"
    for path, title in (("app_pages/generate.py", "Generate"), ("app_pages/reconstruct.py", "Reconstruct")):
        app = page(monkeypatch, path)
        assert app.title[0].value == title
        assert errors(app) == [f"The generator cannot be loaded: {problem}"]
        assert len(app.get("image")) == 0 and len(app.file_uploader) == 0  # the page stopped after the message
    assert_labels_an_upload(monkeypatch)
    about = page(monkeypatch, "app_pages/about.py")
    assert about.title[0].value == "About FashionGen"
    assert errors(about) == [problem]
    assert len(about.table) + len(about.dataframe) >= 1  # the labeler's card still shows


def test_corrupt_classifier(monkeypatch, tmp_path: Path) -> None:
    folder = tmp_path / "classifier"
    folder.mkdir()
    (folder / MODEL_FILE).write_bytes(os.urandom(4096))
    for name in (SCHEMA_FILE, CARD_FILE):
        shutil.copy(LABELER.shipped / name, folder / name)
    monkeypatch.setenv("FASHIONGEN_CLASSIFIER_DIR", str(folder))
    prefix = f"The labeler cannot be loaded: {folder / 'classifier.keras'} is corrupt or not a Keras model ("
    suffix = f"). {CLASSIFIER_RETRAIN.format(folder)}"
    for path in (None, "app_pages/reconstruct.py"):  # the Label page, and Reconstruct (it labels to condition)
        app = page(monkeypatch, path)
        message = only_error(app)
        assert message.startswith(prefix) and message.endswith(suffix), message
        assert len(app.file_uploader) == 0 and len(app.metric) == 0
    assert_generates(monkeypatch)
    assert len(page(monkeypatch, "app_pages/about.py").error) == 1


def test_truncated_decoder(monkeypatch, tmp_path: Path) -> None:
    folder = tmp_path / "generator"
    shutil.copytree(GENERATOR.shipped, folder)
    decoder = folder / DECODER_FILE
    decoder.write_bytes(decoder.read_bytes()[: decoder.stat().st_size // 2])
    monkeypatch.setenv("FASHIONGEN_GENERATOR_DIR", str(folder))
    message = only_error(page(monkeypatch, "app_pages/generate.py"))
    assert message.startswith(f"The generator cannot be loaded: {decoder} is corrupt or not a Keras model ("), message
    assert message.endswith(f"). {GENERATOR_RETRAIN.format(folder)}"), message
    assert_labels_an_upload(monkeypatch)


def generator_arch_on_about_page(monkeypatch) -> str:
    about = page(monkeypatch, "app_pages/about.py")
    texts = [markdown.value for markdown in about.markdown if markdown.value.startswith("Architecture **")]
    assert len(texts) == 2, texts  # labeler, generator
    return texts[1].split("**")[1]


def test_the_folder_is_part_of_the_cache_key(monkeypatch) -> None:
    """A cached model of one folder never answers for another: switch folders without clearing the cache."""
    assert generator_arch_on_about_page(monkeypatch) == "vaegan"  # the shipped default generator
    monkeypatch.setenv("FASHIONGEN_GENERATOR_DIR", str(GENERATOR.shipped.parent / "generator-paper"))
    assert generator_arch_on_about_page(monkeypatch) == "paper"
    monkeypatch.delenv("FASHIONGEN_GENERATOR_DIR")
    assert generator_arch_on_about_page(monkeypatch) == "vaegan"


def test_classifier_card_that_is_not_an_object(monkeypatch, tmp_path: Path) -> None:
    """model_card.json = [1, 2] crashed the About page (card.get on a list); now the labeler fails to load."""
    folder = shutil.copytree(LABELER.shipped, tmp_path / "classifier")
    (folder / CARD_FILE).write_text("[1, 2]")
    monkeypatch.setenv("FASHIONGEN_CLASSIFIER_DIR", str(folder))
    problem = f"{folder / CARD_FILE} holds a list, not a JSON object. {CLASSIFIER_RETRAIN.format(folder)}"
    about = page(monkeypatch, "app_pages/about.py")
    assert errors(about) == [problem]
    assert [m.value for m in about.markdown if m.value.startswith("Architecture **vaegan**")]  # the generator's card
    assert only_error(page(monkeypatch)) == f"The labeler cannot be loaded: {problem}"
    assert_generates(monkeypatch)


def test_generator_json_that_is_not_an_object(monkeypatch, tmp_path: Path) -> None:
    """generator.json = [1] crashed the Generate, Reconstruct and About pages; now they say what to do."""
    folder = shutil.copytree(GENERATOR.shipped, tmp_path / "generator")
    (folder / CONFIG_FILE).write_text("[1]")
    monkeypatch.setenv("FASHIONGEN_GENERATOR_DIR", str(folder))
    problem = f"{folder / CONFIG_FILE} holds a list, not a JSON object. {GENERATOR_RETRAIN.format(folder)}"
    for path in ("app_pages/generate.py", "app_pages/reconstruct.py"):
        app = page(monkeypatch, path)
        assert only_error(app) == f"The generator cannot be loaded: {problem}"
        assert len(app.get("image")) == 0
    assert errors(page(monkeypatch, "app_pages/about.py")) == [problem]
    assert_labels_an_upload(monkeypatch)
