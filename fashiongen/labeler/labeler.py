"""`Labeler`: a trained classifier with its label schema, as users and the app call it."""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from fashiongen.batches import to_unit_float
from fashiongen.errors import ClassifierError
from fashiongen.files import (
    FileReadError,
    FileTooLargeError,
    atomic_write_bytes,
    atomic_write_text,
    json_type,
    read_bounded,
)
from fashiongen.imaging import IMAGE_SHAPE, ImageSource, load_image
from fashiongen.labeler.calibration import TEMPERATURE_RANGE, apply_temperature
from fashiongen.labeler.model import HeadAccuracy, has_softmax_heads
from fashiongen.labeler.outliers import (
    METHODS,
    OUTLIER_FILE,
    TEXTURE_LAYER,
    ImageSignals,
    MahalanobisStatistics,
    NeighbourBank,
    NotAProduct,
)
from fashiongen.model_folder import (
    CARD_FILE,
    LABELER,
    SCHEMA_FILE,
    ModelFolder,
    atomic_folder,
    card_json,
    folder_argument,
    shapes,
)
from fashiongen.schema import LabelSchema

MODEL_FILE = "classifier.keras"  # beside model_folder.SCHEMA_FILE and CARD_FILE
# temperatures and the not-a-product detector, fitted after training by scripts/calibrate_classifier.py
CALIBRATION_FILE = "labeler.json"
CALIBRATE_COMMAND = "python scripts/calibrate_classifier.py --model {folder}"
MAX_OUTLIER_BYTES = 64 * 2**20


@dataclass
class Calibration:
    """What is fitted on validation photos after training: a temperature per softmax head, and the
    not-a-product detector (None: the folder has none, and nothing is ever flagged)."""

    temperatures: dict[str, float] = field(default_factory=dict)
    not_a_product: NotAProduct | None = None


@dataclass
class Prediction:
    """One image's labels: each head's classes ranked by probability (by styles.csv column, in the
    schema's order), the raw scores, and whether the image looks like no product photo at all."""

    heads: dict[str, list[tuple[str, float]]]
    scores: np.ndarray
    not_a_product: bool = False
    outlier_score: float | None = None  # None: the model has no not-a-product detector

    @property
    def sub_category(self) -> list[tuple[str, float]]:
        return self.heads["subCategory"]

    @property
    def gender(self) -> list[tuple[str, float]]:
        return self.heads["gender"]

    def top(self, column: str) -> tuple[str, float]:
        """The most probable class of one head and its probability."""
        return self.heads[column][0]

    @property
    def top_sub_category(self) -> tuple[str, float]:
        return self.top("subCategory")

    @property
    def top_gender(self) -> tuple[str, float]:
        return self.top("gender")


@dataclass
class Analysis:
    """N images through the labeler: calibrated scores (N, schema.size), outlier scores and flags
    (N,; None without a detector), and the signals they were computed from."""

    scores: np.ndarray
    outlier_scores: np.ndarray | None
    not_a_product: np.ndarray
    signals: ImageSignals | None


class Labeler:
    """A trained classifier with its label schema: uint8 images in, ranked names out."""

    def __init__(self, model: keras.Model, schema: LabelSchema, card: dict | None = None,
                 calibration: Calibration | None = None) -> None:
        if model.output_shape[-1] != schema.size:
            raise ClassifierError(f"model has {model.output_shape[-1]} outputs, the schema {schema.size}")
        self.model = model
        self.schema = schema
        self.card = card or {}
        self.calibration = calibration or Calibration()
        self.softmax_heads = has_softmax_heads(model)
        names = {layer.name for layer in model.layers}
        # one call gives the scores and what the not-a-product scores read: pooled features, logits
        # and the texture statistics of a middle layer
        self._view = None
        if "features" in names:
            outputs = [model.get_layer("features").output, model.output]
            if TEXTURE_LAYER in names:
                middle = model.get_layer(TEXTURE_LAYER).output
                outputs.append(keras.ops.concatenate([keras.ops.mean(middle, axis=(1, 2)),
                                                      keras.ops.std(middle, axis=(1, 2))], axis=-1))
            self._view = keras.Model(model.input, outputs)
        self._head_weights = {column: model.get_layer(f"head_{column}").get_weights()
                              for column in schema.heads if f"head_{column}" in names}

    @classmethod
    def load(cls, folder: str | os.PathLike = LABELER.shipped) -> "Labeler":
        """Load `classifier.keras`, `labels.json` and (optional) `model_card.json` from `folder`, each
        checked: a file that is missing, unreadable, of the wrong shape or not fitting the others raises
        `ClassifierError` naming it and the command that retrains the folder."""
        folder = LABELER.open(folder)
        folder.require(MODEL_FILE, SCHEMA_FILE)
        schema, card = folder.schema(), folder.card()
        model = folder.keras_model(MODEL_FILE, {"HeadAccuracy": HeadAccuracy})
        if shapes(model.inputs) != [IMAGE_SHAPE]:
            raise folder.error(MODEL_FILE, f"takes inputs of shape {shapes(model.inputs)}, not one 80x60x3 image")
        outputs = shapes(model.outputs)
        if len(outputs) != 1 or len(outputs[0]) != 1:
            raise folder.error(MODEL_FILE, f"gives outputs of shape {outputs}, not one row of scores per image")
        if outputs[0][0] != schema.size:
            raise folder.error(SCHEMA_FILE, f"names {schema.size} labels, but {folder.path / MODEL_FILE} gives "
                                            f"{outputs[0][0]} scores")
        names = {layer.name for layer in model.layers}
        n_features = model.get_layer("features").output.shape[-1] if "features" in names else None
        n_texture = 2 * model.get_layer(TEXTURE_LAYER).output.shape[-1] if TEXTURE_LAYER in names else None
        calibration = load_calibration(folder, schema, n_features, n_texture, has_softmax_heads(model))
        return cls(model, schema, card, calibration)

    def as_judge(self, schema: LabelSchema, source: str = "classifier", colour: bool = False) -> keras.Model:
        """This classifier as the judge of a generator's images for `schema` (train_generator.py,
        fit_generator_prior.py): the scoring model, [0, 1] images in and sigmoid scores out, named
        "judge". A classifier of another schema raises, naming `source` (where it was loaded from).
        `colour`: a generator conditioned on colour is judged on its colour too, by this classifier's
        baseColour head, its columns in the generator's order after the paper's two heads."""
        if colour:
            return self._colour_judge(schema, source)
        if schema.extra_heads:
            raise ClassifierError(f"this judge scores the paper's two heads, and this generator is conditioned on "
                                  f"{', '.join(column for column, _ in schema.extra_heads)} too: judge its "
                                  "prior with fit_generator_prior.py --judge-colour, or train it with --no-colour")
        if self.schema.paper != schema:
            raise ClassifierError(f"the judge {source} uses another label schema than the generator")
        if self.schema == schema:
            return keras.Model(self.model.input, self.model.output, name="judge")
        # a catalog labeler judges the generator's heads: its first columns are the paper's
        paper = keras.layers.Lambda(lambda scores: scores[:, : schema.size], name="paper_scores")(self.model.output)
        return keras.Model(self.model.input, paper, name="judge")

    def _colour_judge(self, schema: LabelSchema, source: str) -> keras.Model:
        wanted = dict(schema.extra_heads).get("baseColour")
        if wanted is None or len(schema.extra_heads) > 1:
            raise ClassifierError("judging colour needs a generator conditioned on baseColour (only)")
        if self.schema.paper != schema.paper:
            raise ClassifierError(f"the judge {source} uses another label schema than the generator")
        have = self.schema.heads.get("baseColour")
        missing = [name for name in wanted if name not in (have or ())]
        if missing:
            raise ClassifierError(f"the judge {source} has no baseColour head for the generator's colours "
                                  f"{', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}: train a catalog "
                                  "labeler (train_classifier.py --heads catalog) to judge colour")
        start = self.schema.slices["baseColour"].start
        columns = list(range(schema.paper.size)) + [start + have.index(name) for name in wanted]
        judged = keras.layers.Lambda(lambda scores: keras.ops.take(scores, columns, axis=1),
                                     name="paper_and_colour_scores")(self.model.output)
        return keras.Model(self.model.input, judged, name="judge")

    def scores(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 (N, 80, 60, 3) -> float32 (N, schema.size) probabilities, calibrated when the model
        folder has temperatures."""
        return self.analyse(images, batch_size).scores

    def analyse(self, images: np.ndarray, batch_size: int = 256) -> Analysis:
        """uint8 (N, 80, 60, 3) -> calibrated scores, and the not-a-product scores and flags."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"expected uint8 images of shape (N, 80, 60, 3), got {images.dtype} {images.shape}")
        features, scores, texture = [], [], []
        for i in range(0, len(images), batch_size):
            batch = to_unit_float(images[i : i + batch_size])
            # predict_on_batch: the compiled graph without predict()'s per-call setup nor eager
            # layer-by-layer execution, much faster for a few images (docs/labeler.md)
            if self._view is None:
                scores.append(np.asarray(self.model.predict_on_batch(batch)))
            else:
                outputs = [np.asarray(output) for output in self._view.predict_on_batch(batch)]
                features.append(outputs[0])
                scores.append(outputs[1])
                texture.append(outputs[2] if len(outputs) > 2 else None)
        n = len(images)
        scores = np.concatenate(scores) if scores else np.zeros((0, self.schema.size), np.float32)
        for column, temperature in self.calibration.temperatures.items():
            part = self.schema.slices[column]
            scores[:, part] = apply_temperature(scores[:, part], temperature)
        signals = None
        if self._view is not None:
            pooled = np.concatenate(features) if features else np.zeros((0, self._view.outputs[0].shape[-1]))
            textures = None
            if len(self._view.outputs) > 2:
                textures = np.concatenate(texture) if texture else np.zeros((0, self._view.outputs[2].shape[-1]))
            logits = {column: pooled @ kernel + bias for column, (kernel, bias) in self._head_weights.items()}
            signals = ImageSignals(pooled, logits, scores[:, self.schema.slices["subCategory"]], textures)
        detector = self.calibration.not_a_product
        if detector is None or signals is None:
            return Analysis(scores, None, np.zeros(n, bool), signals)
        outlier_scores, flags = detector.flags(signals)
        return Analysis(scores, outlier_scores, flags, signals)

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """Every head's classes ranked with probabilities, and the not-a-product flag, per image."""
        analysis = self.analyse(images)
        return [Prediction(self.schema.decode(row), row, bool(analysis.not_a_product[i]),
                           None if analysis.outlier_scores is None else float(analysis.outlier_scores[i]))
                for i, row in enumerate(analysis.scores)]

    def label(self, source: ImageSource, name: str | None = None) -> Prediction:
        """One upload (path, bytes or file object), preprocessed exactly like the training data."""
        return self.predict(load_image(source, name=name))[0]

    def save(self, folder: str | os.PathLike, card: dict | None = None) -> None:
        """Write model, schema and card into a fresh sibling folder, then swap it in: a reader
        (or a crash) never sees half a model."""
        save_bundle(folder, self.model, self.schema, card if card is not None else self.card, self.calibration)


def save_bundle(folder: str | os.PathLike, model: keras.Model, schema: LabelSchema, card: dict,
                calibration: Calibration | None = None) -> None:
    with atomic_folder(folder) as staging:
        # an uncompiled view of the same layers: the optimizer's state would triple the file and is
        # not needed to label. (Not clone_model: Keras 3 recompiles a clone of a compiled model,
        # which fails on the unregistered HeadAccuracy metric, and copies every weight.)
        export = keras.Model(model.input, model.output, name=model.name)
        export.save(staging / MODEL_FILE)
        schema.save(staging / SCHEMA_FILE)
        (staging / CARD_FILE).write_text(card_json(card))
        if calibration is not None and (calibration.temperatures or calibration.not_a_product):
            save_calibration(staging, calibration)


def save_calibration(folder: str | os.PathLike, calibration: Calibration) -> None:
    """Write `labeler.json` (and `outliers.npz` when the detector has statistics) into `folder`."""
    folder = Path(folder)
    detector = calibration.not_a_product
    config = {"temperatures": calibration.temperatures,
              "not_a_product": None if detector is None else detector.to_config()}
    stale = folder / OUTLIER_FILE
    if (detector is None or detector.statistics is None) and stale.exists():
        stale.unlink()  # another detector's statistics would no longer match labeler.json
    if detector is not None and isinstance(detector.statistics, MahalanobisStatistics):
        atomic_write_bytes(folder / OUTLIER_FILE, _npz_bytes(means=detector.statistics.means,
                                                             whitening=detector.statistics.whitening))
    elif detector is not None and isinstance(detector.statistics, NeighbourBank):
        atomic_write_bytes(folder / OUTLIER_FILE, _npz_bytes(bank=detector.statistics.bank))
    atomic_write_text(folder / CALIBRATION_FILE, json.dumps(config, indent=2) + "\n")


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_calibration(folder: ModelFolder, schema: LabelSchema, n_features: int | None,
                     n_texture: int | None, softmax_heads: bool = True) -> Calibration:
    """The folder's `labeler.json` (and `outliers.npz`), each value checked; no file: nothing fitted."""
    if not (folder.path / CALIBRATION_FILE).exists():
        return Calibration()
    fix = "Refit it with: " + CALIBRATE_COMMAND.format(folder=folder_argument(folder.path, LABELER.shipped))
    config = folder.json_object(CALIBRATION_FILE, {"temperatures": dict}, fix)
    temperatures = {}
    for column, value in config["temperatures"].items():
        if column not in schema.heads:
            raise folder.error(CALIBRATION_FILE, f"has a temperature for {str(column)[:40]!r}, which is no head", fix)
        low, high = TEMPERATURE_RANGE
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise folder.error(CALIBRATION_FILE, f"has temperature {json_type(value)} for {column}, not a number "
                                                 f"from {low} to {high}", fix)
        if not softmax_heads:
            raise folder.error(CALIBRATION_FILE, "has temperatures, but the model's scores are sigmoids, not "
                                                 "softmax heads", fix)
        temperatures[column] = float(value)
    detector = config.get("not_a_product")
    if detector is None:
        return Calibration(temperatures)
    if not isinstance(detector, dict) or detector.get("method") not in METHODS:
        raise folder.error(CALIBRATION_FILE, f"has not_a_product = {json_type(detector)[:60]}, not an object with "
                                             f"a method of {', '.join(METHODS)}", fix)
    for key in ("threshold", "false_flag_rate"):
        value = detector.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise folder.error(CALIBRATION_FILE, f"has not_a_product.{key} = {json_type(value)}, not a number", fix)
    statistics = None
    if detector["method"] == "mahalanobis":
        statistics = _load_statistics(folder, n_features, fix)
    elif detector["method"] == "nearest_neighbour":
        statistics = _load_bank(folder, n_texture, fix)
    return Calibration(temperatures, NotAProduct(detector["method"], float(detector["threshold"]),
                                                 float(detector["false_flag_rate"]), statistics))


def _outlier_arrays(folder: ModelFolder, names: tuple[str, ...], fix: str) -> list[np.ndarray]:
    folder.require(OUTLIER_FILE)
    try:
        data = read_bounded(folder.path / OUTLIER_FILE, MAX_OUTLIER_BYTES, label="it")
        # a compressed member could unpack to far more than the file: refuse before reading it
        unpacked = sum(member.file_size for member in zipfile.ZipFile(io.BytesIO(data)).infolist())
        if unpacked > MAX_OUTLIER_BYTES:
            raise ValueError(f"its arrays unpack to {unpacked / 2**20:.0f} MB, over {MAX_OUTLIER_BYTES // 2**20} MB")
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            return [np.asarray(saved[name], np.float32) for name in names]
    except (FileTooLargeError, FileReadError, OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise folder.error(OUTLIER_FILE, f"is unreadable or not the detector's statistics ({error})", fix) from None


def _load_bank(folder: ModelFolder, n_texture: int | None, fix: str) -> NeighbourBank:
    if n_texture is None:
        raise folder.error(CALIBRATION_FILE, f"names the nearest_neighbour detector, but the model has no "
                                             f"{TEXTURE_LAYER} layer", fix)
    (bank,) = _outlier_arrays(folder, ("bank",), fix)
    if bank.ndim != 2 or bank.shape[1] != n_texture or len(bank) == 0 or not np.isfinite(bank).all():
        raise folder.error(OUTLIER_FILE, f"holds a bank of shape {bank.shape}, not finite (M, {n_texture}) rows for "
                                         f"the model's {TEXTURE_LAYER} statistics", fix)
    return NeighbourBank(bank.astype(np.float16))


def _load_statistics(folder: ModelFolder, n_features: int | None, fix: str) -> MahalanobisStatistics:
    means, whitening = _outlier_arrays(folder, ("means", "whitening"), fix)
    if n_features is None:
        raise folder.error(CALIBRATION_FILE, "names the mahalanobis detector, but the model has no features layer", fix)
    width = n_features
    if means.ndim != 2 or len(means) == 0 or means.shape[1] != width or whitening.shape != (width, width):
        raise folder.error(OUTLIER_FILE, f"holds means {means.shape} and whitening {whitening.shape}, not (K, {width}) "
                                         f"and ({width}, {width}) for the model's {width} features", fix)
    if not (np.isfinite(means).all() and np.isfinite(whitening).all()):
        raise folder.error(OUTLIER_FILE, "holds values that are not finite", fix)
    return MahalanobisStatistics(means, whitening)
