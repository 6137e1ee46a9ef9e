"""VAE-GAN: the CVAE's decoder also trained against a conditional patch discriminator, so it draws sharp images.

The per-pixel likelihood alone averages every plausible image into a blur. A discriminator that
tells real photos from decoded ones (reconstructions, and images drawn from N(0, I) codes), each
with its labels, rewards what the blur lacks: edges, prints, texture (Larsen et al. 2016). The loss
is latent diffusion's KL-autoencoder loss (Rombach et al. 2022) without LPIPS, whose weights cannot
be downloaded here; feature matching on the discriminator's own features stands in for it, and
optionally a perceptual distance on a classifier trained here.

- discriminator: three spectrally normalised stride-2 convolutions (32, 64, 128 filters: half
  of pix2pix's widths, for the CPU) give a 10x8 map of patch
  logits, plus a projection of the labels onto each patch's features (Miyato & Koyama 2018), so a
  photo must look real *for its labels*; or, with an R1 penalty (Mescheder et al. 2018), the same
  layers unnormalised;
- optionally a perceptual distance between photos and reconstructions on a frozen classifier's
  features (perceptual.py), LPIPS's place in latent diffusion's loss, in the adversarial steps
  only (a plain step before the start is the CVAE's own), optionally at a random offset;
- optionally a spectral excess (spectral.py): fine pattern a reconstruction has and its photo
  lacks, the plaid and bands the perceptual and feature-matching terms can paint;
- hinge loss; the decoder's adversarial term is weighted adaptively, ||grad nll|| / ||grad adv||
  at the decoder's last layer, so neither loss drowns the other (optionally ||grad rec|| alone, so
  the feature-matching weight does not scale the adversarial term too);
- the adversarial terms and feature matching start after `adversarial_start` steps (the
  `AdversarialStart` callback switches the step): first a plain CVAE learns to reconstruct, then
  the discriminator sharpens it; with `adversarial_ramp` steps, the decoder's share of them grows
  from 0 while the discriminator learns, so a fresh one does not steer a trained decoder at random;
- the drawn images' codes come from N(0, I), or, when a fitted latent prior is given (fine-tuning
  a generator that has one), from the Gaussian of each row's label pair: the codes generation
  draws (but for a residual kernel's, fashiongen/generator/kernel.py, which training leaves out),
  so the discriminator judges the images users will see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import numpy as np
from keras import layers, ops

from fashiongen.config import option
from fashiongen.generator.architectures import PIXEL_VALUES
from fashiongen.generator.cvae import CVAE, LOG_VAR_LIMIT, _replica_share, _unpack
from fashiongen.generator.spectral import SpectralExcess
from fashiongen.imaging import IMAGE_SHAPE

if TYPE_CHECKING:
    from fashiongen.generator.perceptual import PerceptualDistance
    from fashiongen.generator.prior import LatentPrior


@dataclass
class AdversarialConfig:
    """The VAE-GAN's own hyperparameters; train_generator.py offers each as a flag."""

    adversarial_weight: float = option(0.5, "vaegan: weight of the decoder's adversarial term, on top of the "
                                            "adaptive weight that matches its gradient to the reconstruction's")
    feature_matching_weight: float = option(1.0, "vaegan: weight of the L1 distance between the discriminator's "
                                                 "features of photos and of their reconstructions")
    feature_matching_blocks: str = option("123", "vaegan: which of the discriminator's three blocks feature "
                                                 "matching compares, as digits from 1 (finest) to 3 (coarsest), "
                                                 "the term being their mean: 123 all, 1 the finest alone (one "
                                                 "warm-start epoch at weight 30: 23 and 3 painted stripes, 1 and 12 "
                                                 "softened the images; "
                                                 "docs/experiments/2026-12-07-feature-matching-blocks.md)",
                                          choices=("1", "2", "3", "12", "13", "23", "123"))
    adversarial_start_epochs: float = option(2.0, "vaegan: epochs of plain CVAE training before the "
                                                  "discriminator joins")
    adversarial_ramp_epochs: float = option(0.0, "vaegan: epochs over which the decoder's adversarial and "
                                                 "feature-matching terms grow from 0 to full once the "
                                                 "discriminator joins (it trains at full rate from the start), so "
                                                 "a fresh discriminator's first, arbitrary gradients do not reach "
                                                 "a trained decoder (0: full at once)")
    perceptual_weight: float = option(0.0, "vaegan: weight of the perceptual distance between photos and their "
                                           "reconstructions, on the features of --perceptual-classifier "
                                           "(fashiongen/generator/perceptual.py), beside the reconstruction loss "
                                           "once the discriminator joins", default_text="0, off")
    perceptual_blocks: int = option(4, "vaegan, with --perceptual-weight: how many of the compact classifier's "
                                       "four blocks the perceptual distance compares, from the first (finest); "
                                       "fewer leave out the coarse features that reward texture anywhere in a "
                                       "region", choices=(1, 2, 3, 4))
    perceptual_shift: int = option(0, "vaegan, with --perceptual-weight: the photo and its reconstruction are "
                                      "moved by one random offset of up to this many pixels each way before "
                                      "the perceptual classifier sees them (0: never), so its pooling grid "
                                      "never lines up with the image for long; a fixed grid painted a plaid "
                                      "on watches (docs/experiments/2026-12-04-decoder-ceiling.md)")
    perceptual_blur: float = option(0.0, "vaegan, with --perceptual-weight: both images are blurred by a Gaussian "
                                         "of this sigma in pixels before the perceptual classifier sees them (0: "
                                         "never), so the term compares shapes and colours and gains nothing from a "
                                         "pattern finer than the blur (docs/experiments/2026-12-07-perceptual-blur.md)")
    spectral_excess_weight: float = option(0.0, "vaegan: weight of the spectral excess of each reconstruction over "
                                                "its photo, the fine pattern (periods up to 16 pixels, see "
                                                "--spectral-excess-finest) it has and the photo lacks "
                                                "(fashiongen/generator/spectral.py), beside the reconstruction loss "
                                                "once the discriminator joins; against the perceptual term's plaid "
                                                "it took the term's gain too "
                                                "(docs/experiments/2026-12-07-spectral-excess.md)",
                                           default_text="0, off")
    spectral_excess_margin: float = option(0.0, "vaegan, with --spectral-excess-weight: how far, in natural log of "
                                                "spectral power, a reconstruction may exceed its photo before the "
                                                "term counts it (0: any excess; at 0 one epoch at weight 10 "
                                                "blurred the decoder, at ln 2 and ln 4 faint squares came back with "
                                                "part of the perceptual term's gain)")
    spectral_excess_finest: int = option(2, "vaegan, with --spectral-excess-weight: the finest period, in pixels, "
                                            "the term counts: 2 every bin up to the Nyquist frequency, 4 the pattern "
                                            "ratio's band alone (periods of 4-16 pixels), leaving finer texture free "
                                            "(it blurred as much)",
                                         choices=(2, 4))
    adaptive_weight_reference: str = option("nll", "vaegan: the loss whose gradient the adaptive weight matches "
                                                   "the adversarial term's to: 'nll', the reconstruction with the "
                                                   "feature-matching, perceptual and spectral-excess terms (latent "
                                                   "diffusion's: each of them raises the adversarial weight), or "
                                                   "'reconstruction' alone, so a larger --feature-matching-weight "
                                                   "does not raise the adversarial term's weight with it",
                                            choices=("nll", "reconstruction"))
    discriminator_learning_rate: float = option(2e-4, "vaegan: the discriminator's Adam learning rate")
    discriminator_shift: int = option(4, "vaegan: every discriminator call sees its images moved by a random "
                                         "offset of up to this many pixels each way (0: never), the same "
                                         "offset for the photos and the decoded images it compares")
    r1_weight: float = option(0.0, "vaegan: weight gamma of an R1 penalty on the discriminator, gamma/2 times "
                                   "the squared gradient of its mean patch logit at real photos, pixels from 0 to 1 "
                                   "(Mescheder et al. 2018; StyleGAN2's gradient is of one logit, pixels from -1 to "
                                   "1); above 0 it takes the place of the spectral normalisation of its layers, "
                                   "which keeps its verdicts on a photo and a slightly softer copy close together "
                                   "(StyleGAN2's choice)", default_text="0, off: spectral normalisation")


    def __post_init__(self) -> None:
        blocks = self.feature_matching_blocks
        if not blocks or set(blocks) - set("123") or len(set(blocks)) != len(blocks):
            raise ValueError(f"feature_matching_blocks must be distinct digits from 1 to 3, got {blocks!r}")


class LabelProjection(layers.Layer):
    """Per patch, the inner product of its features with the labels' embedding: the conditional
    part of a projection discriminator's logit."""

    def call(self, features, embedded):
        return ops.sum(features * embedded[:, None, None, :], axis=-1, keepdims=True)


def build_discriminator(n_labels: int, filters: tuple[int, ...] = (32, 64, 128),
                        spectral: bool = True) -> keras.Model:
    """(image, labels) -> [patch logits (10x8x1 for 80x60), features of each block]; `spectral`:
    each layer spectrally normalised (without, an R1 penalty must keep it in check)."""

    def normalised(layer_class: type, name: str, *args, **kwargs) -> layers.Layer:
        if spectral:
            return layers.SpectralNormalization(layer_class(*args, **kwargs), name=name)
        return layer_class(*args, name=name, **kwargs)

    image = keras.Input(IMAGE_SHAPE, name="image")
    labels = keras.Input((n_labels,), name="labels")
    x = layers.Rescaling(2.0, offset=-1.0, name="centre")(image)
    features = []
    for block, n in enumerate(filters, start=1):
        x = normalised(layers.Conv2D, f"conv{block}", n, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2, name=f"act{block}")(x)
        features.append(x)
    patches = normalised(layers.Conv2D, "patch_logits", 1, 3, padding="same")(x)
    embedded = normalised(layers.Dense, "label_embedding", filters[-1], use_bias=False)(labels)
    projection = LabelProjection(name="label_projection")(x, embedded)
    logits = layers.Add(name="logits")([patches, projection])
    return keras.Model([image, labels], [logits, *features], name="discriminator")


class VAEGAN(CVAE):
    """A CVAE (encoder, decoder, KL warm-up) whose decoder a discriminator trains too; only the
    encoder and decoder are saved, as for every generator."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, discriminator: keras.Model,
                 adversarial: AdversarialConfig, adversarial_start: int = 0, prior: "LatentPrior | None" = None,
                 adversarial_ramp: int = 0, perceptual: "PerceptualDistance | None" = None, **kwargs) -> None:
        super().__init__(encoder, decoder, "vaegan", **kwargs)
        self.discriminator, self.adversarial, self.adversarial_start = discriminator, adversarial, adversarial_start
        self.adversarial_ramp = adversarial_ramp  # steps
        self.perceptual = perceptual if adversarial.perceptual_weight > 0 else None
        self.prior_codes = None if prior is None else PriorCodes(prior)
        # A Python flag, so each phase is its own traced step: before the start no discriminator
        # work is done at all (nor Adam steps of zero gradients, which would spend its bias correction)
        self.adversarial_phase = adversarial_start <= 0
        # by the name of the loss term each one follows
        self.adversarial_trackers = {term: keras.metrics.Mean(name=name) for term, name in (
            ("discriminator", "discriminator_loss"), ("adversarial", "adversarial_loss"),
            ("feature_matching", "feature_matching"), ("adaptive_weight", "adaptive_weight"),
            ("perceptual", "perceptual"), ("spectral", "spectral_excess"), ("r1", "real_slope"))}
        self.spectral = (SpectralExcess(margin=adversarial.spectral_excess_margin,
                                        max_frequency=2.0 / adversarial.spectral_excess_finest)
                         if adversarial.spectral_excess_weight > 0 else None)

    @property
    def metrics(self):
        return super().metrics + list(self.adversarial_trackers.values())

    def compile(self, optimizer, discriminator_optimizer: keras.optimizers.Optimizer, **kwargs) -> None:
        super().compile(optimizer=optimizer, **kwargs)
        self.discriminator_optimizer = discriminator_optimizer
        # Both built now, each over its own variables: left to fit(), the first would be built over
        # the discriminator's too, and a resumed run's backup (saved from the other) skipped.
        optimizer.build(self.generator_variables())
        discriminator_optimizer.build(self.discriminator.trainable_variables)

    def generator_variables(self) -> list:
        """The encoder's and decoder's: the discriminator has an optimizer of its own."""
        return self.encoder.trainable_weights + self.decoder.trainable_weights

    def train_step(self, data):
        if not self.adversarial_phase:  # a plain CVAE step until AdversarialStart switches
            results = super().train_step(data)
            return results | {tracker.name: tracker.result() for tracker in self.adversarial_trackers.values()}
        import tensorflow as tf  # the gradient tape is the TensorFlow backend's (as in keras-io's vae.py)

        images, conditions, weights = _unpack(data)
        weights = ops.ones((ops.shape(images)[0],)) if weights is None else weights
        share = _replica_share(ops.sum(weights))
        with tf.GradientTape(persistent=True) as tape:
            terms = self._decoded_terms(images, conditions, weights)
            ramp = self._ramp_now()
            nll = (terms["reconstruction"] + ramp * self.adversarial.feature_matching_weight * terms["feature_matching"]
                   + self.adversarial.perceptual_weight * terms["perceptual"]
                   + self.adversarial.spectral_excess_weight * terms["spectral"])
            vae_objective = nll + self._kl_weight_now() * terms["latent"]
            reference = nll if self.adversarial.adaptive_weight_reference == "nll" else terms["reconstruction"]
        last = self.decoder.get_layer("pixels").kernel
        adaptive = ramp * self.adversarial.adversarial_weight * _gradient_ratio(
            tape.gradient(reference, last), tape.gradient(terms["adversarial"], last))
        variables = self.generator_variables()
        gradients = tape.gradient([vae_objective, terms["adversarial"]], variables,
                                  output_gradients=[share * ops.ones(()), share * adaptive])
        del tape
        self.optimizer.apply_gradients(zip(gradients, variables))

        discriminator_loss, slope = self._train_discriminator(images, conditions,
                                                              ops.stop_gradient(terms["decoded"]), weights, share)
        self.steps_seen.assign_add(1.0)
        rows = ops.sum(weights)
        results = self._update_trackers(terms["reconstruction"], terms["latent"], terms["rounded"], rows)
        values = {"discriminator": discriminator_loss, "adversarial": terms["adversarial"],
                  "feature_matching": terms["feature_matching"], "adaptive_weight": adaptive,
                  "perceptual": terms["perceptual"], "spectral": terms["spectral"], "r1": slope}
        for term, tracker in self.adversarial_trackers.items():
            tracker.update_state(values[term])
            results[tracker.name] = tracker.result()
        return results

    def _ramp_now(self):
        """The share of the decoder's adversarial terms in this step: 0 at the start, 1 after
        `adversarial_ramp` steps of it (at once without a ramp)."""
        if self.adversarial_ramp <= 0:
            return ops.ones(())
        return ops.clip((self.steps_seen - float(self.adversarial_start)) / float(self.adversarial_ramp), 0.0, 1.0)

    def _decoded_terms(self, images, conditions, weights) -> dict:
        """Encode, decode the batch's codes and as many drawn codes (the prior's, or N(0, I)) with
        the same labels in one decoder call (one batch's BatchNormalization statistics), and every loss term of the
        encoder and decoder, each a mean over the batch's rows weighted by `weights`."""
        n = ops.shape(images)[0]
        mean, log_var = self.encode(images, conditions, training=True)
        log_var = ops.minimum(log_var, LOG_VAR_LIMIT)
        codes = mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        drawn_codes = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        if self.prior_codes is not None:
            drawn_codes = self.prior_codes.sample(conditions, drawn_codes)
        both_conditions = ops.concatenate([conditions, conditions])
        decoded = self.decoder([ops.concatenate([codes, drawn_codes]), both_conditions], training=True)
        reconstructions = decoded[:n]
        offset, pad = self._offset(), self.adversarial.discriminator_shift
        # one offset for both calls: feature matching compares a photo with its reconstruction
        fake_logits, *fake_features = self.discriminator([shifted(decoded, offset, pad), both_conditions],
                                                         training=False)
        _, *real_features = self.discriminator([shifted(images, offset, pad), conditions], training=False)
        pairs = [(real_features[int(block) - 1], fake_features[int(block) - 1])
                 for block in self.adversarial.feature_matching_blocks]
        matching = sum(ops.mean(ops.abs(ops.stop_gradient(real) - fake[:n]), axis=(1, 2, 3))
                       for real, fake in pairs) / len(pairs)
        per_value = keras.losses.binary_crossentropy(ops.reshape(images, (-1, PIXEL_VALUES, 1)),
                                                     ops.reshape(reconstructions, (-1, PIXEL_VALUES, 1)))
        kl = -0.5 * ops.sum(1.0 + log_var - ops.exp(log_var) - ops.square(mean), axis=1)
        agreement = ops.cast(ops.equal(ops.round(images), ops.round(reconstructions)), "float32")
        both_weights = ops.concatenate([weights, weights])
        perceptual = (ops.zeros(()) if self.perceptual is None
                      else _weighted_mean(self.perceptual.distance(images, reconstructions), weights))
        spectral = (ops.zeros(()) if self.spectral is None
                    else _weighted_mean(self.spectral.excess(images, reconstructions), weights))
        return {
            "perceptual": perceptual,
            "spectral": spectral,
            "decoded": decoded,
            "reconstruction": _weighted_mean(ops.mean(per_value, axis=1), weights),
            "latent": _weighted_mean(kl, weights) / PIXEL_VALUES,
            "rounded": _weighted_mean(ops.mean(ops.reshape(agreement, (n, -1)), axis=1), weights),
            "feature_matching": _weighted_mean(matching, weights),
            "adversarial": -_weighted_mean(ops.mean(fake_logits, axis=(1, 2, 3)), both_weights),  # hinge, G side
        }

    def _train_discriminator(self, images, conditions, decoded, weights, scale):
        """One hinge-loss step of the discriminator: real photos above +1, decoded images below -1,
        plus the R1 penalty if asked; returns the hinge loss and the penalty's squared gradient."""
        import tensorflow as tf

        n = ops.shape(images)[0]
        seen = shifted(ops.concatenate([images, decoded]), self._offset(), self.adversarial.discriminator_shift)
        # (one offset for photos and decoded images alike: only their content may tell them apart)
        with tf.GradientTape() as tape:
            # R1: the slope of the photos' logits, a term the discriminator is trained on
            with tf.GradientTape(watch_accessed_variables=False) as slope_tape:
                slope_tape.watch(seen)
                logits = self.discriminator([seen, ops.concatenate([conditions, conditions, conditions])],
                                            training=True)[0]
                real_total = ops.sum(ops.mean(logits[:n], axis=(1, 2, 3)))  # each photo's slope is its own
            real_loss = _weighted_mean(ops.mean(ops.relu(1.0 - logits[:n]), axis=(1, 2, 3)), weights)
            fake_loss = _weighted_mean(ops.mean(ops.relu(1.0 + logits[n:]), axis=(1, 2, 3)),
                                       ops.concatenate([weights, weights]))
            loss = real_loss + fake_loss
            slope = ops.zeros(())
            if self.adversarial.r1_weight > 0:
                gradient = slope_tape.gradient(real_total, seen)[:n]
                slope = _weighted_mean(ops.sum(ops.square(gradient), axis=(1, 2, 3)), weights)
            # inside the tape: a product taken after it would have no gradient
            scaled = (loss + 0.5 * self.adversarial.r1_weight * slope) * scale
        variables = self.discriminator.trainable_weights
        gradients = tape.gradient(scaled, variables)
        self.discriminator_optimizer.apply_gradients(zip(gradients, variables))
        return loss, slope

    def _offset(self):
        return random_offset(self.adversarial.discriminator_shift, self.seed_generator)


def random_offset(pad: int, seed_generator: keras.random.SeedGenerator):
    """A random (rows, columns) offset in [0, 2 * pad] for `shifted`."""
    return keras.random.randint((2,), 0, 2 * pad + 1, seed=seed_generator)


def shifted(images, offset, pad: int):
    """`images` moved by `offset - pad` pixels down and right, the edges mirrored in (DiffAugment's
    translation, Zhao et al. 2020). The discriminator's strided convolutions see a fixed pixel
    grid, and their gradients carry its period into the decoder, which then paints a plaid lattice
    over every product (docs/experiments/2026-12-02-vaegan-warm-start.md); at a random offset each
    step no lattice lines up with that grid for long."""
    if pad <= 0:
        return images
    padded = ops.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    start = ops.concatenate([ops.zeros((1,), "int32"), ops.cast(offset, "int32"), ops.zeros((1,), "int32")])
    return ops.slice(padded, start, ops.shape(images))


class PriorCodes:
    """A fitted latent prior's Gaussians as tensors, to draw codes inside the traced train step
    (LatentPrior.sample's NumPy cannot run there): each row's code from its label pair's
    Gaussian; a row whose pair the prior never saw keeps its N(0, I) noise."""

    def __init__(self, prior: "LatentPrior") -> None:
        self.key_width = prior.key_width
        self.pairs = ops.convert_to_tensor(np.asarray(prior.conditions, np.float32))
        self.means = ops.convert_to_tensor(np.asarray(prior.means, np.float32))
        self.scales = ops.convert_to_tensor(np.asarray(prior.scales, np.float32))
        self.scale_of_key = ops.convert_to_tensor(np.asarray(prior.scale_of_key, np.int32))

    def sample(self, conditions, noise):
        keys = conditions[:, : self.key_width]
        matches = ops.all(ops.equal(keys[:, None, :], self.pairs[None]), axis=2)
        pair = ops.argmax(ops.cast(matches, "int32"), axis=1)
        scales = ops.take(self.scales, ops.take(self.scale_of_key, pair, axis=0), axis=0)
        codes = ops.take(self.means, pair, axis=0) + ops.einsum("nij,nj->ni", scales, noise)
        return ops.where(ops.any(matches, axis=1)[:, None], codes, noise)


class AdversarialStart(keras.callbacks.Callback):
    """Switches a VAEGAN to its adversarial step once it has taken `adversarial_start` steps (on a
    resumed run, at its first batch): Keras' fit loop calls `train_function` anew at every step."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        model = self.model
        if not model.adversarial_phase and float(model.steps_seen.numpy()) >= model.adversarial_start:
            model.adversarial_phase = True
            model.make_train_function(force=True)


def _weighted_mean(values, weights):
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)


def _gradient_ratio(reconstruction_gradient, adversarial_gradient):
    """||grad nll|| / ||grad adv||, clipped to [0, 1e4] and held constant (latent diffusion's
    calculate_adaptive_weight)."""
    ratio = ops.norm(ops.reshape(reconstruction_gradient, (-1,))) / (
        ops.norm(ops.reshape(adversarial_gradient, (-1,))) + 1e-4)
    return ops.stop_gradient(ops.clip(ratio, 0.0, 1e4))
