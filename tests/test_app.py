"""The Streamlit app through AppTest: the real page scripts with the shipped models."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from helpers import SHARED_PHOTO, assert_probability_chart, new_app, product_photo
from PIL import Image
from streamlit.testing.v1 import AppTest

import webapp
from fashiongen.generator.generator import Generator
from fashiongen.schema import LabelSchema

REPO = Path(__file__).resolve().parents[1]




@pytest.fixture
def app(monkeypatch) -> AppTest:
    return new_app(monkeypatch)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()




def rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(Image.new("RGB", (80, 60), (200, 30, 30)), "JPEG", exif=exif.tobytes())


GOOD_UPLOADS = {
    "photo.jpg": (product_photo(), "image/jpeg"),
    "rgba.png": (encode(Image.new("RGBA", (120, 160), (10, 200, 10, 128)), "PNG"), "image/png"),
    "grey.png": (encode(Image.new("L", (60, 80), 90), "PNG"), "image/png"),
    "cmyk.jpg": (encode(Image.new("CMYK", (60, 80), (0, 200, 200, 0)), "JPEG"), "image/jpeg"),
    "sixteen.png": (encode(Image.fromarray(np.full((80, 60), 40000, np.uint16)), "PNG"), "image/png"),
    "rotated.jpg": (rotated_jpeg(), "image/jpeg"),
    "huge.jpg": (encode(Image.new("L", (10000, 10000), 200), "JPEG", quality=40), "image/jpeg"),
    "photo.webp": (encode(Image.new("RGB", (300, 400), (20, 20, 20)), "WEBP"), "image/webp"),
}
BAD_UPLOADS = {
    "empty.jpg": (b"", "empty (0 bytes)"),
    "notes.png": (b"these are not pixels\n" * 20, "not an image format"),
    "truncated.jpg": (product_photo()[:400], "corrupt or truncated"),
}


def test_label_page_is_the_default(app: AppTest) -> None:
    app.run()
    assert not app.exception
    assert app.title[0].value == "Label a product photo"
    assert any("Upload one photo" in info.value for info in app.info)


@pytest.mark.parametrize("name", sorted(GOOD_UPLOADS))
def test_label_a_good_upload(app: AppTest, name: str) -> None:
    data, mime = GOOD_UPLOADS[name]
    app.run()
    app.file_uploader[0].set_value((name, data, mime)).run()
    assert not app.exception and not app.error
    labels = {metric.label: metric.value for metric in app.metric}
    assert set(labels) == {"Sub-category", "Gender"}
    assert labels["Gender"] in {"Men", "Women", "Unisex", "Boys", "Girls"}
    assert_probability_chart(app, labels)




def test_real_photo_gets_its_label(app: AppTest, shared_data: Path) -> None:
    app.run()
    app.file_uploader[0].set_value(("15970.jpg", (shared_data / "images" / "15970.jpg").read_bytes(),
                                    "image/jpeg")).run()
    labels = {metric.label: metric.value for metric in app.metric}
    assert labels == {"Sub-category": "Topwear", "Gender": "Men"}  # styles.csv: Men, Topwear (a shirt)


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_upload_explains_and_the_app_keeps_working(app: AppTest, name: str) -> None:
    data, message = BAD_UPLOADS[name]
    app.run()
    app.file_uploader[0].set_value((name, data, "image/jpeg")).run()
    assert not app.exception
    assert any(message in error.value and name in error.value for error in app.error)
    app.file_uploader[0].set_value(("photo.jpg", product_photo(), "image/jpeg")).run()  # the next upload works
    assert not app.exception and not app.error and len(app.metric) == 2


def test_several_uploads_give_a_table_and_csv(app: AppTest) -> None:
    app.run()
    files = [("a.jpg", product_photo(), "image/jpeg"), ("b.png", GOOD_UPLOADS["grey.png"][0], "image/png"),
             ("bad.jpg", b"", "image/jpeg")]
    app.file_uploader[0].set_value(files).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["file"]) == ["a.jpg", "b.png"]
    # the shipped model: two heads and a not-a-product detector, which flags the plain grey picture
    assert list(table.columns) == ["file", "subCategory", "subCategory probability", "gender", "gender probability",
                                   "not a product"]
    flags = list(table["not a product"])
    assert flags[1] is True or flags[1] == True  # noqa: E712 (a numpy bool)
    if SHARED_PHOTO.is_file():  # a real product photo is not flagged (the made-up stand-in may be)
        assert not flags[0]
    assert len(app.warning) == 1 and "1 of 2 photos do not look like product photos" in app.warning[0].value
    assert len(app.error) == 1 and "bad.jpg" in app.error[0].value
    assert len(app.get("download_button")) == 1


@pytest.mark.parametrize("page, title", [("app_pages/about.py", "About FashionGen"), ("app_pages/generate.py", "Generate"),
                                         ("app_pages/reconstruct.py", "Reconstruct")])
def test_every_page_renders(app: AppTest, page: str, title: str) -> None:
    app.run()
    app.switch_page(page).run()
    assert not app.exception
    assert app.title[0].value == title


def generated_images(monkeypatch, sub_category: str, gender: str, seed: int) -> list:
    app = new_app(monkeypatch)
    app.run()
    app.switch_page("app_pages/generate.py").run()
    app.selectbox[0].set_value(sub_category)
    app.selectbox[1].set_value(gender)
    app.slider[1].set_value(seed)
    app.run()
    assert not app.exception and not app.error
    return [image.proto.SerializeToString() for image in app.get("image")]


def test_same_choices_give_the_same_images(monkeypatch) -> None:
    first = generated_images(monkeypatch, "Shoes", "Men", 11)
    second = generated_images(monkeypatch, "Shoes", "Men", 11)
    other = generated_images(monkeypatch, "Shoes", "Men", 12)
    assert first and first == second
    assert first != other


def test_about_page_shows_device_and_metrics(app: AppTest) -> None:
    app.run()
    app.switch_page("app_pages/about.py").run()
    assert not app.exception
    assert app.metric[0].value in ("CPU only",) or app.metric[0].value.startswith("GPU")
    # the labeler's validation metrics from its model card, with the numbers it holds
    card = webapp.load_labeler()[0].card
    shown = app.dataframe[0].value.set_index("head") if len(app.dataframe) else None
    if shown is None:
        assert len(app.table) >= 1
    else:
        accuracy = card["metrics"]["validation"]["subCategory_accuracy"]
        assert shown.loc["Sub-category", "accuracy"] == pytest.approx(accuracy, abs=1e-4)
        assert shown.loc["Sub-category", "macro-F1"] is not None and shown.loc["Gender", "photos"] > 0


def about_page_with_card(monkeypatch, tmp_path, card: dict) -> AppTest:
    """The About page of an app whose labeler (an untrained catalog model) carries `card`."""
    from fashiongen.labeler.labeler import Labeler
    from fashiongen.labeler.model import build_classifier

    Labeler(build_classifier(CATALOG_SCHEMA), CATALOG_SCHEMA, card).save(tmp_path / "model")
    monkeypatch.setenv(webapp.CLASSIFIER_DIR_VARIABLE, str(tmp_path / "model"))
    app = new_app(monkeypatch)
    app.run()
    app.switch_page("app_pages/about.py").run()
    assert not app.exception
    return app


def test_about_page_survives_a_hand_edited_card(monkeypatch, tmp_path) -> None:
    card = {"metrics": {"validation": {"subCategory_accuracy": "high", "gender_accuracy": 0.9},
                        "calibration": [1, 2], "not_a_product": {"method": "energy", "methods": [3]}}}
    app = about_page_with_card(monkeypatch, tmp_path, card)
    table = app.dataframe[0].value.set_index("head")
    assert np.isnan(table.loc["Sub-category", "accuracy"]) and table.loc["Gender", "accuracy"] == 0.9
    assert not any("Not a product" in caption.value for caption in app.caption)


def test_about_page_shows_a_catalog_labelers_metrics_per_head(monkeypatch, tmp_path) -> None:
    """A card with per-head metrics: one row per head, in reading order, with its calibration error."""
    validation = {f"{column}_accuracy": 0.9 for column in CATALOG_SCHEMA.heads}
    validation.update({f"{column}_macro_f1": 0.8 for column in CATALOG_SCHEMA.heads})
    card = {"arch": "compact", "metrics": {"validation": validation,
                                           "calibration": {"baseColour": {"ece_after": 0.012}},
                                           "not_a_product": {"method": "energy", "methods": {
                                               "energy": {"false_flag_rate": 0.02, "flagged_rate": 0.95}}}}}
    app = about_page_with_card(monkeypatch, tmp_path, card)
    table = app.dataframe[0].value
    assert list(table["head"]) == CATALOG_TITLES
    assert table.set_index("head").loc["Colour", "calibration error"] == 0.012
    assert any("95.0% of the non-product set" in caption.value for caption in app.caption)


def test_reconstruct_an_upload_and_an_example(app: AppTest) -> None:
    app.run()
    app.switch_page("app_pages/reconstruct.py").run()
    app.file_uploader[0].set_value(("photo.jpg", product_photo(), "image/jpeg")).run()
    assert not app.exception and not app.error
    assert len(app.get("image")) == 2  # original and reconstruction side by side
    error = float(app.metric[0].value)
    assert 0.0 <= error < 0.05  # a real reconstruction, not noise (mean squared error in [0, 1] units)
    app.radio[0].set_value("Example").run()
    assert not app.exception and len(app.get("image")) == 2


def test_bad_upload_on_reconstruct_page(app: AppTest) -> None:
    app.run()
    app.switch_page("app_pages/reconstruct.py").run()
    app.file_uploader[0].set_value(("broken.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")).run()
    assert not app.exception
    assert any("broken.png" in error.value for error in app.error)


def test_a_corrupt_dataset_example_is_an_error_not_a_traceback(app: AppTest, tmp_path: Path, monkeypatch) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "1.jpg").write_bytes(b"not a jpeg at all")
    monkeypatch.setattr(webapp, "DATA_IMAGES", images)
    app.run()
    app.switch_page("app_pages/reconstruct.py").run()
    app.radio[0].set_value("Example").run()
    assert not app.exception
    assert any("1.jpg" in error.value for error in app.error)
    assert len(app.get("image")) == 0


def test_dataset_examples_are_listed_once_per_version_of_the_folder(tmp_path: Path, monkeypatch) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("3.jpg", "1.jpg", "2.jpg"):
        (images / name).write_bytes(b"x")
    monkeypatch.setattr(webapp, "DATA_IMAGES", images)
    listings = []
    real_glob = Path.glob

    def counted_glob(self, pattern):
        listings.append(self)
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", counted_glob)
    assert [p.name for p in webapp.dataset_examples(limit=2)] == ["1.jpg", "2.jpg"]
    assert [p.name for p in webapp.dataset_examples(limit=2)] == ["1.jpg", "2.jpg"]
    assert len(listings) == 1
    (images / "0.jpg").write_bytes(b"x")  # a new download shows up
    later = images.stat().st_mtime_ns + 10**9  # explicit: some file systems keep coarse times
    os.utime(images, ns=(later, later))
    assert [p.name for p in webapp.dataset_examples(limit=2)] == ["0.jpg", "1.jpg"]
    assert len(listings) == 2


def test_loaded_models_are_out_of_the_collectors_reach() -> None:
    """Streamlit collects garbage after every script run; the models' objects must not be walked each
    time (200 ms of held GIL per run before they were frozen; measured in scripts/benchmark.py's app section)."""
    import gc

    labeler, _ = webapp.load_labeler()
    generator, _ = webapp.load_generator()
    walked = {id(o) for o in gc.get_objects()}
    assert gc.get_freeze_count() > 0
    assert id(labeler.model) not in walked and id(generator.decoder) not in walked


# File names a user controls, full of Markdown and of Streamlit's own inline syntax
MARKDOWN_NAMES = ["**BOLD** :red[x].jpg", "``two`` `one` _it_ $x$ :material/home: [a](b).png", "`edge`.jpg"]


def shown_text(markdown: str) -> str:
    """The text a browser shows for Streamlit Markdown: CommonMark (markdown-it, as in the browser)
    with Streamlit's inline directives (:red[text], :material/icon:, $math$) applied outside code spans."""
    from markdown_it import MarkdownIt

    shown = []
    for block in MarkdownIt().parse(markdown):
        for token in block.children or []:
            if token.type == "text":
                text = re.sub(r":[\w-]+\[([^\]]*)\]", r"\1", token.content)
                shown.append(re.sub(r"\$([^$]+)\$", r"\1", re.sub(r":material/\w+:", "", text)))
            elif token.type == "code_inline":
                shown.append(token.content)
            elif token.type in ("softbreak", "hardbreak"):
                shown.append(" ")
    return "".join(shown)


def test_shown_text_renders_markdown() -> None:
    """The helper the next tests rely on really renders: the names as plain Markdown are not shown as written."""
    assert shown_text("**BOLD** :red[x].jpg is empty") == "BOLD x.jpg is empty"
    for name in MARKDOWN_NAMES:
        assert name not in shown_text(name)
        assert shown_text(webapp.literal(name)) == name


@pytest.mark.parametrize("name", MARKDOWN_NAMES)
def test_file_names_are_shown_literally(app: AppTest, name: str) -> None:
    """Errors, captions and the table show an upload's name as written, never as Markdown."""
    app.run()
    app.file_uploader[0].set_value((name, b"", "image/jpeg")).run()
    assert [name in shown_text(error.value) for error in app.error] == [True]
    app.file_uploader[0].set_value((name, product_photo(), "image/jpeg")).run()
    assert not app.exception and not app.error
    (image,) = app.get("image")
    assert shown_text(image.proto.imgs[0].caption) == f"{name} as the model sees it (60x80)"
    app.file_uploader[0].set_value([(name, product_photo(), "image/jpeg"), ("b.jpg", product_photo(), "image/jpeg")])
    app.run()
    assert list(app.dataframe[0].value["file"]) == [name, "b.jpg"]  # table cells are never Markdown


def test_the_uploader_says_its_limits(app: AppTest) -> None:
    app.run()
    label = app.file_uploader[0].label
    assert f"up to {webapp.MAX_UPLOAD_FILES} files and {webapp.MAX_UPLOAD_BYTES // 2**20} MB per upload" in label
    assert "50 MB per file" in label


def test_upload_limits_take_the_first_files_that_fit(monkeypatch) -> None:
    """The count and the total size are both capped; the files left out are named once, literally."""
    monkeypatch.setattr(webapp, "MAX_UPLOAD_FILES", 3)
    monkeypatch.setattr(webapp, "MAX_UPLOAD_BYTES", 100)
    files = [SimpleNamespace(name=f"**{i}**.jpg", size=size) for i, size in enumerate([10, 20, 30, 60, 1])]
    assert webapp.within_upload_limits(files[:3]) == (files[:3], None)
    accepted, message = webapp.within_upload_limits(files)
    assert accepted == files[:3]  # with the fourth, 120 bytes and 4 files
    assert shown_text(message).startswith("Labeled the first 3 of 5 files: one upload takes up to 3 files and 0 MB")
    assert "Not labeled: **3**.jpg, **4**.jpg." in shown_text(message)
    accepted, message = webapp.within_upload_limits([files[3], files[2], files[1], files[4]])
    assert accepted == [files[3], files[2]] and "Not labeled: **1**.jpg, **4**.jpg." in shown_text(message)
    many = [SimpleNamespace(name=f"{i}.jpg", size=1) for i in range(10)]
    assert shown_text(webapp.within_upload_limits(many)[1]).endswith("Not labeled: 3.jpg, 4.jpg, 5.jpg, 6.jpg, "
                                                                    "7.jpg and 2 more. Upload those in another batch.")


def test_too_many_files_get_one_message(app: AppTest, monkeypatch) -> None:
    """Over the cap: the first files are labeled, one warning names the rest; nothing is silently dropped."""
    limit = webapp.MAX_UPLOAD_FILES
    grey = GOOD_UPLOADS["grey.png"][0]
    files = [(f"{i:02d}.png", grey, "image/png") for i in range(limit + 2)]
    app.run()
    app.file_uploader[0].set_value(files).run()
    assert not app.exception and not app.error
    assert list(app.dataframe[0].value["file"]) == [f"{i:02d}.png" for i in range(limit)]
    # one warning about the cap (the grey pictures are also flagged as no product photos: another one)
    (warning,) = [w for w in app.warning if "Labeled the first" in w.value]
    assert f"Labeled the first {limit} of {limit + 2} files" in warning.value
    assert f"Not labeled: {limit:02d}.png, {limit + 1:02d}.png." in shown_text(warning.value)
    monkeypatch.setattr(webapp, "MAX_UPLOAD_BYTES", 2 * len(grey))  # the same module the page imports
    app = new_app(monkeypatch)
    app.run()
    app.file_uploader[0].set_value(files[:4]).run()
    assert list(app.dataframe[0].value["file"]) == ["00.png", "01.png"]
    assert "Labeled the first 2 of 4 files" in app.warning[0].value


def test_a_seed_change_draws_only_the_new_grid(monkeypatch) -> None:
    """The interpolation strip does not depend on the grid's seed, and pictures are cached per choices:
    moving the seed decodes the new grid only, and moving it back decodes nothing."""
    calls = []
    for method in ("generate", "interpolate"):
        original = getattr(Generator, method)
        monkeypatch.setattr(Generator, method,
                            lambda self, *a, _m=method, _o=original, **k: calls.append(_m) or _o(self, *a, **k))
    st.cache_data.clear()
    app = new_app(monkeypatch)
    app.run()
    app.switch_page("app_pages/generate.py").run()
    assert calls == ["generate", "interpolate"]
    app.slider[1].set_value(8).run()
    assert not app.exception and calls[2:] == ["generate"]
    app.slider[1].set_value(7).run()
    assert calls[3:] == []  # cached


def test_script_runs_keep_tensorflow_caches(app: AppTest, monkeypatch) -> None:
    """Streamlit reset Keras after every script run, which emptied TensorFlow's kernel cache: every label
    and generate run then rebuilt its model's graph, 50-90 ms of CPU instead of 2-15 (server CPU per
    interaction 110-135 ms before, 35-40 after; scripts/benchmark.py --sections app)."""
    from tensorflow.python.eager import context

    cleared = []
    original = context.Context.clear_kernel_cache
    monkeypatch.setattr(context.Context, "clear_kernel_cache", lambda self: cleared.append(1) or original(self))
    app.run()
    app.file_uploader[0].set_value(("photo.jpg", product_photo(), "image/jpeg")).run()
    app.switch_page("app_pages/generate.py").run()
    assert not app.exception and app.title[0].value == "Generate"
    assert cleared == []


def test_the_labeler_is_traced_when_it_loads(app: AppTest) -> None:
    """The first upload of the process does not pay for tracing the labeler's predict function (about
    0.5 s of CPU): loading does it, behind the loading spinner."""
    webapp._load_labeler.clear()
    labeler, _ = webapp.load_labeler()
    # the Keras model the labeler calls: a view giving the features and the scores when its model has features
    called = labeler._view or labeler.model
    traced = called.predict_function.experimental_get_tracing_count()
    assert traced >= 1
    app.run()
    app.file_uploader[0].set_value(("photo.jpg", product_photo(), "image/jpeg")).run()
    assert not app.exception and len(app.metric) == 2
    assert webapp.load_labeler()[0] is labeler
    assert called.predict_function.experimental_get_tracing_count() == traced


# A catalog labeler: the paper's two heads and every extra head, with a not-a-product detector
CATALOG_SCHEMA = LabelSchema(("Topwear", "Shoes", "Bags", "Watches"), ("Men", "Women", "Unisex", "Boys", "Girls"), (
    ("masterCategory", ("Apparel", "Accessories", "Footwear")),
    ("articleType", ("Tshirts", "Shirts", "Casual Shoes", "Watches")),
    ("baseColour", ("Black", "White", "Blue", "Navy Blue")),
    ("season", ("Summer", "Fall", "Winter", "Spring")),
    ("usage", ("Casual", "Sports", "Formal"))))
CATALOG_TITLES = ["Category", "Sub-category", "Article type", "Colour", "Gender", "Season", "Usage"]
CATALOG_COLUMNS = ["masterCategory", "subCategory", "articleType", "baseColour", "gender", "season", "usage"]


@pytest.fixture(scope="module")
def catalog_folders(tmp_path_factory) -> dict[str, Path]:
    """One untrained catalog model in two folders: its detector flags every image in "flagged" (the score
    is minus the top sub-category probability, always above -2) and none in "products" (never above 0)."""
    from fashiongen.labeler.labeler import Calibration, Labeler
    from fashiongen.labeler.model import build_classifier
    from fashiongen.labeler.outliers import NotAProduct

    model = build_classifier(CATALOG_SCHEMA)
    root = tmp_path_factory.mktemp("catalog")
    for kind, threshold in (("flagged", -2.0), ("products", 0.0)):
        calibration = Calibration(not_a_product=NotAProduct("max_probability", threshold=threshold))
        Labeler(model, CATALOG_SCHEMA, calibration=calibration).save(root / kind)
    return {kind: root / kind for kind in ("flagged", "products")}


def catalog_app(monkeypatch, folder: Path, files) -> AppTest:
    """The Label page served by the model in `folder`, after uploading `files`."""
    monkeypatch.setenv(webapp.CLASSIFIER_DIR_VARIABLE, str(folder))
    app = new_app(monkeypatch)
    app.run()
    app.file_uploader[0].set_value(files).run()
    assert not app.exception and not app.error
    return app


def test_heads_are_shown_in_reading_order() -> None:
    assert list(CATALOG_SCHEMA.heads)[:3] == ["subCategory", "gender", "masterCategory"]  # the vector's order
    assert webapp.shown_heads(CATALOG_SCHEMA) == CATALOG_COLUMNS
    assert [webapp.head_title(column) for column in CATALOG_COLUMNS] == CATALOG_TITLES
    assert webapp.shown_heads(CATALOG_SCHEMA.paper) == ["subCategory", "gender"]


def test_one_photo_shows_every_head_of_a_catalog_model(monkeypatch, catalog_folders) -> None:
    app = catalog_app(monkeypatch, catalog_folders["products"], ("photo.jpg", product_photo(), "image/jpeg"))
    labels = {metric.label: metric.value for metric in app.metric}
    assert list(labels) == CATALOG_TITLES
    for title, column in zip(CATALOG_TITLES, CATALOG_COLUMNS):
        assert labels[title] in dict(CATALOG_SCHEMA.heads)[column]
    assert len(app.caption) == 7 and all(caption.value.endswith("% probability") for caption in app.caption)
    assert len(app.warning) == 0 and len(app.expander) == 0
    assert_probability_chart(app, labels)


def test_a_photo_that_is_no_product_gets_a_warning_not_labels(monkeypatch, catalog_folders) -> None:
    """Flagged: a warning, and the labels and chart only inside a collapsed expander."""
    app = catalog_app(monkeypatch, catalog_folders["flagged"], ("photo.jpg", product_photo(), "image/jpeg"))
    (warning,) = app.warning
    assert "does not look like a product photo" in warning.value and "guesses" in warning.value
    (expander,) = app.expander
    assert expander.label == "Show the labels anyway" and not expander.proto.expanded
    assert [metric.label for metric in expander.metric] == CATALOG_TITLES
    assert len(app.metric) == len(expander.metric)  # none outside it
    assert len(expander.get("plotly_chart")) == len(app.get("plotly_chart")) == 1
    assert len(app.get("image")) == 1  # the photo as the model sees it still shows


def uploaded_csv(monkeypatch, app: AppTest, files) -> pd.DataFrame:
    """Upload `files` and read back the CSV the download button serves."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, data, mimetype, kind, filename=None):
        served[filename] = data
        return original(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    app.file_uploader[0].set_value(files).run()
    assert not app.exception and len(app.get("download_button")) == 1
    return pd.read_csv(io.BytesIO(served["labels.csv"]), keep_default_na=False)


@pytest.mark.parametrize("kind", ["products", "flagged"])
def test_several_photos_give_every_head_in_the_table_and_csv(monkeypatch, catalog_folders, kind: str) -> None:
    files = [("a.jpg", product_photo(), "image/jpeg"), ("b.png", GOOD_UPLOADS["grey.png"][0], "image/png")]
    monkeypatch.setenv(webapp.CLASSIFIER_DIR_VARIABLE, str(catalog_folders[kind]))
    app = new_app(monkeypatch)
    app.run()
    csv = uploaded_csv(monkeypatch, app, files)
    table = app.dataframe[0].value
    columns = ["file", *(f"{c}{part}" for c in CATALOG_COLUMNS for part in ("", " probability")), "not a product"]
    assert list(table.columns) == list(csv.columns) == columns
    assert list(table["file"]) == list(csv["file"]) == ["a.jpg", "b.png"]
    assert list(table["not a product"]) == list(csv["not a product"]) == [kind == "flagged"] * 2
    for column in CATALOG_COLUMNS:
        assert set(table[column]) <= set(dict(CATALOG_SCHEMA.heads)[column])
        assert list(csv[column]) == list(table[column])
        assert ((table[f"{column} probability"] > 0) & (table[f"{column} probability"] <= 1)).all()
    notes = [warning.value for warning in app.warning]
    assert notes == (["2 of 2 photos do not look like product photos (`not a product` is True in the table): "
                      "their labels are guesses."] if kind == "flagged" else [])
