"""The generator: a conditional variational autoencoder (CVAE) that reconstructs and draws products.

Architectures (`--arch`):
- `paper`: the paper's CVAE. Encoder: 4 blocks of BatchNormalization -> Conv2D(3, relu) ->
  MaxPooling2D(3) with 8, 16, 32, 64 filters -> Dense(150, selu) -> Dense(100, selu) -> mean and
  log-variance (100 each). The sampled code is concatenated with the frozen classifier's 25
  scores for the image; decoder Dense(100, selu) -> Dense(150, selu) -> Dense(80*60*3, sigmoid).
- `conv` (default): convolutional encoder and transposed-convolution decoder, the one-hot labels
  fed to both, and a KL weight that warms up from 0 to `kl_weight` (1 by default) at the start of
  training. It generates
  from a `LatentPrior` fitted after training (one Gaussian per label pair) instead of N(0, I).

Loss, as in Géron's Keras VAE that the paper scaled up: reconstruction = binary cross-entropy
averaged over all 80*60*3 values; latent = -0.5 * sum(1 + log_var - exp(log_var) - mean^2) over
the latent dims, averaged over the batch and divided by 80*60*3. The tracked `loss` is always their
plain sum (the paper's number); `conv` and `vaegan` optimise reconstruction + kl_weight * latent.
Rounded accuracy = mean(round(x) == round(x_hat)).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from fashiongen.generator.architectures import (
    ARCHITECTURES,
    PIXEL_VALUES,
    build_conv_decoder,
    build_conv_encoder,
    build_paper_decoder,
    build_paper_encoder,
    build_upsample_decoder,
)
from fashiongen.generator.judge import LabelConsistency
from fashiongen.imaging import IMAGE_SHAPE

LOG_VAR_LIMIT = 10.0  # conv arch: log-variances are capped at 10 in training


def build_generator(arch: str, n_labels: int, latent_dim: int | None = None, **options) -> "CVAE":
    """A built (not compiled) CVAE; `options` go to `CVAE` (kl_weight, kl_warmup_steps, seed, judge),
    and for `vaegan` to `VAEGAN` (adversarial, adversarial_start, adversarial_ramp, prior, perceptual).
    The exceptions, vaegan only: `decoder_noise` and `decoder_refine` go to `build_upsample_decoder`'s
    `noise` and `refine`."""
    if arch == "vaegan":
        from fashiongen.generator.vaegan import VAEGAN, build_discriminator  # it builds on CVAE

        latent_dim = latent_dim or 128
        decoder = build_upsample_decoder(latent_dim, n_labels, noise=options.pop("decoder_noise", False),
                                         refine=options.pop("decoder_refine", False))
        adversarial = options.get("adversarial")
        discriminator = build_discriminator(n_labels, spectral=adversarial is None or adversarial.r1_weight <= 0)
        model = VAEGAN(build_conv_encoder(latent_dim, n_labels), decoder, discriminator, **options)
    elif arch == "paper":
        latent_dim = latent_dim or 100
        model = CVAE(build_paper_encoder(latent_dim), build_paper_decoder(latent_dim, n_labels), arch, **options)
    elif arch == "conv":
        latent_dim = latent_dim or 128
        model = CVAE(build_conv_encoder(latent_dim, n_labels), build_conv_decoder(latent_dim, n_labels), arch,
                     **options)
    else:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    if arch == "vaegan":
        model.discriminator((np.zeros((1,) + IMAGE_SHAPE, np.float32), np.zeros((1, n_labels), np.float32)))
    model((np.zeros((1,) + IMAGE_SHAPE, np.float32), np.zeros((1, n_labels), np.float32)))  # build weights
    return model


class CVAE(keras.Model):
    """Encoder + sampling + decoder, trained on (image, condition) pairs.

    Data: `(images, conditions)` with images in [0, 1]; the condition is the 25-wide label
    vector (the classifier's scores for `paper`, one-hot labels for `conv`).
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, arch: str, kl_weight: float = 1.0,
                 kl_warmup_steps: int = 0, seed: int = 0, judge: LabelConsistency | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.arch = encoder, decoder, arch
        self.judge = judge  # the label-consistency term (fashiongen/generator/judge.py), or None
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
        own = (self.loss_tracker, self.reconstruction_tracker, self.latent_tracker, self.rounded_accuracy_tracker)
        return {m.name: m.result() for m in own}

    def train_step(self, data):
        import tensorflow as tf  # the gradient tape is the TensorFlow backend's (as in keras-io's vae.py)

        images, conditions, weights = _unpack(data)
        with tf.GradientTape() as tape:
            reconstruction_loss, latent_loss, rounded, rows = self._loss_terms(images, conditions, weights,
                                                                                training=True)
            objective = reconstruction_loss + self._kl_weight_now() * latent_loss
            if self.judge is not None and self.judge.weight > 0:
                consistency = self._label_consistency(conditions)
                objective = objective + self.judge.weight * consistency
                self.consistency_tracker.update_state(consistency)
            objective = objective * _replica_share(rows)
        variables = self.generator_variables()
        gradients = tape.gradient(objective, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self.steps_seen.assign_add(1.0)
        results = self._update_trackers(reconstruction_loss, latent_loss, rounded, rows)
        if self.judge is not None:
            results["label_consistency"] = self.consistency_tracker.result()
        return results

    def generator_variables(self) -> list:
        """What the optimizer trains (a frozen judge's weights are not trainable)."""
        return self.trainable_weights

    def _label_consistency(self, conditions):
        """The judge's loss on images decoded from labels and codes drawn for this batch."""
        judged_conditions, codes = self.judge.draw(conditions, self.latent_dim, self.seed_generator)
        return self.judge.loss(self.decoder, judged_conditions, codes)

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
