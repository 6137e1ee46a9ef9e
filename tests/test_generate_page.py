"""The Generate and Reconstruct pages' generator box and the Generate page's colour control, through
AppTest with real (tiny, untrained) models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from helpers import new_app
from PIL import Image
from streamlit.testing.v1 import AppTest

import webapp
from fashiongen.generator.cvae import build_generator
from fashiongen.generator.generator import COLOUR, Generator
from fashiongen.model_folder import GENERATOR_VARIANTS, LABELER, Variant
from fashiongen.schema import LabelSchema

COLOURS = ("Black", "White")
PAPER = {variant.name: variant for variant in GENERATOR_VARIANTS}["paper"].folder  # 25 columns, no colour


def tiny_generator(folder: Path, extra: tuple = (), schema: LabelSchema | None = None) -> Path:
    """An untrained conv generator (random weights, so each condition column changes the pixels), of
    the shipped labeler's sub-categories and genders unless `schema` says otherwise."""
    pairs = LABELER.open(LABELER.shipped).schema()
    schema = schema or LabelSchema(pairs.sub_categories, pairs.genders, extra)
    model = build_generator("conv", schema.size, latent_dim=16)
    Generator(model.encoder, model.decoder, schema, "conv").save(folder)
    return folder


@pytest.fixture(scope="module")
def colour_generator(tmp_path_factory) -> Path:
    return tiny_generator(tmp_path_factory.mktemp("colour") / "generator", ((COLOUR, COLOURS),))


@pytest.fixture
def drawn(monkeypatch) -> list[bytes]:
    """Every grid PNG the Generate page shows, in order; the picture cache starts empty."""
    pngs: list[bytes] = []
    original = webapp.generated_png
    monkeypatch.setattr(webapp, "generated_png", lambda *a, **k: pngs.append(original(*a, **k)) or pngs[-1])
    st.cache_data.clear()
    return pngs


def page(monkeypatch, folder: Path | None, script: str = "app_pages/generate.py") -> AppTest:
    """A page served with the default generator in `folder` (None: the shipped one)."""
    if folder is None:
        monkeypatch.delenv(webapp.GENERATOR_DIR_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(webapp.GENERATOR_DIR_VARIABLE, str(folder))
    app = new_app(monkeypatch)
    app.run()
    app.switch_page(script).run()
    assert not app.exception and not app.error
    return app


def box(app: AppTest, label: str):
    (found,) = [selectbox for selectbox in app.selectbox if selectbox.label == label]
    return found


def labels(app: AppTest) -> list[str]:
    return [selectbox.label for selectbox in app.selectbox]


def shown(app: AppTest, index: int):
    """The `index`-th picture on the page: its caption and URL (named by a hash of its bytes)."""
    return app.get("image")[index].proto.imgs[0]


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def choose(app: AppTest, label: str, value: str) -> AppTest:
    box(app, label).set_value(value)
    app.run()
    assert not app.exception and not app.error
    return app


def test_the_colour_box_is_there_only_with_colour_control(monkeypatch, colour_generator) -> None:
    app = page(monkeypatch, colour_generator)
    assert box(app, "Colour").options == ["any", *COLOURS] and box(app, "Colour").value == "any"
    assert box(app, "From colour").options == box(app, "To colour").options == ["any", *COLOURS]
    assert not any("no colour control" in caption.value for caption in app.caption)
    without = page(monkeypatch, PAPER)
    assert not [label for label in labels(without) if "olour" in label]
    assert labels(without)[:2] == ["Sub-category", "Gender"]
    assert any("no colour control" in caption.value for caption in without.caption)


def test_a_colour_changes_the_pixels_and_the_same_choice_the_same_png(monkeypatch, colour_generator,
                                                                      drawn) -> None:
    app = choose(page(monkeypatch, colour_generator), "Colour", "Black")
    assert shown(app, 0).caption == "8 x Topwear / Men / Black, seed 7"
    black, black_url = drawn[-1], shown(app, 0).url
    choose(app, "Colour", "White")
    white = drawn[-1]
    assert pixels(black).shape == pixels(white).shape and not np.array_equal(pixels(black), pixels(white))
    st.cache_data.clear()  # drawn again, not served from the cache
    again = choose(page(monkeypatch, colour_generator), "Colour", "Black")
    assert drawn[-1] == black and shown(again, 0).url == black_url
    # the interpolation's ends take a colour too
    strip = shown(choose(again, "From colour", "Black"), 1).url
    assert shown(choose(again, "From colour", "White"), 1).url != strip


def test_the_generator_box_offers_the_installed_variants(monkeypatch, tmp_path, colour_generator, drawn) -> None:
    variants = (Variant("default", tmp_path / "unused", "the first one"),
                Variant("missing", tmp_path / "nowhere", "never installed"),
                Variant("paper", PAPER, "the paper's CVAE"))
    monkeypatch.setattr(webapp, "GENERATOR_VARIANTS", variants)
    app = page(monkeypatch, colour_generator)  # FASHIONGEN_GENERATOR_DIR replaces the default's folder
    chosen = app.selectbox(key=webapp.GENERATOR_BOX_KEY)
    assert chosen.options == ["default", "paper"] and chosen.value == "default"
    assert [caption.value for caption in app.sidebar.caption] == ["The generator in FASHIONGEN_GENERATOR_DIR."]
    assert "Colour" in labels(app)
    chosen.set_value("paper").run()
    assert not app.exception and not app.error
    assert "Colour" not in labels(app)  # the paper's generator has no colour control
    assert not np.array_equal(pixels(drawn[0]), pixels(drawn[-1]))
    assert [caption.value for caption in app.sidebar.caption] == ["The paper's CVAE."]
    app.switch_page("app_pages/reconstruct.py").run()  # the choice holds on the other page
    assert not app.exception and app.selectbox(key=webapp.GENERATOR_BOX_KEY).value == "paper"


def test_the_shipped_variants_are_offered_when_installed(monkeypatch) -> None:
    app = page(monkeypatch, None)
    offered = app.selectbox(key=webapp.GENERATOR_BOX_KEY).options
    assert offered[0] == "default" and "paper" in offered  # both ship in the repository
    assert ("smooth" in offered) == (PAPER.parent / "generator-smooth").is_dir()


def test_reconstruct_with_a_colour_controlled_generator(monkeypatch, colour_generator) -> None:
    """The shipped labeler has no colour head: the reconstruction's colour columns stay zero, and it works."""
    app = page(monkeypatch, colour_generator, "app_pages/reconstruct.py")
    app.radio[0].set_value("Example").run()
    assert not app.exception and not app.error and len(app.get("image")) == 2


def test_reconstruct_explains_a_generator_of_other_classes(monkeypatch, tmp_path) -> None:
    """A generator whose sub-categories are not the labeler's cannot take its labels: a message, not a traceback."""
    folder = tiny_generator(tmp_path / "generator", schema=LabelSchema(("Topwear", "Shoes"), ("Men", "Women")))
    monkeypatch.setenv(webapp.GENERATOR_DIR_VARIABLE, str(folder))
    app = new_app(monkeypatch)
    app.run()
    app.switch_page("app_pages/reconstruct.py").run()
    app.radio[0].set_value("Example").run()
    assert not app.exception
    assert [error.value for error in app.error] == [
        "This generator cannot reconstruct with the labeler's labels: the labeler's subCategory classes are not "
        "the generator's; use the labeler the generator was trained with"]
