"""`Labeler`: a trained classifier with its label schema, as users and the app call it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np

from fashiongen.batches import to_unit_float
from fashiongen.errors import ClassifierError
from fashiongen.imaging import IMAGE_SHAPE, ImageSource, load_image
from fashiongen.labeler.model import HeadAccuracy
from fashiongen.model_folder import CARD_FILE, LABELER, SCHEMA_FILE, atomic_folder, card_json, shapes
from fashiongen.schema import LabelSchema

MODEL_FILE = "classifier.keras"  # beside model_folder.SCHEMA_FILE and CARD_FILE






@dataclass
class Prediction:
    """One image's labels: each head ranked by probability, and the raw 25 scores."""

    sub_category: list[tuple[str, float]]
    gender: list[tuple[str, float]]
    scores: np.ndarray

    @property
    def top_sub_category(self) -> tuple[str, float]:
        return self.sub_category[0]

    @property
    def top_gender(self) -> tuple[str, float]:
        return self.gender[0]


class Labeler:
    """A trained classifier with its label schema: uint8 images in, ranked names out."""

    def __init__(self, model: keras.Model, schema: LabelSchema, card: dict | None = None) -> None:
        if model.output_shape[-1] != schema.size:
            raise ClassifierError(f"model has {model.output_shape[-1]} outputs, the schema {schema.size}")
        self.model = model
        self.schema = schema
        self.card = card or {}

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
        return cls(model, schema, card)

    def as_judge(self, schema: LabelSchema, source: str = "classifier") -> keras.Model:
        """This classifier as the judge of a generator's images for `schema` (train_generator.py,
        fit_generator_prior.py): the scoring model, [0, 1] images in and sigmoid scores out, named
        "judge". A classifier of another schema raises, naming `source` (where it was loaded from)."""
        if self.schema != schema:
            raise ClassifierError(f"the judge {source} uses another label schema than the generator")
        return keras.Model(self.model.input, self.model.output, name="judge")

    def scores(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 (N, 80, 60, 3) -> float32 (N, 25) sigmoid scores."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"expected uint8 images of shape (N, 80, 60, 3), got {images.dtype} {images.shape}")
        chunks = [
            # predict_on_batch: the compiled graph without predict()'s per-call setup nor eager
            # layer-by-layer execution, much faster for a few images (docs/labeler.md)
            np.asarray(self.model.predict_on_batch(to_unit_float(images[i : i + batch_size])))
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.schema.size), np.float32)

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """Ranked sub-categories and genders with probabilities for each image."""
        results = []
        for row in self.scores(images):
            ranked = self.schema.decode(row)
            results.append(Prediction(ranked["subCategory"], ranked["gender"], row))
        return results

    def label(self, source: ImageSource, name: str | None = None) -> Prediction:
        """One upload (path, bytes or file object), preprocessed exactly like the training data."""
        return self.predict(load_image(source, name=name))[0]

    def save(self, folder: str | os.PathLike, card: dict | None = None) -> None:
        """Write model, schema and card into a fresh sibling folder, then swap it in: a reader
        (or a crash) never sees half a model."""
        save_bundle(folder, self.model, self.schema, card if card is not None else self.card)


def save_bundle(folder: str | os.PathLike, model: keras.Model, schema: LabelSchema, card: dict) -> None:
    with atomic_folder(folder) as staging:
        # an uncompiled view of the same layers: the optimizer's state would triple the file and is
        # not needed to label. (Not clone_model: Keras 3 recompiles a clone of a compiled model,
        # which fails on the unregistered HeadAccuracy metric, and copies every weight.)
        export = keras.Model(model.input, model.output, name=model.name)
        export.save(staging / MODEL_FILE)
        schema.save(staging / SCHEMA_FILE)
        (staging / CARD_FILE).write_text(card_json(card))
