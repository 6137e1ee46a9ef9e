"""What the Streamlit pages share: models loaded once per process, charts, and error panels.

Pages stay thin: they call these functions and the library, and draw.
"""

from __future__ import annotations

import gc
import io
import os
from pathlib import Path

import numpy as np
import streamlit as st

from fashiongen import classifier, vae
from fashiongen.imaging import ImageError, load_image

DATA_IMAGES = Path("data") / "fashion-small" / "images"
# Environment variables naming other model folders; read on every call, and the folder is the cache key,
# so another folder is really loaded.
CLASSIFIER_DIR_VARIABLE = "FASHIONGEN_CLASSIFIER_DIR"
GENERATOR_DIR_VARIABLE = "FASHIONGEN_GENERATOR_DIR"


def model_folder(variable: str, shipped: Path) -> str:
    """The folder named by the environment `variable`, or the shipped one."""
    return os.environ.get(variable) or str(shipped)


def _out_of_collections(model):
    """`model`, with every object alive now moved out of the garbage collector's reach (gc.freeze).

    Streamlit runs a full collection after every script run (runner.postScriptGC). With TensorFlow,
    Keras and the models loaded, that walked about 456,000 objects for 200 ms while holding the GIL,
    which stalled the messages on their way to the browser: the Label interaction took 605 ms
    instead of 181 (p50, scripts/benchmark.py --sections app). The models live as long as the process."""
    gc.collect()
    gc.freeze()
    return model


@st.cache_resource(show_spinner="Loading the labeler…")
def _load_labeler(folder: str) -> tuple[classifier.Labeler | None, str | None]:
    try:
        return _out_of_collections(classifier.Labeler.load(folder)), None
    except classifier.ClassifierError as error:
        return None, str(error)  # names the file and the command that retrains into `folder`


@st.cache_resource(show_spinner="Loading the generator…")
def _load_generator(folder: str) -> tuple[vae.Generator | None, str | None]:
    try:
        return _out_of_collections(vae.Generator.load(folder)), None
    except vae.GeneratorError as error:
        return None, str(error)


def load_labeler() -> tuple[classifier.Labeler | None, str | None]:
    """(labeler, None), or (None, why not and how to retrain) when its model is missing or broken.
    Loaded once per process and folder (FASHIONGEN_CLASSIFIER_DIR, else the shipped model)."""
    return _load_labeler(model_folder(CLASSIFIER_DIR_VARIABLE, classifier.PRETRAINED_DIR))


def load_generator() -> tuple[vae.Generator | None, str | None]:
    """(generator, None), or (None, why not and how to retrain); FASHIONGEN_GENERATOR_DIR, else the shipped one."""
    return _load_generator(model_folder(GENERATOR_DIR_VARIABLE, vae.PRETRAINED_DIR))


def labeler_or_stop() -> classifier.Labeler:
    labeler, problem = load_labeler()
    if labeler is None:
        st.error(f"The labeler cannot be loaded: {problem}")
        st.stop()
    return labeler


def generator_or_stop() -> vae.Generator:
    generator, problem = load_generator()
    if generator is None:
        st.error(f"The generator cannot be loaded: {problem}")
        st.stop()
    return generator


def read_upload(upload) -> np.ndarray | None:
    """An uploaded file as a model input, or None after showing the user why it cannot be."""
    try:
        return load_image(upload.getvalue(), name=upload.name)
    except ImageError as error:
        st.error(str(error))
        return None


def probability_chart(prediction: classifier.Prediction):
    """Both heads' probabilities as horizontal bars, highest on top, in one plotly figure: one
    chart draws in the browser in about half the time of two. Built from plain layout dicts:
    make_subplots and the update_* calls took 17 ms per figure against 3.6 ms this way, on every
    label interaction's server run."""
    import plotly.graph_objects as go

    heads = (("Sub-category", prediction.sub_category), ("Gender", prediction.gender))
    layout = dict(height=60 + 22 * max(len(ranked) for _, ranked in heads), margin=dict(l=10, r=10, t=40, b=10),
                  showlegend=False, annotations=[])
    traces = []
    for column, ((title, ranked), domain) in enumerate(zip(heads, ([0.0, 0.39], [0.61, 1.0])), start=1):
        suffix = "" if column == 1 else str(column)  # plotly names the axes x, y, x2, y2
        names = [name for name, _ in ranked][::-1]
        values = [probability for _, probability in ranked][::-1]
        traces.append(go.Bar(x=values, y=names, orientation="h", name=title, text=[f"{v:.0%}" for v in values],
                             textposition="outside", marker_color="#3b6ea5", xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
        layout[f"xaxis{suffix}"] = dict(domain=domain, range=[0, 1.3], tickformat=".0%", anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = dict(domain=[0.0, 1.0], anchor=f"x{suffix}")
        layout["annotations"].append(dict(text=title, x=sum(domain) / 2, y=1.0, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=16)))
    return go.Figure(data=traces, layout=layout)


def enlarge(image: np.ndarray, scale: int = 4) -> np.ndarray:
    """Nearest-neighbour enlargement so a 60x80 image is visible on screen."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def png_bytes(picture) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def dataset_examples(limit: int = 12) -> list[Path]:
    """A few photos of the local dataset (data/fashion-small), when it has been downloaded."""
    if not DATA_IMAGES.is_dir():
        return []
    return sorted(DATA_IMAGES.glob("*.jpg"))[:limit]
