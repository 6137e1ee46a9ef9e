"""The labeler's networks, their loss and their per-head accuracy metric.

`compact` and `mobilenet` end in one softmax per head of the label schema, trained with each head's
categorical cross-entropy (a photo whose class is outside a head has zeros there and adds nothing);
`paper` ends in the paper's sigmoids over every column, trained with binary cross-entropy.
"""

from __future__ import annotations

import socket
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from fashiongen.errors import ClassifierError
from fashiongen.imaging import IMAGE_SHAPE
from fashiongen.schema import LabelSchema

ARCHITECTURES = ("compact", "paper", "mobilenet")


DEFAULT_ARCH = "compact"
DEFAULT_WIDTH = 32  # the compact arch's first-stage filters
DEFAULT_SHIFT = 0.05  # the compact arch's largest training shift, as a share of the image
HEAD_SETS = ("catalog", "paper")  # every head of styles.csv, or the paper's sub-category and gender


# seconds a stalled connection may block the ImageNet download (Keras' urlretrieve has no timeout)
DOWNLOAD_TIMEOUT = 30.0


def build_classifier(
    schema: LabelSchema,
    arch: str = DEFAULT_ARCH,
    backbone_weights: str | None = None,
    alpha: float = 1.0,
    width: int = DEFAULT_WIDTH,
    shift: float = DEFAULT_SHIFT,
    sigmoids: bool = False,
    anti_alias: bool = False,
) -> keras.Model:
    """A compiled-ready (not compiled) functional model: image in [0, 1] -> `schema.size` scores,
    named "scores": each head's softmax side by side, or (arch paper) a sigmoid per column.

    `backbone_weights` (MobileNetV2 archs only): None, "imagenet" (downloaded by Keras) or a
    path to a local .h5 of MobileNetV2 weights without the top. `width` (arch compact): the first
    stage's filters, doubled at each later stage; `shift` (arch compact): the largest random shift
    in training, as a share of the image (0: flips only, the recipe of the labeler shipped in November).
    `sigmoids`: end in a sigmoid per column, as the paper (and arch paper always) does, instead of a
    softmax per head. `anti_alias` (arch compact): blur before every downsampling (`compact_blocks`).
    """
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
        x = _compact_features(inputs, width, shift, anti_alias)
    else:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    if arch == "paper" or sigmoids:
        outputs = layers.Dense(schema.size, activation="sigmoid", name="scores")(x)
    else:
        heads = [layers.Dense(len(names), activation="softmax", name=f"head_{column}")(x)
                 for column, names in schema.heads.items()]
        outputs = layers.Concatenate(name="scores")(heads)
    return keras.Model(inputs, outputs, name=f"classifier_{arch}")


def has_softmax_heads(model: keras.Model) -> bool:
    """Whether `model` ends in one softmax per head (else: the paper's sigmoid per column); a model
    that wraps the classifier (robust.AdversarialTraining) is looked through."""
    # every schema has a sub-category head (the paper arch's "head_dense" is no head)
    return any(layer.name == "head_subCategory" or (isinstance(layer, keras.Model) and has_softmax_heads(layer))
               for layer in model.layers)


def classifier_loss(model: keras.Model, schema: LabelSchema) -> keras.losses.Loss:
    """Each head's cross-entropy for softmax heads, binary cross-entropy (the paper's) for sigmoids."""
    return HeadsCrossentropy(schema.slices) if has_softmax_heads(model) else keras.losses.BinaryCrossentropy()


class HeadsCrossentropy(keras.losses.Loss):
    """The sum over heads of each head's categorical cross-entropy. A row whose label part for a
    head is all zeros (its class is not in the head) adds nothing to that head."""

    def __init__(self, slices: dict[str, slice], name: str = "heads_crossentropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.bounds = [(part.start, part.stop) for part in slices.values()]

    def call(self, y_true, y_pred):
        y_pred = ops.clip(y_pred, 1e-7, 1.0)
        return sum(-ops.sum(y_true[:, a:b] * ops.log(y_pred[:, a:b]), axis=1) for a, b in self.bounds)

    def get_config(self):
        return {**super().get_config(), "slices": {str(i): [a, b] for i, (a, b) in enumerate(self.bounds)}}


def _compact_features(inputs, width: int, shift: float, anti_alias: bool = False):
    """The `compact` arch below its scores: flips and small shifts (training only), 4 stages of two
    3x3 convolutions, pooled features, dropout."""
    # only active in training; shifted-in pixels are white, like the photos' backgrounds
    x = layers.RandomFlip("horizontal", name="augment_flip")(inputs)
    if shift > 0:
        x = layers.RandomTranslation(shift, shift, fill_mode="constant", fill_value=1.0, name="augment_shift")(x)
    x = compact_blocks(x, width, anti_alias=anti_alias)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return x


def compact_blocks(x, width: int, batch_norm: bool = True, anti_alias: bool = False):
    """The compact arch's 4 stages of two 3x3 convolutions (conv{stage}_{n}, relu{stage}_{n}),
    max-pooled between stages. Without `batch_norm`: the perceptual distance's random network.

    `anti_alias`: Zhang 2019's recipe ("Making convolutional networks shift-invariant again"): the
    first convolution runs at full resolution and every downsampling is a fixed binomial blur
    before the stride (max-pooling keeps its max, at stride 1). Strides without a blur fold fine
    patterns into coarse features, which a decoder trained against them can exploit."""
    for stage, filters in enumerate((width, 2 * width, 4 * width, 8 * width), start=1):
        for conv in (1, 2):
            # a stride-2 first convolution: 4x less compute than full resolution, ~same accuracy
            stride = 2 if (stage, conv) == (1, 1) and not anti_alias else 1
            x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"conv{stage}_{conv}")(x)
            if batch_norm:
                x = layers.BatchNormalization(momentum=0.9, name=f"bn{stage}_{conv}")(x)
            x = layers.ReLU(name=f"relu{stage}_{conv}")(x)
            if anti_alias and (stage, conv) == (1, 1):
                x = _blur_pool(x, "blur1_1")
        if stage < 4:  # stage 4 works on 5x3 (5x4 anti-aliased) already; pooling further would discard layout
            if anti_alias:
                x = layers.MaxPooling2D(2, strides=1, padding="same", name=f"pool{stage}")(x)
                x = _blur_pool(x, f"blur{stage}")
            else:
                x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    return x


def _blur_pool(x, name: str):
    """A 3x3 binomial blur ([1, 2, 1] outer itself, summing to 1) per channel, then stride 2; fixed
    weights, saved with the model like any layer's. Zero-padded at the edges, where Zhang reflects."""
    blur = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, trainable=False, name=name)
    x = blur(x)
    taps = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
    blur.set_weights([np.tile(taps[:, :, None, None], (1, 1, x.shape[-1], 1)).astype("float32")])
    return x


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
    # Keras 3 builds a model between two tensors of a graph: the layers after "features", shared
    return extractor, keras.Model(features.output, model.output, name="head")


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


# the paper's heads keep their first names, so older model cards and logs read the same
METRIC_NAMES = {"subCategory": "sub_category_accuracy", "gender": "gender_accuracy"}


def training_metrics(schema: LabelSchema) -> list[keras.metrics.Metric]:
    return [
        keras.metrics.AUC(name="auc"),  # micro AUC over every output, the paper's metric
        *(HeadAccuracy(part.start, part.stop, name=METRIC_NAMES.get(column, f"{column}_accuracy"))
          for column, part in schema.slices.items()),
    ]


def compile_classifier(
    model: keras.Model,
    schema: LabelSchema,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
    steps_per_execution: int = 1,
) -> None:
    """Adam with AUC and per-head accuracy, and `classifier_loss`.

    `steps_per_execution` > 1 runs that many steps per compiled call: for a head trained on
    cached features each step is tiny, and the per-call overhead would dominate.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=classifier_loss(model, schema),
        metrics=training_metrics(schema),
        steps_per_execution=steps_per_execution,
    )
