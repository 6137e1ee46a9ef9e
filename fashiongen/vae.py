"""The generator: a conditional variational autoencoder (CVAE) that reconstructs and draws products.

Architectures (`--arch`):
- `paper`: the paper's CVAE. Encoder: 4 blocks of BatchNormalization -> Conv2D(3, relu) ->
  MaxPooling2D(3) with 8, 16, 32, 64 filters -> Dense(150, selu) -> Dense(100, selu) -> mean and
  log-variance (100 each). The sampled code is concatenated with the frozen classifier's 25
  scores for the image; decoder Dense(100, selu) -> Dense(150, selu) -> Dense(80*60*3, sigmoid).
- `conv` (default): convolutional encoder and transposed-convolution decoder, the one-hot labels
  fed to both, and a KL weight that warms up from 0 to 1 at the start of training. It generates
  from a `LatentPrior` fitted after training (one Gaussian per label pair) instead of N(0, I).

Loss, as in Géron's Keras VAE that the paper scaled up: reconstruction = binary cross-entropy
averaged over all 80*60*3 values; latent = -0.5 * sum(1 + log_var - exp(log_var) - mean^2) over
the latent dims, averaged over the batch and divided by 80*60*3. The tracked `loss` is always their
plain sum (the paper's number); the `conv` arch optimises reconstruction + kl_weight * latent.
Rounded accuracy = mean(round(x) == round(x_hat)).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from fashiongen.batches import to_unit_float
from fashiongen.data import LabelSchema, atomic_write_bytes
from fashiongen.imaging import IMAGE_HEIGHT, IMAGE_SHAPE, IMAGE_WIDTH
from fashiongen.model_folder import (CARD_FILE, SCHEMA_FILE, ModelFolder, ModelFolderError, ModelKind, atomic_folder,
                                     card_json, folder_argument, shapes)

ARCHITECTURES = ("conv", "paper")
DEFAULT_ARCH = "conv"
PIXEL_VALUES = IMAGE_HEIGHT * IMAGE_WIDTH * 3
# beside model_folder.SCHEMA_FILE and CARD_FILE
ENCODER_FILE, DECODER_FILE, CONFIG_FILE = "encoder.keras", "decoder.keras", "generator.json"
PRIOR_FILE = "prior.npz"
LOG_VAR_LIMIT = 10.0  # conv arch: log-variances are capped at 10 in training
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained" / "generator"


class GeneratorError(ModelFolderError):
    """A generator that cannot be loaded or asked for; the message names the file or valid names."""


KIND = ModelKind("train_generator.py", PRETRAINED_DIR, GeneratorError)
retrain_command = KIND.retrain_command  # what a missing or broken generator folder suggests


# ----------------------------------------------------------------------------- architectures


def build_paper_encoder(latent_dim: int = 100) -> keras.Model:
    """image -> (mean, log_var); the paper's encoder sees no labels."""
    image = keras.Input(IMAGE_SHAPE, name="image")
    x = image
    for block, filters in enumerate((8, 16, 32, 64), start=1):
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.MaxPooling2D(3, padding="same", name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(150, activation="selu", name="dense150")(x)
    x = layers.Dense(100, activation="selu", name="dense100")(x)
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_var = layers.Dense(latent_dim, name="log_var")(x)
    return keras.Model(image, [mean, log_var], name="paper_encoder")


def build_paper_decoder(latent_dim: int, n_labels: int) -> keras.Model:
    """(code, labels) -> image, through Dense(100) and Dense(150) selu layers."""
    code = keras.Input((latent_dim,), name="code")
    labels = keras.Input((n_labels,), name="labels")
    x = layers.Concatenate(name="code_and_labels")([code, labels])
    x = layers.Dense(100, activation="selu", name="dense100")(x)
    x = layers.Dense(150, activation="selu", name="dense150")(x)
    x = layers.Dense(PIXEL_VALUES, activation="sigmoid", name="pixels")(x)
    image = layers.Reshape(IMAGE_SHAPE, name="image")(x)
    return keras.Model([code, labels], image, name="paper_decoder")


def build_conv_encoder(latent_dim: int, n_labels: int) -> keras.Model:
    """(image, labels) -> (mean, log_var): four stride-2 convolutions, labels joined before the dense layer."""
    image = keras.Input(IMAGE_SHAPE, name="image")
    labels = keras.Input((n_labels,), name="labels")
    x = image
    for block, filters in enumerate((32, 64, 128, 256), start=1):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"conv{block}")(x)
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        x = layers.LeakyReLU(0.2, name=f"act{block}")(x)
    x = layers.Flatten(name="flatten")(x)  # 5 x 4 x 256
    x = layers.Concatenate(name="features_and_labels")([x, labels])
    x = layers.Dense(256, name="dense")(x)
    x = layers.LeakyReLU(0.2, name="dense_act")(x)
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_var = layers.Dense(latent_dim, name="log_var")(x)
    return keras.Model([image, labels], [mean, log_var], name="conv_encoder")


def build_conv_decoder(latent_dim: int, n_labels: int) -> keras.Model:
    """(code, labels) -> image: 5x4x256 grown by four stride-2 transposed convolutions to 80x64,
    then cropped to 80x60."""
    code = keras.Input((latent_dim,), name="code")
    labels = keras.Input((n_labels,), name="labels")
    x = layers.Concatenate(name="code_and_labels")([code, labels])
    x = layers.Dense(5 * 4 * 256, name="dense")(x)
    x = layers.LeakyReLU(0.2, name="dense_act")(x)
    x = layers.Reshape((5, 4, 256), name="grid")(x)
    for block, filters in enumerate((128, 64, 32, 16), start=1):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name=f"deconv{block}")(x)
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        x = layers.LeakyReLU(0.2, name=f"act{block}")(x)
    x = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="pixels")(x)  # 80 x 64
    image = layers.Cropping2D(((0, 0), (2, 2)), name="image")(x)
    return keras.Model([code, labels], image, name="conv_decoder")


def build_generator(arch: str, n_labels: int, latent_dim: int | None = None, **options) -> "CVAE":
    """A built (not compiled) CVAE; `options` go to `CVAE` (kl_weight, kl_warmup_steps, seed)."""
    if arch == "paper":
        latent_dim = latent_dim or 100
        model = CVAE(build_paper_encoder(latent_dim), build_paper_decoder(latent_dim, n_labels), arch, **options)
    elif arch == "conv":
        latent_dim = latent_dim or 128
        model = CVAE(build_conv_encoder(latent_dim, n_labels), build_conv_decoder(latent_dim, n_labels), arch,
                     **options)
    else:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    model((np.zeros((1,) + IMAGE_SHAPE, np.float32), np.zeros((1, n_labels), np.float32)))  # build weights
    return model


# ----------------------------------------------------------------------------- the model


class CVAE(keras.Model):
    """Encoder + sampling + decoder, trained on (image, condition) pairs.

    Data: `(images, conditions)` with images in [0, 1]; the condition is the 25-wide label
    vector (the classifier's scores for `paper`, one-hot labels for `conv`).
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, arch: str, kl_weight: float = 1.0,
                 kl_warmup_steps: int = 0, seed: int = 0, judge: keras.Model | None = None,
                 judge_weight: float = 0.0, judge_conditions: np.ndarray | None = None,
                 judge_prior: "LatentPrior | None" = None, judge_heads: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.arch = encoder, decoder, arch
        # Label consistency: a frozen classifier judges images decoded from prior codes, so the
        # decoder must show the requested labels instead of whatever the code happens to encode.
        # The requested labels are drawn uniformly from `judge_conditions` (the label pairs of the
        # training data) when given: rare pairs count as much as common ones, as at evaluation.
        self.judge, self.judge_weight = judge, judge_weight
        # judge_heads = the number of sub-category columns: the judge's loss is then each head's
        # cross-entropy (scores normalised within the head), so gender's 5 columns weigh as much as
        # the 20 sub-category ones; None: binary cross-entropy over all 25 columns
        self.judge_heads = judge_heads
        if judge is not None:
            judge.trainable = False
        # With a fitted `judge_prior` (fine-tuning a generator that has one) the pairs are its pairs (in
        # place of judge_conditions) and the codes come from each pair's Gaussian, as at generation
        # time; otherwise from N(0, I).
        if judge_prior is not None:
            judge_conditions = judge_prior.conditions
        self.judge_conditions = (None if judge_conditions is None
                                 else ops.convert_to_tensor(np.asarray(judge_conditions, np.float32)))
        self.judge_means = None if judge_prior is None else ops.convert_to_tensor(judge_prior.means)
        self.judge_scales = None if judge_prior is None else ops.convert_to_tensor(judge_prior.scales)
        self.consistency_tracker = keras.metrics.Mean(name="label_consistency")
        self.latent_dim = decoder.inputs[0].shape[-1]
        self.kl_weight, self.kl_warmup_steps = kl_weight, kl_warmup_steps
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps_seen = self.add_variable(shape=(), dtype="float32", initializer="zeros", trainable=False,
                                            name="steps_seen")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.latent_tracker = keras.metrics.Mean(name="latent_loss")
        self.rounded_accuracy_tracker = keras.metrics.Mean(name="rounded_accuracy")

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.reconstruction_tracker, self.latent_tracker, self.rounded_accuracy_tracker]
        # listed so that Keras resets it every epoch; reported by train_step only
        return trackers + ([self.consistency_tracker] if self.judge is not None else [])

    def encode(self, images, conditions, training=False):
        # `training` explicitly: train_step runs outside any training call context, so without it
        # the encoder's BatchNormalization stayed in inference mode (never batch statistics, moving
        # averages never updated)
        return self.encoder(images if self.arch == "paper" else [images, conditions], training=training)

    def call(self, inputs, training=False):
        images, conditions = inputs
        mean, log_var = self.encode(images, conditions, training=training)
        return self.decoder([mean, conditions], training=training)

    def _loss_terms(self, images, conditions, weights, training: bool):
        """(reconstruction, latent, rounded accuracy) means over the batch, rows weighted by
        `weights` (None: all 1; padding rows under tf.distribute weigh 0), and the batch's total
        weight (its number of real rows)."""
        mean, log_var = self.encode(images, conditions, training=training)
        if self.arch != "paper":  # the paper's model stays exactly as specified
            # While the KL weight warms up from 0 nothing holds the variances: one batch's log-variance
            # can overflow exp() and wreck the run (seen here). Trained codes sit far below LOG_VAR_LIMIT.
            log_var = ops.minimum(log_var, LOG_VAR_LIMIT)
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        code = mean + ops.exp(0.5 * log_var) * noise
        reconstruction = self.decoder([code, conditions], training=training)
        per_value = keras.losses.binary_crossentropy(
            ops.reshape(images, (-1, PIXEL_VALUES, 1)), ops.reshape(reconstruction, (-1, PIXEL_VALUES, 1))
        )
        per_image_reconstruction = ops.mean(per_value, axis=1)
        kl = -0.5 * ops.sum(1.0 + log_var - ops.exp(log_var) - ops.square(mean), axis=1)
        agreement = ops.cast(ops.equal(ops.round(images), ops.round(reconstruction)), "float32")
        per_image_rounded = ops.mean(ops.reshape(agreement, (-1, PIXEL_VALUES)), axis=1)
        if weights is None:
            weights = ops.ones_like(kl)
        total = ops.maximum(ops.sum(weights), 1.0)
        weighted_mean = lambda values: ops.sum(values * weights) / total  # noqa: E731
        return (weighted_mean(per_image_reconstruction), weighted_mean(kl) / PIXEL_VALUES,
                weighted_mean(per_image_rounded), ops.sum(weights))

    def _kl_weight_now(self):
        if self.arch == "paper" or self.kl_warmup_steps <= 0:
            return ops.convert_to_tensor(self.kl_weight, "float32")
        return self.kl_weight * ops.minimum(1.0, self.steps_seen / float(self.kl_warmup_steps))

    def _update_trackers(self, reconstruction_loss, latent_loss, rounded, rows):
        # each batch counts by its real rows: the epoch's numbers are means over images, and a
        # replica holding only zero-weight padding (tf.distribute) does not pull them towards 0
        self.loss_tracker.update_state(reconstruction_loss + latent_loss, sample_weight=rows)
        self.reconstruction_tracker.update_state(reconstruction_loss, sample_weight=rows)
        self.latent_tracker.update_state(latent_loss, sample_weight=rows)
        self.rounded_accuracy_tracker.update_state(rounded, sample_weight=rows)
        return {m.name: m.result() for m in self.metrics if m is not self.consistency_tracker}

    def train_step(self, data):
        import tensorflow as tf  # the gradient tape is the TensorFlow backend's (as in keras-io's vae.py)

        images, conditions, weights = _unpack(data)
        with tf.GradientTape() as tape:
            reconstruction_loss, latent_loss, rounded, rows = self._loss_terms(images, conditions, weights,
                                                                                training=True)
            objective = reconstruction_loss + self._kl_weight_now() * latent_loss
            if self.judge is not None and self.judge_weight > 0:
                consistency = self._label_consistency(*self._draw_judged(conditions))
                objective = objective + self.judge_weight * consistency
                self.consistency_tracker.update_state(consistency)
            objective = objective * _replica_share(rows)
        gradients = tape.gradient(objective, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        self.steps_seen.assign_add(1.0)
        results = self._update_trackers(reconstruction_loss, latent_loss, rounded, rows)
        if self.judge is not None:
            results["label_consistency"] = self.consistency_tracker.result()
        return results

    def _draw_judged(self, conditions):
        """(label rows, codes) for the judge: the batch's labels or pairs drawn uniformly from
        judge_conditions; codes from N(0, I) or from the drawn pairs' prior Gaussians."""
        n = ops.shape(conditions)[0]
        noise = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        if self.judge_conditions is None:
            return conditions, noise
        index = keras.random.randint((n,), 0, ops.shape(self.judge_conditions)[0], seed=self.seed_generator)
        drawn = ops.take(self.judge_conditions, index, axis=0)
        if self.judge_means is None:
            return drawn, noise
        scales = ops.take(self.judge_scales, index, axis=0)
        return drawn, ops.take(self.judge_means, index, axis=0) + ops.einsum("nij,nj->ni", scales, noise)

    def _label_consistency(self, conditions, codes):
        """Binary cross-entropy between the requested labels and the judge's scores for images
        decoded from `codes` with those labels."""
        # In training mode, like the reconstruction: gradients through inference-mode BatchNormalization
        # trained a second, inference-only behaviour of the decoder (validation loss 0.29 against 0.22
        # in training, epoch 2). But the moving statistics must describe real images only: these
        # images' rows (uniform over pairs) pulled them off and cost 0.007 of validation loss.
        statistics = [v for layer in self.decoder.layers if isinstance(layer, layers.BatchNormalization)
                      for v in (layer.moving_mean, layer.moving_variance)]
        before = [ops.copy(v) for v in statistics]  # copies: a converted variable would follow its updates
        drawn = self.decoder([codes, conditions], training=True)
        for variable, value in zip(statistics, before):
            variable.assign(value)
        judged = self.judge(drawn, training=False)
        if self.judge_heads is None:
            return ops.mean(keras.losses.binary_crossentropy(conditions, judged))
        return ops.mean(per_head_crossentropy(conditions, judged, self.judge_heads))

    def test_step(self, data):
        images, conditions, weights = _unpack(data)
        return self._update_trackers(*self._loss_terms(images, conditions, weights, training=False))


def _replica_share(rows):
    """This replica's share of the global batch's rows (1 without tf.distribute). Keras sums the
    replicas' gradients, so scaling each replica's mean by its share gives the global batch mean's
    gradient (not num_replicas times it, nor one that counts padding-only replicas)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 1.0
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, rows)
    return rows / ops.maximum(total, 1.0)


def _unpack(data):
    """(images, conditions[, sample weights]) as Keras hands them to train_step/test_step."""
    return data if len(data) == 3 else (data[0], data[1], None)


# ----------------------------------------------------------------------------- the latent prior


class LatentPrior:
    """Where the encoder puts each label pair's images: one Gaussian per (sub-category, gender)
    pair, centred on the mean code of that pair's training images. Its covariance is the pair's
    own, shrunk towards the within-pair covariance pooled over all pairs by SHRINKAGE pseudo-images,
    so a pair with one or two photos still gets a full-rank spread.

    Why: the KL term only pulls the codes of all images together towards N(0, I); the codes of
    one pair fill a small part of it, and the decoder learned from those codes as much as from the
    labels. A code drawn from N(0, I) may sit where shirts live, and the decoder then draws a
    shirt whatever the labels say. Drawing from the pair's own part of the code space fixes that
    without retraining ("ex-post density estimation", Ghosh et al. 2020, per label pair).
    """

    SHRINKAGE = 5.0  # measured: 2, 5, 10 and 20 pseudo-images within 0.03 conditional accuracy of each other

    def __init__(self, conditions: np.ndarray, means: np.ndarray, counts: np.ndarray, scales: np.ndarray,
                 pooled_scale: np.ndarray, n_sub_categories: int, shrinkage: float = SHRINKAGE) -> None:
        self.conditions = np.asarray(conditions, np.float32)  # (pairs, 25) one-hot rows
        self.means = np.asarray(means, np.float32)  # (pairs, latent)
        self.counts = np.asarray(counts, np.int64)  # training images per pair
        # lower-triangular factors, covariance = scale @ scale.T: (pairs, latent, latent) and, for
        # pairs never seen in training, the pooled one (latent, latent)
        self.scales = np.asarray(scales, np.float32)
        self.pooled_scale = np.asarray(pooled_scale, np.float32)
        self.n_sub_categories = int(n_sub_categories)
        self.shrinkage = float(shrinkage)

    @classmethod
    def fit(cls, codes: np.ndarray, conditions: np.ndarray, n_sub_categories: int,
            shrinkage: float = SHRINKAGE) -> "LatentPrior":
        """Fit on the encoder's mean codes of training images and their one-hot conditions; rows
        whose sub-category is outside the schema (an all-zero sub-category part) are left out."""
        codes, conditions = np.asarray(codes, np.float64), np.asarray(conditions, np.float32)
        known = conditions[:, :n_sub_categories].sum(axis=1) > 0
        codes, conditions = codes[known], conditions[known]
        if len(codes) < 2:
            raise GeneratorError(f"fitting the latent prior needs at least 2 labelled images, got {len(codes)}")
        pairs, pair_of_row, counts = np.unique(conditions, axis=0, return_inverse=True, return_counts=True)
        pair_of_row = pair_of_row.reshape(-1)
        means = np.zeros((len(pairs), codes.shape[1]))
        np.add.at(means, pair_of_row, codes)
        means /= counts[:, None]
        residuals = codes - means[pair_of_row]
        pooled = residuals.T @ residuals / max(len(codes) - len(pairs), 1)
        ridge = 1e-6 * np.eye(len(pooled))  # keeps the factorisation defined when a direction never varies
        scales = []
        for pair, count in enumerate(counts):
            own = residuals[pair_of_row == pair]
            scales.append(np.linalg.cholesky((own.T @ own + shrinkage * pooled) / (count + shrinkage) + ridge))
        return cls(pairs, means, counts, np.stack(scales), np.linalg.cholesky(pooled + ridge), n_sub_categories,
                   shrinkage)

    def _pairs_of(self, conditions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(condition rows, index of each row's pair or -1 for a pair never seen in training)."""
        conditions = np.asarray(conditions, np.float32).reshape(-1, self.conditions.shape[1])
        matches = (conditions[:, None, :] == self.conditions[None]).all(axis=2)
        return conditions, np.where(matches.any(axis=1), matches.argmax(axis=1), -1)

    def centres(self, conditions: np.ndarray) -> np.ndarray:
        """The mean code for each condition row: its pair's; for a pair never seen in training,
        the count-weighted mean over the pairs of its sub-category (N(0, I)'s centre without one)."""
        return self._centres(*self._pairs_of(conditions))

    def _centres(self, conditions: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        out = np.zeros((len(conditions), self.means.shape[1]), np.float32)
        pair_sub = self.conditions[:, : self.n_sub_categories].argmax(axis=1)
        for row, (condition, pair) in enumerate(zip(conditions, pairs)):
            if pair >= 0:
                out[row] = self.means[pair]
            elif condition[: self.n_sub_categories].max() > 0:
                siblings = np.flatnonzero(pair_sub == condition[: self.n_sub_categories].argmax())
                if len(siblings):
                    out[row] = np.average(self.means[siblings], axis=0, weights=self.counts[siblings])
        return out

    def sample(self, conditions: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Codes for the condition rows from standard-normal `noise` of the same number of rows."""
        conditions, pairs = self._pairs_of(conditions)
        noise = np.asarray(noise, np.float32)
        scales = np.where((pairs >= 0)[:, None, None], self.scales[np.maximum(pairs, 0)], self.pooled_scale)
        return (self._centres(conditions, pairs) + np.einsum("nij,nj->ni", scales, noise)).astype(np.float32)

    def refined(self, shift: np.ndarray, log_stretch: np.ndarray) -> "LatentPrior":
        """This prior with each pair's Gaussian moved and stretched in its own whitened coordinates:
        codes = mean + scale @ (shift + exp(log_stretch) * noise). The KL divergence from the
        refined Gaussian to this one is then 0.5 * sum(exp(2 log_stretch) + shift^2 - 1 - 2 log_stretch)
        per pair (see guidance.py). Pairs never seen in training keep their fallback."""
        shift, log_stretch = np.asarray(shift, np.float64), np.asarray(log_stretch, np.float64)
        if shift.shape != self.means.shape or log_stretch.shape != self.means.shape:
            raise ValueError(f"shift and log_stretch must be {self.means.shape}, got {shift.shape} and "
                             f"{log_stretch.shape}")
        means = self.means + np.einsum("pij,pj->pi", self.scales, shift)
        scales = self.scales * np.exp(log_stretch)[:, None, :]  # scaling columns keeps them lower-triangular
        return LatentPrior(self.conditions, means, self.counts, scales, self.pooled_scale, self.n_sub_categories,
                           self.shrinkage)

    def describe(self) -> dict:
        """For the model card."""
        return {"images": int(self.counts.sum()), "pairs": int(len(self.counts)),
                "covariance": f"each pair's own, shrunk towards the pooled within-pair covariance by "
                              f"{self.shrinkage:g} pseudo-images", "file": PRIOR_FILE}

    def save(self, path: Path) -> None:
        """Atomically: readers see the old prior or the new one, never half of one."""
        buffer = io.BytesIO()
        np.savez(buffer, conditions=self.conditions, means=self.means, counts=self.counts, scales=self.scales,
                 pooled_scale=self.pooled_scale, n_sub_categories=np.int64(self.n_sub_categories),
                 shrinkage=np.float64(self.shrinkage))
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "LatentPrior":
        """The prior saved in `path`, as saved: `misfit` says whether it serves a given generator."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["conditions"], saved["means"], saved["counts"], saved["scales"], saved["pooled_scale"],
                       int(saved["n_sub_categories"]), float(saved["shrinkage"]))

    def misfit(self, latent_dim: int, schema: LabelSchema) -> str | None:
        """Why this prior cannot serve a generator with codes of `latent_dim` and labels of `schema`
        (its arrays disagree with them or with each other), or None when it can."""
        pairs = self.conditions.shape[0] if self.conditions.ndim else 0
        expected = {"conditions": (pairs, schema.size), "means": (pairs, latent_dim), "counts": (pairs,),
                    "scales": (pairs, latent_dim, latent_dim), "pooled_scale": (latent_dim, latent_dim)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                return (f"its {name} are {getattr(self, name).shape}, not {shape} for codes of {latent_dim} and "
                        f"{schema.size} labels")
        if self.n_sub_categories != len(schema.sub_categories):
            return f"it splits the labels after {self.n_sub_categories} sub-categories, not {len(schema.sub_categories)}"
        return None


# ----------------------------------------------------------------------------- using a trained one


class Generator:
    """A trained CVAE with its label schema: reconstruct uint8 images, generate from labels and a seed."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, schema: LabelSchema, arch: str,
                 card: dict | None = None, prior: LatentPrior | None = None) -> None:
        self.encoder, self.decoder, self.schema, self.arch = encoder, decoder, schema, arch
        self.latent_dim = decoder.inputs[0].shape[-1]
        self.card = card or {}
        self.prior = prior  # None: codes come from N(0, I), as in the paper

    @classmethod
    def load(cls, folder: str | os.PathLike = PRETRAINED_DIR, with_prior: bool = True) -> "Generator":
        """The generator in `folder`; with_prior=False skips its latent prior (to refit a broken one).

        Every file is checked, and the latent prior last: a file that is missing, unreadable, of the
        wrong shape or not fitting the others raises `GeneratorError` naming it and the command that
        rebuilds it, the prior refit only when everything else is sound (the refit needs it)."""
        folder = KIND.open(folder)
        folder.require(ENCODER_FILE, DECODER_FILE, CONFIG_FILE, SCHEMA_FILE)
        config = folder.json_object(CONFIG_FILE, {"arch": str, "latent_dim": int})
        arch, latent_dim = config["arch"], config["latent_dim"]
        if arch not in ARCHITECTURES:
            raise folder.error(CONFIG_FILE, f"names the architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
        if latent_dim < 1:
            raise folder.error(CONFIG_FILE, f"has latent_dim {latent_dim}, not a positive size")
        schema, card = folder.schema(), folder.card()
        encoder, decoder = folder.keras_model(ENCODER_FILE), folder.keras_model(DECODER_FILE)
        _check_widths(folder, arch, latent_dim, schema, encoder, decoder)
        prior = _load_prior(folder, arch, latent_dim, schema) if with_prior else None
        return cls(encoder, decoder, schema, arch, card, prior)

    def save(self, folder: str | os.PathLike, card: dict | None = None) -> None:
        """Write everything into a staging folder, then swap it in: never half a model."""
        with atomic_folder(folder) as staging:
            self.encoder.save(staging / ENCODER_FILE)
            self.decoder.save(staging / DECODER_FILE)
            (staging / CONFIG_FILE).write_text(json.dumps({"arch": self.arch, "latent_dim": self.latent_dim}) + "\n")
            self.schema.save(staging / SCHEMA_FILE)
            (staging / CARD_FILE).write_text(card_json(card if card is not None else self.card))
            if self.prior is not None:
                self.prior.save(staging / PRIOR_FILE)

    def condition(self, sub_category: str, gender: str) -> np.ndarray:
        """The one-hot 25-wide condition for a label pair; unknown names raise listing the valid ones."""
        try:
            self.schema.check(sub_category, gender)
        except ValueError as error:
            raise GeneratorError(str(error)) from None
        return self.schema.encode(sub_category, gender)

    def codes(self, seed: int, n: int) -> np.ndarray:
        """n latent codes drawn from N(0, I) by NumPy's PCG64: the same for the same seed on every
        call, run and machine. Any integer works (negative ones too)."""
        _check_count(n)
        entropy = [abs(int(seed)), 1 if int(seed) < 0 else 0]
        return np.random.default_rng(np.random.SeedSequence(entropy)).standard_normal((n, self.latent_dim)).astype(np.float32)

    def latents(self, conditions: np.ndarray, seed: int) -> np.ndarray:
        """The codes generate() decodes for these condition rows and seed: the seed's N(0, I) draws,
        moved into each pair's part of the code space when the generator has a latent prior."""
        conditions = np.asarray(conditions, np.float32).reshape(-1, self.schema.size)
        noise = self.codes(seed, len(conditions))
        return noise if self.prior is None else self.prior.sample(conditions, noise)

    def fit_prior(self, images: np.ndarray, conditions: np.ndarray, batch_size: int = 512) -> LatentPrior:
        """Fit (and keep) the latent prior on training images (uint8) and their one-hot conditions."""
        codes = []
        for start in range(0, len(images), batch_size):
            x = to_unit_float(images[start:start + batch_size])
            condition = np.asarray(conditions[start:start + batch_size], np.float32)
            # a plain call: predict_on_batch under a tf.distribute strategy returns one copy per replica
            mean, _ = self.encoder(x if self.arch == "paper" else [x, condition], training=False)
            codes.append(np.asarray(mean))
        self.prior = LatentPrior.fit(np.concatenate(codes), conditions, len(self.schema.sub_categories))
        return self.prior

    def decode(self, codes: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Latent codes + conditions -> uint8 images."""
        images = self.decoder.predict_on_batch([np.asarray(codes, np.float32), np.asarray(conditions, np.float32)])
        return to_uint8(np.asarray(images))

    def generate(self, sub_category: str, gender: str, seed: int, n: int = 1) -> np.ndarray:
        """n new images of a sub-category and gender: uint8 (n, 80, 60, 3), the same pixels for the
        same (labels, seed, n)."""
        _check_count(n)
        conditions = np.repeat(self.condition(sub_category, gender)[None], n, axis=0)
        return self.decode(self.latents(conditions, seed), conditions)

    def interpolate(self, start: tuple[str, str, int], end: tuple[str, str, int], steps: int) -> np.ndarray:
        """Images along a straight line from (sub-category, gender, seed) `start` to `end`, in code
        and condition space: uint8 (steps, 80, 60, 3), the first and last equal to generate()'s."""
        if steps < 2:
            raise GeneratorError(f"steps must be at least 2, got {steps}")
        weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        first, last = self.condition(*start[:2]), self.condition(*end[:2])
        codes = (1 - weights) * self.latents(first, start[2]) + weights * self.latents(last, end[2])
        conditions = (1 - weights) * first + weights * last
        return self.decode(codes, conditions)

    def reconstruct(self, images: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Encode and decode uint8 images with their conditions (the code's mean, no sampling):
        uint8 (N, 80, 60, 3) for N images; one (80, 60, 3) image gives a batch of one."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        conditions = np.asarray(conditions, np.float32).reshape(len(images), -1)
        x = to_unit_float(images)
        mean, _ = self.encoder.predict_on_batch(x if self.arch == "paper" else [x, conditions])
        return self.decode(np.asarray(mean), conditions)

    def conditions_from_scores(self, scores: np.ndarray) -> np.ndarray:
        """What the decoder is conditioned on for an image the classifier has scored: the scores
        themselves for the paper's model, their per-head one-hot argmax for ours."""
        scores = np.asarray(scores, np.float32)
        if self.arch == "paper":
            return scores
        return one_hot_heads(scores, len(self.schema.sub_categories))


def _check_widths(folder: ModelFolder, arch: str, latent_dim: int, schema: LabelSchema, encoder: keras.Model,
                  decoder: keras.Model) -> None:
    """The Keras files fit generator.json, labels.json and each other (else the first image would fail)."""
    decoder_inputs, decoder_outputs = shapes(decoder.inputs), shapes(decoder.outputs)
    if len(decoder_inputs) != 2 or any(len(shape) != 1 for shape in decoder_inputs) or decoder_outputs != [IMAGE_SHAPE]:
        raise folder.error(DECODER_FILE, f"maps {decoder_inputs} to {decoder_outputs}, not a code and labels to an "
                                         "80x60x3 image")
    (code_width,), (label_width,) = decoder_inputs
    if label_width != schema.size:
        raise folder.error(SCHEMA_FILE, f"names {schema.size} labels, but {folder.path / DECODER_FILE} takes "
                                        f"{label_width}")
    if code_width != latent_dim:
        raise folder.error(CONFIG_FILE, f"says latent_dim {latent_dim}, but {folder.path / DECODER_FILE} takes codes "
                                        f"of {code_width}")
    inputs = {"paper": [IMAGE_SHAPE], "conv": [IMAGE_SHAPE, (schema.size,)]}  # the paper's encoder sees no labels
    other = [name for name in ARCHITECTURES if name != arch and shapes(encoder.inputs) == inputs[name]]
    if other:
        raise folder.error(CONFIG_FILE, f"says arch {arch!r}, but {folder.path / ENCODER_FILE} takes the inputs of "
                                        f"a {other[0]} encoder")
    if shapes(encoder.inputs) != inputs[arch] or shapes(encoder.outputs) != [(latent_dim,), (latent_dim,)]:
        raise folder.error(ENCODER_FILE, f"maps {shapes(encoder.inputs)} to {shapes(encoder.outputs)}, not "
                                         f"{inputs[arch]} to a mean and a log-variance of {latent_dim}")


def _load_prior(folder: ModelFolder, arch: str, latent_dim: int, schema: LabelSchema) -> LatentPrior | None:
    """The folder's latent prior (None without one), checked against the generator's other files."""
    path = folder.path / PRIOR_FILE
    if not path.is_file():
        return None
    # fit_generator_prior.py refuses the paper's generator: it draws from N(0, I) by definition
    fix = (f"Refit it with: {fit_prior_command(folder.path)}" if arch != "paper"
           else "Delete it: the paper's generator draws its codes from N(0, I)")
    try:
        prior = LatentPrior.load(path)
    except Exception as error:  # a torn zip, a missing array, a wrong dtype
        raise folder.error(PRIOR_FILE, f"is corrupt ({type(error).__name__})", fix) from error
    problem = prior.misfit(latent_dim, schema)
    if problem:
        raise folder.error(PRIOR_FILE, f"does not fit this generator ({problem})", fix)
    return prior


def fit_prior_command(folder: str | os.PathLike = PRETRAINED_DIR) -> str:
    """The command that refits the latent prior of the generator in `folder`."""
    return (f"python scripts/fit_generator_prior.py --data-dir data/fashion-small "
            f"--generator {folder_argument(folder, PRETRAINED_DIR)}")


def _check_count(n: int) -> None:
    if n < 1:
        raise GeneratorError(f"n must be at least 1, got {n}")


def one_hot_heads(scores: np.ndarray, n_sub_categories: int) -> np.ndarray:
    """Per-head argmax as one-hot (sub-category part, then gender part)."""
    out = np.zeros_like(scores, dtype=np.float32)
    rows = np.arange(len(scores))
    out[rows, scores[:, :n_sub_categories].argmax(axis=1)] = 1.0
    out[rows, n_sub_categories + scores[:, n_sub_categories:].argmax(axis=1)] = 1.0
    return out


def per_head_crossentropy(wanted, scores, n_sub_categories: int):
    """Per row: the sub-category head's categorical cross-entropy plus the gender head's, each on
    the head's sigmoid scores normalised to shares (a judge's verdict as two one-of-n choices)."""
    k = n_sub_categories
    shares = lambda head: head / ops.sum(head, axis=1, keepdims=True)  # noqa: E731
    return (keras.losses.categorical_crossentropy(wanted[:, :k], shares(scores[:, :k]))
            + keras.losses.categorical_crossentropy(wanted[:, k:], shares(scores[:, k:])))


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)
