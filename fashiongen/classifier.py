"""The labeler: builds, trains, saves, loads and runs the sub-category + gender classifier.

Architectures (`--arch`):
- `paper`: the paper's MobileNetV2 (frozen backbone, ImageNet weights in the paper) ->
  GlobalAveragePooling2D -> Dense(1024, relu) -> Dense(25, sigmoid).
- `compact`: an 8-convolution CNN trained from scratch (the default: no download needed).
- `mobilenet`: MobileNetV2 (alpha 0.35) trained whole from scratch.
Every model takes float32 images in [0, 1] of shape (80, 60, 3) and outputs 25 sigmoid scores
(20 sub-categories, then 5 genders, in the order of the saved `LabelSchema`). Preprocessing for
the backbone (scaling to [-1, 1]) is inside the model.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
import keras
import numpy as np
from keras import layers, ops

from fashiongen.batches import to_unit_float
from fashiongen.data import LabelSchema
from fashiongen.imaging import IMAGE_SHAPE, ImageSource, load_image
from fashiongen.model_folder import CARD_FILE, SCHEMA_FILE, ModelFolderError, ModelKind, atomic_folder, card_json, shapes

ARCHITECTURES = ("compact", "paper", "mobilenet")
DEFAULT_ARCH = "compact"
MODEL_FILE = "classifier.keras"  # beside model_folder.SCHEMA_FILE and CARD_FILE
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained" / "classifier"
# seconds a stalled connection may block the ImageNet download (Keras' urlretrieve has no timeout)
DOWNLOAD_TIMEOUT = 30.0


class ClassifierError(ModelFolderError):
    """A model that cannot be built or loaded; the message names the file and the fix."""


KIND = ModelKind("train_classifier.py", PRETRAINED_DIR, ClassifierError)
retrain_command = KIND.retrain_command  # what a missing or broken classifier folder suggests


# ----------------------------------------------------------------------------- architectures


def build_classifier(
    n_sub_categories: int,
    n_genders: int,
    arch: str = DEFAULT_ARCH,
    backbone_weights: str | None = None,
    alpha: float = 1.0,
) -> keras.Model:
    """A compiled-ready (not compiled) functional model: image in [0, 1] -> 25 scores.

    `backbone_weights` (MobileNetV2 archs only): None, "imagenet" (downloaded by Keras) or a
    path to a local .h5 of MobileNetV2 weights without the top.
    """
    n_outputs = n_sub_categories + n_genders
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    if arch == "paper":
        backbone = _mobilenet_backbone(backbone_weights, alpha)
        backbone.trainable = False  # the paper trains only the new head
        x = layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(inputs)
        x = backbone(x, training=False)
        x = layers.GlobalAveragePooling2D(name="features")(x)
        x = layers.Dense(1024, activation="relu", name="head_dense")(x)
    elif arch == "mobilenet":
        backbone = _mobilenet_backbone(backbone_weights, 0.35 if alpha == 1.0 else alpha)
        _speed_up_batchnorm(backbone)
        x = layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(inputs)
        x = backbone(x)
        x = layers.GlobalAveragePooling2D(name="features")(x)
        x = layers.Dropout(0.2, name="dropout")(x)
    elif arch == "compact":
        x = layers.RandomFlip("horizontal", name="augment_flip")(inputs)  # only active in training
        for stage, filters in enumerate((32, 64, 128, 256), start=1):
            for conv in (1, 2):
                # a stride-2 first convolution: 4x less compute than full resolution, ~same accuracy
                stride = 2 if (stage, conv) == (1, 1) else 1
                x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"conv{stage}_{conv}")(x)
                x = layers.BatchNormalization(momentum=0.9, name=f"bn{stage}_{conv}")(x)
                x = layers.ReLU(name=f"relu{stage}_{conv}")(x)
            if stage < 4:  # stage 4 works on 5x4 already; pooling further would discard layout
                x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        x = layers.GlobalAveragePooling2D(name="features")(x)
        x = layers.Dropout(0.3, name="dropout")(x)
    else:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    outputs = layers.Dense(n_outputs, activation="sigmoid", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"classifier_{arch}")


def _mobilenet_backbone(weights: str | None, alpha: float) -> keras.Model:
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ClassifierError(f"MobileNetV2 weights file {weights} does not exist.")
    previous_timeout = socket.getdefaulttimeout()
    if weights == "imagenet" and previous_timeout is None:
        # a firewall that drops packets would otherwise hang the download for minutes or forever
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        return keras.applications.MobileNetV2(
            input_shape=IMAGE_SHAPE, alpha=alpha, include_top=False, weights=weights
        )
    except Exception as error:  # network errors come in many types (URLError, OSError, HTTPError...)
        if weights == "imagenet":
            raise ClassifierError(
                "Could not download the ImageNet weights for MobileNetV2 "
                f"({type(error).__name__}: {error}). Work online, pass a local weights file with "
                "--backbone-weights PATH.h5, or train without them (--backbone-weights none)."
            ) from error
        raise ClassifierError(f"Could not build MobileNetV2 with weights {weights!r}: {error}") from error
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _speed_up_batchnorm(model: keras.Model, momentum: float = 0.9) -> None:
    # Keras' MobileNetV2 uses momentum 0.999: from scratch its moving averages lag the weights by
    # ~1000 steps, so validation accuracy stays near chance for epochs while training loss falls.
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum


def split_at_features(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(image -> features, features -> scores): train a frozen backbone's head on cached features."""
    features = model.get_layer("features")
    extractor = keras.Model(model.input, features.output, name="feature_extractor")
    head_input = keras.Input(features.output.shape[1:], name="features_in")
    x = head_input
    after = model.layers[model.layers.index(features) + 1 :]
    for layer in after:
        x = layer(x)
    return extractor, keras.Model(head_input, x, name="head")


# ----------------------------------------------------------------------------- metrics


class HeadAccuracy(keras.metrics.Metric):
    """Top-1 accuracy of one head (a slice of the 25 outputs), on rows that have a label there."""

    def __init__(self, start: int, stop: int, name: str, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.start, self.stop = start, stop
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = y_true[:, self.start : self.stop]
        guess = y_pred[:, self.start : self.stop]
        labelled = ops.cast(ops.sum(truth, axis=1) > 0, "float32")
        if sample_weight is not None:  # weight 0: a row that does not count (e.g. batch padding)
            labelled = labelled * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        hit = ops.cast(ops.argmax(truth, axis=1) == ops.argmax(guess, axis=1), "float32") * labelled
        self.correct.assign_add(ops.sum(hit))
        self.count.assign_add(ops.sum(labelled))

    def result(self):
        return ops.divide_no_nan(self.correct, self.count)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


def training_metrics(schema: LabelSchema) -> list[keras.metrics.Metric]:
    n_sub = len(schema.sub_categories)
    return [
        keras.metrics.AUC(name="auc"),  # micro AUC over the 25 outputs, the paper's metric
        HeadAccuracy(0, n_sub, name="sub_category_accuracy"),
        HeadAccuracy(n_sub, schema.size, name="gender_accuracy"),
    ]


# ----------------------------------------------------------------------------- the labeler


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
    def load(cls, folder: str | os.PathLike = PRETRAINED_DIR) -> "Labeler":
        """Load `classifier.keras`, `labels.json` and (optional) `model_card.json` from `folder`, each
        checked: a file that is missing, unreadable, of the wrong shape or not fitting the others raises
        `ClassifierError` naming it and the command that retrains the folder."""
        folder = KIND.open(folder)
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
            # predict_on_batch runs the compiled graph without predict()'s per-call setup (~60x
            # faster for one image) nor eager layer-by-layer execution (~8x)
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


def compile_classifier(
    model: keras.Model,
    schema: LabelSchema,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
    steps_per_execution: int = 1,
) -> None:
    """Adam + binary cross-entropy, as in the paper, with AUC and per-head accuracy.

    `steps_per_execution` > 1 runs that many steps per compiled call: for a head trained on
    cached features each step is tiny, and the per-call overhead would dominate.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=training_metrics(schema),
        steps_per_execution=steps_per_execution,
    )

