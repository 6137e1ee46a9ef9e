"""What the Streamlit pages share: models loaded once per process, cached results, charts, upload
limits and error panels. It lives beside app.py, not in the library, so `fashiongen` never imports
Streamlit (Streamlit puts app.py's folder on sys.path; pytest has pythonpath = ["."]).

Pages stay thin: they call these functions and the library, and draw.
"""

from __future__ import annotations

import gc
import heapq
import io
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from fashiongen.errors import ClassifierError, GeneratorError
from fashiongen.generator.generator import ANY_COLOUR, Generator
from fashiongen.imaging import IMAGE_SHAPE, MAX_FILE_BYTES, ImageError, image_grid, load_image
from fashiongen.labeler.labeler import Labeler, Prediction
from fashiongen.model_folder import GENERATOR_VARIANTS, LABELER
from fashiongen.paths import DEFAULT_DATA_DIR
from fashiongen.schema import DISPLAY_ORDER, LabelSchema

DATA_IMAGES = DEFAULT_DATA_DIR / "images"
# Environment variables naming other model folders; read on every call, and the folder is the cache key,
# so another folder is really loaded.
CLASSIFIER_DIR_VARIABLE = "FASHIONGEN_CLASSIFIER_DIR"
GENERATOR_DIR_VARIABLE = "FASHIONGEN_GENERATOR_DIR"
DEFAULT_GENERATOR = GENERATOR_VARIANTS[0].name
# Session state: the sidebar's generator, so Generate and Reconstruct show the same one
CHOSEN_GENERATOR = "chosen generator"
GENERATOR_BOX_KEY = "generator"  # the sidebar selectbox's widget key (tests find it by this)

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]
# One upload on the Label page takes at most this many files and bytes in all. Streamlit keeps every
# uploaded file in memory, and each is decoded in turn (a 49 MB file can hold 100 MP, 300 MB of
# pixels), so a batch must be bounded; 20 ordinary product photos (well under 1 MB each) fit easily.
MAX_UPLOAD_FILES = 20
MAX_UPLOAD_BYTES = 100 * 2**20
# The Label page: each head's title, by styles.csv column (DISPLAY_ORDER orders them)
HEAD_TITLES = {"masterCategory": "Category", "subCategory": "Sub-category", "articleType": "Article type",
               "baseColour": "Colour", "gender": "Gender", "season": "Season", "usage": "Usage"}
METRICS_PER_ROW = 3  # a metric cuts a value wider than its column; help shows it whole
# The chart shows each head's most probable classes only, so a catalog model's seven heads fit one screen
CHART_TOP_CLASSES = 3
CHART_PANELS_PER_ROW = 3
CHART_NAME_CHARS = 18  # longer class names are cut on the chart's axis (whole in its hover text)
NOT_A_PRODUCT_COLUMN = "not a product"
NOT_A_PRODUCT_WARNING = ("This does not look like a product photo: the labeler knows product photos only, so its "
                         "labels for it would be guesses.")
# Generated grids and strips kept as PNG bytes, across sessions (about 50-200 KB each).
CACHED_PICTURES = 256


def upload_limits() -> str:
    """The Label uploader's limits in words, for its help and for the message about files left out."""
    return (f"up to {MAX_UPLOAD_FILES} files and {MAX_UPLOAD_BYTES // 2**20} MB per upload, "
            f"{MAX_FILE_BYTES // 2**20} MB per file")


def literal(text: str) -> str:
    """Markdown that shows `text` exactly as written: a code span. Streamlit renders messages and
    captions as Markdown, so a file named `**BOLD** :red[x].jpg` came out bold and red. The fence is
    longer than any run of backticks inside; line breaks become spaces (a code span cannot hold them)."""
    text = " ".join(text.splitlines())
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", text)), default=0))
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""  # Markdown strips one space each side
    return f"{fence}{pad}{text}{pad}{fence}"


def model_folder(variable: str, shipped: Path) -> str:
    """The folder named by the environment `variable`, or the shipped one."""
    return os.environ.get(variable) or str(shipped)


def _keep_tensorflow_caches() -> None:
    """Stop Streamlit from resetting Keras after every script run.

    Streamlit calls keras.backend.clear_session() when a run ends (script_runner._clean_problem_modules,
    for scripts that build a new model on each run). That empties TensorFlow's kernel cache, so the
    next model call instantiated and optimised its whole graph again (Grappler): 50-90 ms of CPU in
    every label and generate run instead of 2-15 ms, plus one more full garbage collection, and with
    several sessions one user's run cleared the cache under another's model call. This app builds its
    models once per process (the cached loaders below), so there is nothing to clear. The module
    global is the only hook Streamlit offers; tests/test_app.py fails if a Streamlit upgrade moves it."""
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = lambda: None


_keep_tensorflow_caches()


def _out_of_collections(model):
    """`model`, with every object alive now moved out of the garbage collector's reach (gc.freeze).

    Streamlit ran a full collection after every script run (runner.postScriptGC, now off in
    .streamlit/config.toml but on under AppTest), and Python runs its own ones. With TensorFlow,
    Keras and the models loaded, one walked about 456,000 objects for 200 ms while holding the GIL,
    which stalled the messages on their way to the browser: the Label interaction took 605 ms
    instead of 181 (p50, scripts/benchmark.py --sections app). The models live as long as the process."""
    gc.collect()
    gc.freeze()
    return model


@st.cache_resource(show_spinner="Loading the labeler…")
def _load_labeler(folder: str) -> tuple[Labeler | None, str | None]:
    try:
        labeler = Labeler.load(folder)
    except ClassifierError as error:
        return None, str(error)  # names the file and the command that retrains into `folder`
    # Trace the model's predict function now, behind the loading spinner: otherwise the first upload
    # of the process paid it (about 0.5 s of CPU). The Label page's first render never calls the model.
    labeler.scores(np.zeros((1, *IMAGE_SHAPE), np.uint8))
    return _out_of_collections(labeler), None


@st.cache_resource(show_spinner="Loading the generator…")
def _load_generator(folder: str) -> tuple[Generator | None, str | None]:
    try:
        return _out_of_collections(Generator.load(folder)), None
    except GeneratorError as error:
        return None, str(error)


def load_labeler() -> tuple[Labeler | None, str | None]:
    """(labeler, None), or (None, why not and how to retrain) when its model is missing or broken.
    Loaded once per process and folder (FASHIONGEN_CLASSIFIER_DIR, else the shipped model)."""
    return _load_labeler(model_folder(CLASSIFIER_DIR_VARIABLE, LABELER.shipped))


def generator_folder(name: str = DEFAULT_GENERATOR) -> str:
    """The folder of the shipped generator variant `name`; FASHIONGEN_GENERATOR_DIR replaces the default's."""
    folder = {variant.name: variant.folder for variant in GENERATOR_VARIANTS}[name]
    return model_folder(GENERATOR_DIR_VARIABLE, folder) if name == DEFAULT_GENERATOR else str(folder)


def generator_choices() -> list[str]:
    """The generator variants the app offers, the default first: those whose folder exists, and the
    default always (a broken or missing one says why on the page, and the others stay a click away)."""
    return [variant.name for variant in GENERATOR_VARIANTS
            if variant.name == DEFAULT_GENERATOR or Path(generator_folder(variant.name)).is_dir()]


def choose_generator() -> str:
    """The sidebar's Generator box: the chosen variant's name, remembered from page to page."""
    names = generator_choices()
    descriptions = {variant.name: variant.description for variant in GENERATOR_VARIANTS}
    remembered = st.session_state.get(CHOSEN_GENERATOR)
    # a widget key is per page, so the index carries the choice made on the other page
    name = st.sidebar.selectbox("Generator", names, index=names.index(remembered) if remembered in names else 0,
                                key=GENERATOR_BOX_KEY)
    st.session_state[CHOSEN_GENERATOR] = name
    overridden = name == DEFAULT_GENERATOR and os.environ.get(GENERATOR_DIR_VARIABLE)
    description = f"the generator in {GENERATOR_DIR_VARIABLE}" if overridden else descriptions[name]
    st.sidebar.caption(description[:1].upper() + description[1:] + ".")
    return name


def load_generator(name: str = DEFAULT_GENERATOR) -> tuple[Generator | None, str | None]:
    """(generator, None), or (None, why not and how to retrain): the variant `name` (default:
    FASHIONGEN_GENERATOR_DIR, else the shipped default), loaded once per process and folder."""
    return _load_generator(generator_folder(name))


def _loaded_or_stop(loaded: tuple, what: str):
    """The model of a (model, problem) pair, or the page stops after showing the problem."""
    model, problem = loaded
    if model is None:
        st.error(f"The {what} cannot be loaded: {problem}")
        st.stop()
    return model


def labeler_or_stop() -> Labeler:
    return _loaded_or_stop(load_labeler(), "labeler")


def generator_or_stop(name: str = DEFAULT_GENERATOR) -> Generator:
    return _loaded_or_stop(load_generator(name), "generator")


def within_upload_limits(uploads: Sequence) -> tuple[list, str | None]:
    """The first uploads that fit in MAX_UPLOAD_FILES and MAX_UPLOAD_BYTES (Streamlit knows each
    file's size before anything is read), and one message naming the files left out, or None."""
    accepted, total = [], 0
    for upload in uploads:
        total += upload.size
        if len(accepted) == MAX_UPLOAD_FILES or total > MAX_UPLOAD_BYTES:
            break
        accepted.append(upload)
    left_out = list(uploads[len(accepted):])
    if not left_out:
        return accepted, None
    names = ", ".join(literal(upload.name) for upload in left_out[:5])
    if len(left_out) > 5:
        names += f" and {len(left_out) - 5} more"
    return accepted, (f"Labeled the first {len(accepted)} of {len(uploads)} files: one upload takes "
                      f"{upload_limits()}. Not labeled: {names}. Upload those in another batch.")


def read_upload(upload) -> np.ndarray | None:
    """An uploaded file as a model input, or None after showing the user why it cannot be. Call it
    for one upload at a time: only the 60x80 image outlives the call, not the decoded picture."""
    try:
        return load_image(upload.getvalue(), name=literal(upload.name))
    except ImageError as error:
        st.error(str(error))
        return None


def shown_heads(schema: LabelSchema) -> list[str]:
    """The schema's heads in the order people read them (DISPLAY_ORDER); a head it does not list comes last."""
    heads = schema.heads
    return [column for column in DISPLAY_ORDER if column in heads] + [c for c in heads if c not in DISPLAY_ORDER]


def head_title(column: str) -> str:
    return HEAD_TITLES.get(column, column)


def show_top_labels(prediction: Prediction, columns: Sequence[str]) -> None:
    """Each head's most probable class as a metric with its probability beneath, METRICS_PER_ROW to a row."""
    for start in range(0, len(columns), METRICS_PER_ROW):
        for cell, column in zip(st.columns(METRICS_PER_ROW), columns[start:start + METRICS_PER_ROW]):
            name, probability = prediction.top(column)
            cell.metric(head_title(column), name, help=f"{name}: {probability:.1%} probability")
            cell.caption(f"{probability:.1%} probability")


def _short(name: str) -> str:
    return name if len(name) <= CHART_NAME_CHARS else name[:CHART_NAME_CHARS - 1] + "…"


def probability_chart(prediction: Prediction, columns: Sequence[str], top: int = CHART_TOP_CLASSES):
    """The `top` classes of each head of `columns` as horizontal bars, highest on top, one titled panel
    per head and up to CHART_PANELS_PER_ROW panels a row, in one plotly figure: one chart draws in the
    browser in about half the time of two. Built from plain dicts, unvalidated, on every label
    interaction's server run: make_subplots and the update_* calls took 17 ms per two-head figure
    against 3.6 ms with plain layout dicts, and validating seven heads' go.Bar traces took 15 ms
    against 4 ms without (the tests check the figure the page sends)."""
    import plotly.graph_objects as go

    per_row = min(len(columns), CHART_PANELS_PER_ROW)
    rows = -(-len(columns) // per_row)
    title_px, bar_px, gap_px, margin = 26, 24, 18, dict(l=10, r=10, t=10, b=10)
    block_px = title_px + bar_px * top + gap_px  # one row of panels
    plot_px = rows * block_px
    layout = dict(height=plot_px + margin["t"] + margin["b"], margin=margin, showlegend=False, annotations=[])
    traces = []
    cell = 1.0 / per_row
    for i, column in enumerate(columns):
        row, place = divmod(i, per_row)
        suffix = "" if i == 0 else str(i + 1)  # plotly names the axes x, y, x2, y2, ...
        ranked = prediction.heads[column][:top][::-1]
        names = [name for name, _ in ranked]
        values = [probability for _, probability in ranked]
        # the left 40% of a cell holds the class names (each panel's own), the rest its bars
        x_domain = [place * cell + 0.4 * cell, (place + 1) * cell - 0.05 * cell]
        top_y = 1.0 - row * block_px / plot_px  # a row: its title, its bars, then a gap
        y_domain = [max(0.0, top_y - (block_px - gap_px) / plot_px), top_y - title_px / plot_px]
        traces.append(dict(type="bar", x=values, y=[_short(name) for name in names], customdata=names,
                           orientation="h", name=head_title(column), text=[f"{v:.0%}" for v in values],
                           textposition="outside", hovertemplate="%{customdata}: %{x:.1%}<extra></extra>",
                           marker=dict(color="#3b6ea5"), xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
        # no tick labels: each bar says its probability
        layout[f"xaxis{suffix}"] = dict(domain=x_domain, range=[0, 1.3], showticklabels=False, anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = dict(domain=y_domain, anchor=f"x{suffix}")
        layout["annotations"].append(dict(text=head_title(column), x=sum(x_domain) / 2, y=y_domain[1], xref="paper",
                                          yref="paper", xanchor="center", yanchor="bottom", showarrow=False,
                                          font=dict(size=16)))
    return go.Figure(data=traces, layout=layout, _validate=False)


def labels_table(names: Sequence[str], predictions: Sequence[Prediction], columns: Sequence[str]) -> pd.DataFrame:
    """One row per photo: `file`, each head's top class (`<column>`) and its probability
    (`<column> probability`), and `not a product`; the Label page's table and its CSV."""
    rows = []
    for name, prediction in zip(names, predictions):
        row = {"file": name}
        for column in columns:
            label, probability = prediction.top(column)
            row[column], row[f"{column} probability"] = label, round(probability, 4)
        row[NOT_A_PRODUCT_COLUMN] = prediction.not_a_product
        rows.append(row)
    return pd.DataFrame(rows, columns=["file", *(f"{c}{part}" for c in columns for part in ("", " probability")),
                                       NOT_A_PRODUCT_COLUMN])


def head_metrics_table(card: dict) -> pd.DataFrame | None:
    """A labeler card's validation metrics as one row per head (accuracy, macro-F1, photos covered,
    calibration error after temperature scaling); None for a card without per-head metrics."""
    metrics = card.get("metrics", {})
    validation, calibration = metrics.get("validation", {}), metrics.get("calibration", {})
    if not isinstance(calibration, dict):
        calibration = {}
    rows = []
    for column in DISPLAY_ORDER:
        if f"{column}_accuracy" not in validation:
            continue
        ece = calibration.get(column, {}).get("ece_after") if isinstance(calibration.get(column), dict) else None
        # cards written before the catalog heads: macro_f1_<column>, and gender covers every photo
        photos = validation.get(f"n_with_{column}", validation.get("n_images") if column == "gender" else None)
        rows.append({"head": head_title(column), "accuracy": validation.get(f"{column}_accuracy"),
                     "macro-F1": validation.get(f"{column}_macro_f1", validation.get(f"macro_f1_{column}")),
                     "photos": photos, "calibration error": ece})
    if not rows:
        return None
    table = pd.DataFrame(rows)
    numbers = ["accuracy", "macro-F1", "calibration error"]
    table[numbers] = table[numbers].apply(pd.to_numeric, errors="coerce").round(4)  # a hand-edited card
    return table


def detector_caption(card: dict) -> str | None:
    """One line on a labeler card's not-a-product detector, None when it has none (or a malformed one)."""
    detector = card.get("metrics", {}).get("not_a_product")
    methods = detector.get("methods") if isinstance(detector, dict) else None
    chosen = methods.get(detector.get("method")) if isinstance(methods, dict) else None
    if not isinstance(chosen, dict):
        return None
    rates = [chosen.get(key) for key in ("false_flag_rate", "flagged_rate")]
    if not all(isinstance(rate, (int, float)) for rate in rates):
        return None
    return (f"Not a product photo: the {detector['method']} score flags {rates[0]:.1%} of real validation photos "
            f"and {rates[1]:.1%} of the non-product set.")


def enlarge(image: np.ndarray, scale: int = 4) -> np.ndarray:
    """Nearest-neighbour enlargement so a 60x80 image is visible on screen."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def png_bytes(picture) -> bytes:
    """A Pillow picture as PNG. Compression level 1: 4 ms instead of 17 for an 8-image grid, the
    file 20% larger; it goes to this page and its download button, not to an archive."""
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


# The Generate page's pictures depend only on the model folder and the choices, so they are
# computed once for every session; a page shows the cached PNG bytes as they are (Streamlit would
# otherwise encode the picture again on every run).
@st.cache_data(max_entries=CACHED_PICTURES, show_spinner=False)
def _grid_png(folder: str, sub_category: str, gender: str, seed: int, count: int, colour: str | None) -> bytes:
    generator, _ = _load_generator(folder)
    images = generator.generate(sub_category, gender, seed, count, colour)
    return png_bytes(image_grid(images, columns=min(count, 8), scale=2))


@st.cache_data(max_entries=CACHED_PICTURES, show_spinner=False)
def _strip_png(folder: str, start: tuple, end: tuple, steps: int) -> bytes:
    generator, _ = _load_generator(folder)
    return png_bytes(image_grid(generator.interpolate(start, end, steps), columns=steps, scale=2))


def generated_png(sub_category: str, gender: str, seed: int, count: int, colour: str | None = None,
                  generator: str = DEFAULT_GENERATOR) -> bytes:
    """`count` images of the generator variant `generator` for these choices (colour None: any),
    as a PNG grid of up to 8 columns."""
    return _grid_png(generator_folder(generator), sub_category, gender, seed, count, colour)


def interpolation_png(start: tuple, end: tuple, steps: int, generator: str = DEFAULT_GENERATOR) -> bytes:
    """The walk from (sub-category, gender, seed[, colour]) `start` to `end` in `steps` images, as a PNG strip."""
    return _strip_png(generator_folder(generator), start, end, steps)


def colour_choice(place, label: str, colours: Sequence[str]) -> str | None:
    """A Colour box in `place` (ANY_COLOUR first, then `colours`): the chosen colour, None for any."""
    chosen = place.selectbox(label, (ANY_COLOUR, *colours),
                             help="Any: each image gets a colour seen with the sub-category and gender, drawn by "
                                  "the seed.")
    return None if chosen == ANY_COLOUR else chosen


def dataset_examples(limit: int = 12) -> list[Path]:
    """A few photos of the local dataset (data/fashion-small), when it has been downloaded."""
    if not DATA_IMAGES.is_dir():
        return []
    # the folder's mtime is in the key: adding or removing files (a new download) changes it
    return _first_images(str(DATA_IMAGES), DATA_IMAGES.stat().st_mtime_ns, limit)


@st.cache_data(max_entries=4, show_spinner=False)
def _first_images(folder: str, mtime_ns: int, limit: int) -> list[Path]:
    """The first `limit` JPEGs of `folder` by name: listing ~44k files took every script run before."""
    return heapq.nsmallest(limit, Path(folder).glob("*.jpg"))


def read_example(path: Path) -> np.ndarray | None:
    """A dataset photo as a model input, or None after showing the user why it cannot be (a corrupt
    file in the download)."""
    try:
        return load_image(path)
    except ImageError as error:
        st.error(str(error))
        return None
